"""The disk cache stays within ``$EXPRC_CACHE_MAX_MB`` (issue 22, finding 5): the least
recently used entries go first, entries in use stay, lock files go with their entries,
and the build folders of killed builds are counted and removed."""

import os
import signal
import time

import pytest

from exprc.codegen.cache import disk
from exprc.codegen.cache.command import main
from exprc.codegen.cache.disk import CacheWarning, DiskCache, cache_key, max_bytes

KIB = 1024


def _key(i):
    return cache_key(f"entry {i}", "cc", [])


def _age(cache, key, seconds):
    """Make entry ``key`` look last used ``seconds`` ago."""
    ref = cache.root / key[:2] / f"{key}.ref"
    when = time.time() - seconds
    os.utime(ref, (when, when))


def _keys(cache):
    return {e.key for e in cache.entries()}


def test_least_recently_used_entries_go_first_when_the_limit_is_passed(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPRC_CACHE_MAX_MB", str(70 * KIB / (1 << 20)))  # 70 KiB
    cache = DiskCache(tmp_path)
    data = os.urandom(20 * KIB)
    for i in range(3):
        cache.store(_key(i), data + bytes([i])).close()
    for i, age in enumerate((300, 200, 100)):  # entry 0 oldest
        _age(cache, _key(i), age)
    cache.lookup(_key(0)).close()  # ... but used just now
    cache.store(_key(3), data + b"3").close()  # 4 x 20 KiB: over the limit
    assert _keys(cache) == {_key(0), _key(2), _key(3)}  # entry 1, the least recently used, went
    assert sum(e.size for e in cache.entries()) <= max_bytes()


def test_an_entry_in_use_is_not_evicted(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPRC_CACHE_MAX_MB", str(30 * KIB / (1 << 20)))
    cache = DiskCache(tmp_path)
    cache.store(_key(0), os.urandom(20 * KIB)).close()
    _age(cache, _key(0), 1000)
    with cache.locked(_key(0), shared=True):  # as a process linking with it, or loading it
        cache.store(_key(1), os.urandom(20 * KIB)).close()
        assert _keys(cache) == {_key(0), _key(1)}
    cache.store(_key(2), os.urandom(20 * KIB)).close()
    assert _key(0) not in _keys(cache)


def test_lock_files_go_with_their_entries(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EXPRC_CACHE_MAX_MB", str(50 * KIB / (1 << 20)))
    cache = DiskCache(tmp_path)
    for i in range(40):
        cache.lookup_or_build(_key(i), lambda i=i: cache.store(_key(i), os.urandom(10 * KIB)).close())
    with cache.locked(_key(99)):
        pass  # a build that kept nothing leaves no lock file either
    locks = list(tmp_path.rglob("*.lock"))
    assert 0 < len(locks) == len(cache.entries()) <= 5
    assert main(["clear", "--dir", str(tmp_path)]) == 0
    assert not list(tmp_path.rglob("*.lock")) and not [p for p in tmp_path.glob("??/*")]


def test_the_limit_comes_from_the_environment_and_a_bad_value_warns(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("EXPRC_CACHE_MAX_MB", raising=False)
    assert max_bytes() == 1024 << 20
    monkeypatch.setenv("EXPRC_CACHE_MAX_MB", "2.5")
    assert max_bytes() == int(2.5 * (1 << 20))
    main(["size", "--dir", str(tmp_path)])
    assert "(limit 2.5 MiB)" in capsys.readouterr().out
    for bad in ("lots", "-1", "0", "nan"):
        monkeypatch.setenv("EXPRC_CACHE_MAX_MB", bad)
        monkeypatch.setattr(disk, "_warned", set())
        with pytest.warns(
            CacheWarning, match=rf"\$EXPRC_CACHE_MAX_MB is '{bad}'.*the default limit, 1024 MiB, is used"
        ):
            assert max_bytes() == 1024 << 20


def test_build_folders_of_killed_builds_are_counted_and_removed(tmp_path, capsys):
    cache = DiskCache(tmp_path)
    cache.store(_key(0), b"library").close()
    pid = os.fork()
    if pid == 0:  # a build killed while it works
        try:
            scratch = cache.scratch_dir()
            (scratch / "kernels.c").write_bytes(b"x" * 5000)
        finally:
            os.kill(os.getpid(), signal.SIGKILL)
    os.waitpid(pid, 0)
    live = cache.scratch_dir()  # a build of this process, running
    (live / "kernels.c").write_bytes(b"y" * 3000)
    (killed,) = [p for p in tmp_path.glob(".build-*") if p != live]
    old = time.time() - disk.LEFTOVER_AGE - 60
    for path in (killed, live):
        os.utime(path, (old, old))
    assert main(["size", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "2 build folders and files left by builds, 7.8 KiB" in out  # 5000 + 3000 bytes
    assert main(["clear", "--dir", str(tmp_path)]) == 0
    assert "1 left by stopped builds removed" in capsys.readouterr().out
    assert not killed.exists() and (live / "kernels.c").exists()


def test_a_store_lists_the_cache_only_when_its_running_total_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPRC_CACHE_MAX_MB", str(100 * KIB / (1 << 20)))
    cache = DiskCache(tmp_path)
    scans = []
    real_scan = DiskCache.scan
    monkeypatch.setattr(DiskCache, "scan", lambda self: scans.append(1) or real_scan(self))
    cache.store(_key(0), os.urandom(10 * KIB)).close()
    assert len(scans) == 1  # no total yet: counted once
    for i in range(1, 8):
        cache.store(_key(i), os.urandom(10 * KIB)).close()
    assert len(scans) == 1 and len(real_scan(cache)[0]) == 8
    for i in range(8, 12):  # past 100 KiB: counted, and the oldest go
        cache.store(_key(i), os.urandom(10 * KIB)).close()
    assert len(scans) > 1 and sum(e.size for e in real_scan(cache)[0]) <= 100 * KIB
    assert main(["clear", "--dir", str(tmp_path)]) == 0
    scans.clear()
    cache.store(_key(0), os.urandom(10 * KIB)).close()
    assert len(scans) == 1  # clear dropped the total: counted again


def test_an_entry_stored_over_leaves_no_old_file(tmp_path):
    """A rebuilt entry with other bytes (a graph rewritten after a damaged file) replaces
    the file of the old digest; other entries stay."""
    cache = DiskCache(tmp_path)
    key, other = _key(0), _key(1)
    cache.store(other, b"another entry", suffix=".graph").close()
    cache.store(key, b"first", suffix=".graph").close()
    found = cache.store(key, b"second", suffix=".graph")
    found.close()
    names = sorted(p.name for p in (tmp_path / key[:2]).iterdir() if p.name.startswith(key))
    assert [n for n in names if n.endswith(".graph")] == [found.name]
    assert cache.lookup_entry(other) is not None
    entry, _ = cache.lookup_entry(key)
    assert entry.read_bytes() == b"second"
    entry.close()
