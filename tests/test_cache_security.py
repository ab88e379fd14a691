"""The disk cache as another user and a careless user would meet it (issue 22, findings 1
and 4): a cache folder swapped under a process loading from it never makes it load a
foreign library, a folder others could swap is refused, and a cache that cannot be used
or has something in the way only costs a warning, never a failed compile.

Several tests drop privileges in a forked child (the suite runs as root on CI); they skip,
saying why, where the test cannot."""

import ctypes
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import pytest

import exprc as ex
from exprc import remembered
from exprc.codegen.c import build
from exprc.codegen.c import program as c
from exprc.codegen.cache import disk, safety
from exprc.codegen.cache.disk import CacheWarning, DiskCache, cache_key

VICTIM = 65534  # nobody's uid on most systems
ATTACKER = 64999  # a uid of no one
NO_PASSWD = 54321  # a uid with no passwd entry

needs_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0 or not hasattr(os, "fork"),
    reason="running as another user needs root (to setuid in a forked child)",
)
needs_cc = pytest.mark.skipif(build.compiler_missing() is not None, reason="no C compiler")


def _reset_process_state():
    """What a forked child must not take over from its parent: folders and roots made as root."""
    disk._private = None
    build._private_dir.cache_clear()
    build.clear_loaded()
    c.clear_memo()
    remembered.clear_memo()


def _preload():
    """Import what a compile imports, before dropping privileges: Python's own library may
    be in a folder only root can read (a pyenv under /root)."""
    import cffi
    import sympy  # noqa: F401

    cffi.FFI().cdef("int exprc_preload(void);")
    x = ex.vector("x")
    ex.function([x], ex.sinh(x) + 0.5, backend="c")


def run_as(fn, uid=None, env=None, timeout=120):
    """``fn()`` in a forked child, as user ``uid`` (gid the same) with the environment
    ``env`` when given; returns what it returns (JSON), or fails with the child's traceback."""
    if uid is not None:
        _preload()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(r)
            signal.alarm(timeout)
            if env is not None:
                os.environ.clear()
                os.environ.update(env)
            if uid is not None:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
            _reset_process_state()
            payload = {"ok": True, "result": fn()}
        except BaseException:  # noqa: BLE001 - reported to the parent
            payload = {"ok": False, "error": traceback.format_exc()}
        try:
            os.write(w, json.dumps(payload).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    assert data, "the child died without a word"
    out = json.loads(data)
    assert out["ok"], out["error"]
    return out["result"]


def _tree(path, uid, dirs=0o700, files=0o600):
    for folder, _, names in os.walk(path):
        os.chown(folder, uid, uid)
        os.chmod(folder, dirs)
        for name in names:
            os.lchown(os.path.join(folder, name), uid, uid)
            os.chmod(os.path.join(folder, name), files)


def _compile(tmp, name, text):
    src = tmp / f"{name}.c"
    src.write_text(text)
    out = tmp / f"{name}.so"
    subprocess.run(build.compiler() + ["-shared", "-fPIC", "-o", str(out), str(src)], check=True)
    return out.read_bytes()


# --- finding 1: the swap race -----------------------------------------------------------------------


def _renameat2():
    """``renameat2(..., RENAME_EXCHANGE)`` through ctypes, or None where libc has none."""
    libc = ctypes.CDLL(None, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        return None
    at_fdcwd, exchange = -100, 2

    def swap(a, b):
        return fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), exchange) == 0

    return swap


@needs_root
@needs_cc
def test_swapping_the_cache_folder_never_loads_a_foreign_library():
    base = Path(tempfile.mkdtemp(prefix="exprc-swap-"))
    try:
        base.chmod(0o755)
        shared = base / "shared"  # a parent the attacker may write to, without the sticky bit
        shared.mkdir()
        shared.chmod(0o777)
        marker = shared / "marker"
        good = _compile(base, "good", "int which(void) { return 1; }\n")
        evil = _compile(
            base,
            "evil",
            "#include <stdio.h>\n"
            "__attribute__((constructor)) static void run(void) {\n"
            f'  FILE *f = fopen("{marker}", "a"); if (f) {{ fputs("foreign code ran\\n", f); fclose(f); }}\n'
            "}\n"
            "int which(void) { return 666; }\n",
        )
        keys = [cache_key(f"lib{i}", "cc", []) for i in range(6)]
        cache_dir, evil_dir = shared / "cache", shared / "evil"

        def fill(data, path):
            safety.parent_reason = lambda real: None  # fill despite the writable parent
            cache = DiskCache(path)
            for key in keys:
                cache.store(key, data).close()

        run_as(lambda: fill(good, cache_dir), uid=VICTIM)
        run_as(lambda: fill(evil, evil_dir), uid=ATTACKER)
        _tree(evil_dir, ATTACKER, 0o755, 0o644)  # the attacker lets everyone read it

        swap = _renameat2()
        stop = base / "stop"

        def attack():
            swaps = 0
            while not stop.exists():
                if swap is not None:
                    swaps += swap(cache_dir, evil_dir)
                else:  # three renames: a moment with no cache folder at all
                    os.rename(cache_dir, shared / "tmp")
                    os.rename(evil_dir, cache_dir)
                    os.rename(shared / "tmp", evil_dir)
                    swaps += 1
            return swaps

        attacker = os.fork()
        if attacker == 0:
            try:
                os.setgroups([])
                os.setgid(ATTACKER)
                os.setuid(ATTACKER)
                signal.alarm(60)
                attack()
            finally:
                os._exit(0)

        def victim(check_parents):
            if not check_parents:  # the descriptors alone must hold
                safety.parent_reason = lambda real: None
            loaded, refused, reasons = 0, 0, set()
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                safety.forget_root(cache_dir)  # check and open it again, to meet the race often
                cache = DiskCache(cache_dir)
                reason = cache.refusal(create=False)
                if reason is not None:
                    refused += 1
                    reasons.add(reason)
                    continue
                for key in keys:
                    found = cache.lookup_entry(key)
                    if found is not None:
                        with found[0] as file:
                            assert ctypes.CDLL(os.fspath(file)).which() == 1
                        loaded += 1
            return {"loaded": loaded, "refused": refused, "reasons": sorted(reasons)}

        try:
            unchecked = run_as(lambda: victim(False), uid=VICTIM)
            checked = run_as(lambda: victim(True), uid=VICTIM)
        finally:
            stop.touch()
            os.waitpid(attacker, 0)
        print(f"swaps: victim without the parents check {unchecked}, with it {checked}")
        assert not marker.exists(), marker.read_text()
        # without the parents check, the descriptors keep every load to the victim's own files
        assert unchecked["loaded"] > 0
        # with it, the folder is refused outright: the attacker may write to its parent
        assert checked["loaded"] == 0 and checked["refused"] > 0
        assert any(f"other users may write to {shared}, which holds it" in r for r in checked["reasons"])
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_parent_writable_by_others_is_refused_and_a_sticky_one_is_not(tmp_path):
    parent = tmp_path / "projects"
    parent.mkdir()
    cache = DiskCache(parent / "exprc")
    assert cache.refusal() is None
    parent.chmod(0o777)
    safety.forget_root(cache.root)
    reason = cache.refusal()
    assert f"other users may write to {parent}, which holds it (mode 0777, no sticky bit)" in reason
    assert cache.lookup(cache_key("x", "cc", [])) is None
    parent.chmod(0o1777)  # as /tmp: others cannot rename what is not theirs
    safety.forget_root(cache.root)
    assert cache.refusal() is None


def test_a_link_in_the_cache_is_never_followed(tmp_path):
    cache = DiskCache(tmp_path / "cache")
    assert cache.refusal() is None
    key = cache_key("linked", "cc", [])
    outside = tmp_path / "outside"
    outside.mkdir()
    (cache.root / key[:2]).symlink_to(outside)
    assert cache.lookup(key) is None
    with cache.store(key, b"bytes") as file:  # the link is replaced by a folder of the cache's own
        assert file.read_bytes() == b"bytes"
    assert (cache.root / key[:2]).is_dir() and not (cache.root / key[:2]).is_symlink()
    assert list(outside.iterdir()) == []
    ref = cache.root / key[:2] / f"{key}.ref"
    target = tmp_path / "ref-elsewhere"
    target.write_bytes(ref.read_bytes())
    ref.unlink()
    ref.symlink_to(target)  # a reference that is a link: not read
    assert cache.lookup(key) is None


def test_the_path_handed_out_opens_the_verified_bytes_after_the_file_is_replaced(tmp_path):
    cache = DiskCache(tmp_path)
    key = cache_key("verified", "cc", [])
    cache.store(key, b"the verified bytes").close()
    file, meta = cache.lookup_entry(key)
    replacement = tmp_path / "replacement"
    replacement.write_bytes(b"other bytes, put in its place after the check")
    os.replace(replacement, file.path)
    assert Path(os.fspath(file)).read_bytes() == b"the verified bytes" == file.read_bytes()
    assert meta["size"] == 18 and file.name == file.path.name
    file.close()
    file.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        os.fspath(file)


@needs_cc
def test_two_libraries_loaded_through_the_same_descriptor_number_stay_apart(tmp_path):
    """glibc's dlopen returns a library loaded before under the same name; a descriptor number
    is reused once closed: the names handed out are never reused."""
    cache = DiskCache(tmp_path / "cache")
    values = []
    for i in (1, 2):
        key = cache_key(f"which{i}", "cc", [])
        cache.store(key, _compile(tmp_path, f"which{i}", f"int which(void) {{ return {i}; }}\n")).close()
        with cache.lookup(key) as file:
            values.append(ctypes.CDLL(os.fspath(file)).which())
    assert values == [1, 2]


# --- finding 4: fallback, not failure --------------------------------------------------------------


def _compile_and_run(cache_dir, k):
    """Build a function of its own (``k``) with the cache at ``cache_dir`` (None: the default
    place); its result and the cache warnings it gave."""
    if cache_dir is not None:
        os.environ["EXPRC_CACHE_DIR"] = str(cache_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x = ex.vector("x")
        f = ex.function([x], ex.cosh(x) * k - 1.5, backend="c")
        value = f(np.array([0.0, 1.0])).tolist()
    assert np.allclose(value, np.cosh([0.0, 1.0]) * k - 1.5), value
    return {"warnings": [str(w.message) for w in caught if issubclass(w.category, CacheWarning)], "stats": build.stats}


def _user_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("EXPRC_CACHE_DIR", "XDG_CACHE_HOME", "HOME")}
    env.update(extra)
    return env


@needs_root
@needs_cc
@pytest.mark.parametrize("mode", [0o500, 0o000])
def test_a_cache_folder_the_user_cannot_write_falls_back_with_a_warning(mode):
    base = Path(tempfile.mkdtemp(prefix="exprc-fallback-"))
    try:
        base.chmod(0o755)
        root = base / "cache"
        root.mkdir()
        os.chown(root, VICTIM, VICTIM)
        root.chmod(mode)
        out = run_as(lambda: _compile_and_run(root, 11 + mode), uid=VICTIM, env=_user_env())
        assert len(out["warnings"]) == 1 and "refused" in out["warnings"][0], out
        assert ("may not write" if mode else "cannot open it") in out["warnings"][0]
        root.chmod(0o700)
        assert list(root.iterdir()) == []
    finally:
        shutil.rmtree(base, ignore_errors=True)


@needs_root
@needs_cc
def test_read_only_entry_folders_fall_back_with_a_warning():
    base = Path(tempfile.mkdtemp(prefix="exprc-fallback-"))
    try:
        base.chmod(0o755)
        root = base / "cache"
        root.mkdir(mode=0o700)
        for i in range(256):  # whatever the keys, their folders are read-only
            (root / f"{i:02x}").mkdir(mode=0o500)
        _tree(root, VICTIM, 0o500)
        root.chmod(0o700)
        out = run_as(lambda: _compile_and_run(root, 13), uid=VICTIM, env=_user_env())
        assert out["warnings"] and all("cannot write to the cache directory" in w for w in out["warnings"])
        assert len(out["warnings"]) == 1  # once
        again = run_as(lambda: _compile_and_run(root, 13), uid=VICTIM, env=_user_env())
        assert again["stats"]["compiled"] >= 1  # nothing was kept, and nothing failed
    finally:
        shutil.rmtree(base, ignore_errors=True)


@needs_root
@needs_cc
def test_no_home_folder_falls_back_with_a_warning():
    import pwd

    with pytest.raises(KeyError):
        pwd.getpwuid(NO_PASSWD)
    out = run_as(lambda: _compile_and_run(None, 17), uid=NO_PASSWD, env=_user_env())
    assert len(out["warnings"]) == 1 and "the home folder is unknown" in out["warnings"][0], out


@needs_cc
def test_a_file_in_the_way_of_an_entry_is_replaced_and_later_compiles_load_it(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    root.mkdir(mode=0o700)
    for i in range(256):  # a file where each entry folder belongs
        (root / f"{i:02x}").write_text("in the way")
    monkeypatch.setenv("EXPRC_CACHE_DIR", str(root))
    _reset_process_state()
    first = _compile_and_run(root, 19)
    assert first["warnings"] == []
    _reset_process_state()
    before = dict(build.stats)
    _compile_and_run(root, 19)
    assert (
        build.stats["compiled"] == before["compiled"] and build.stats["loaded_from_disk"] > before["loaded_from_disk"]
    )


def test_a_folder_where_a_file_belongs_is_replaced(tmp_path):
    cache = DiskCache(tmp_path)
    key = cache_key("in the way", "cc", [])
    folder = tmp_path / key[:2]
    folder.mkdir(mode=0o700)
    for name in (f"{key}.ref", f"{key}.lock"):
        (folder / name).mkdir()
        (folder / name / "inside").write_text("x")
    with cache.locked(key):
        cache.store(key, b"library").close()
    assert cache.lookup(key).read_bytes() == b"library"
    assert (folder / f"{key}.ref").is_file() and (folder / f"{key}.lock").is_file()


def test_a_cache_directory_that_is_a_file_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "cache"
    path.write_text("the user's file")
    reason = DiskCache(path).refusal()
    assert reason == f"the cache directory {path} is refused: it is not a directory"
    with pytest.warns(CacheWarning, match="not a directory"):
        lib = build.load_library("int seven(void) { return 7; }", "int seven(void);", DiskCache(path))
    assert lib.lib.seven() == 7
    assert path.read_text() == "the user's file"


def test_bad_keys_and_names_are_refused_with_a_clear_error(tmp_path):
    cache = DiskCache(tmp_path)
    with pytest.raises(ValueError, match=r"cache key '\.\./x' is not a key of the cache"):
        cache.lookup("../x")
    with pytest.raises(ValueError, match="suffix '.exe'"):
        cache.store("a" * 64, b"", suffix=".exe")
    with pytest.raises(ValueError, match="prefix '../'"):
        cache.store("a" * 64, b"", prefix="../")
