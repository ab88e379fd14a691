"""``python -m exprc.cache``: listing, sizing and clearing the disk cache."""

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import exprc as ex
from exprc import remembered
from exprc.codegen.c import build
from exprc.codegen.c import program as c
from exprc.codegen.cache.command import main
from exprc.codegen.cache.disk import DiskCache


def _fill(cache_dir, monkeypatch):
    """Compile two programs into ``cache_dir``."""
    monkeypatch.setenv("EXPRC_CACHE_DIR", str(cache_dir))
    build.clear_loaded()
    c.clear_memo()
    remembered.clear_memo()
    x = ex.vector("x")
    f = ex.function([x], ex.sinh(x) * 7, backend="c")
    g = ex.function([x], ex.cosh(x) - 7, backend="c")
    return x, f, g


def test_list_names_each_entry_and_what_it_computes(tmp_path, monkeypatch, capsys):
    _fill(tmp_path, monkeypatch)
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert f"cache: {tmp_path}" in out
    assert "5 entries" in out  # two programs, the graphs they were rewritten to, and the run time
    assert "sinh(x) * 7" in out and "cosh(x) - 7" in out and "the entry points' run time" in out


def test_size_agrees_with_the_files(tmp_path, monkeypatch, capsys):
    _fill(tmp_path, monkeypatch)
    total = sum(e.size for e in DiskCache(tmp_path).entries())
    entry_folders = [p for p in tmp_path.iterdir() if len(p.name) == 2]
    assert total == sum(p.lstat().st_size for folder in entry_folders for p in folder.iterdir())
    main(["size"])
    assert capsys.readouterr().out.splitlines()[1].startswith("5 entries, ")


def test_clear_removes_entries_and_programs_compile_again(tmp_path, monkeypatch, capsys):
    x, f, _ = _fill(tmp_path, monkeypatch)
    main(["clear", "--older-than", "1"])
    assert "removed 0 of 5 entries" in capsys.readouterr().out  # all were written just now
    total = sum(e.size for e in DiskCache(tmp_path).entries())
    main(["clear"])
    out = capsys.readouterr().out
    assert "removed 5 of 5 entries" in out
    assert f"{total / 1024:.1f} KiB freed" in out  # what the entries took, read before removing them
    assert not list(tmp_path.rglob("*.so")) and not list(tmp_path.rglob("*.o"))
    build.clear_loaded()
    c.clear_memo()
    before = build.stats["compiled"]
    again = ex.function([x], ex.sinh(x) * 7, backend="c")
    assert build.stats["compiled"] == before + 1
    np.testing.assert_allclose(again(np.array([0.5])), np.sinh([0.5]) * 7)


def test_clear_leaves_an_entry_being_built(tmp_path, monkeypatch, capsys):
    _fill(tmp_path, monkeypatch)
    entry = next(e for e in DiskCache(tmp_path).entries() if e.kind == "library")
    fd = os.open(tmp_path / entry.key[:2] / f"{entry.key}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a process building it holds it
        main(["clear"])
    finally:
        os.close(fd)
    out = capsys.readouterr().out
    assert "removed 4 of 5 entries" in out and "1 in use were left" in out
    assert all(path.exists() for path in entry.files)


def test_runs_as_a_module(tmp_path):
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, EXPRC_CACHE_DIR=str(tmp_path), PYTHONPATH=str(root))
    env.pop("EXPRC_CACHE_MAX_MB", None)
    done = subprocess.run([sys.executable, "-m", "exprc.cache", "size"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"cache: {tmp_path}", "0 entries, 0 B (limit 1.0 GiB)"]
    wrong = subprocess.run(
        [sys.executable, "-m", "exprc.cache", "size", "--older-than", "3"], env=env, capture_output=True, text=True
    )
    assert wrong.returncode == 2 and "--older-than goes with clear" in wrong.stderr


# --- clear is safe: only exprc's own files, never through a link, never in a refused folder ------

KEY = "ab" + "0" * 62


def test_clear_never_follows_a_link_nor_deletes_what_exprc_did_not_write(tmp_path, capsys):
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    outside = tmp_path / "outside"
    outside.mkdir()
    victims = [outside / f"{KEY}.c", outside / f"{KEY}-0123456789abcdef.so", outside / "notes.txt"]
    for path in victims:
        path.write_text("the user's own file")
    (cache / "ab").symlink_to(outside)  # a two-character folder that is a link
    (cache / "cd").mkdir(mode=0o700)
    foreign = [cache / "cd" / "notes.txt", cache / "cd" / f"cd{KEY[2:]}.c.orig"]
    for path in foreign:
        path.write_text("not exprc's")
    (cache / "cd" / f"cd{KEY[2:]}.c").symlink_to(outside / "notes.txt")  # an entry's name, but a link
    assert main(["list", "--dir", str(cache)]) == 0
    assert "0 entries" in capsys.readouterr().out
    assert main(["clear", "--dir", str(cache)]) == 0
    assert "removed 0 of 0 entries" in capsys.readouterr().out
    assert all(path.read_text() for path in victims + foreign)
    assert (cache / "cd" / f"cd{KEY[2:]}.c").is_symlink()


def test_clear_refuses_a_refused_folder_with_the_message_list_gives(tmp_path, capsys):
    cache = DiskCache(tmp_path / "cache")
    cache.store(KEY, b"library").close()
    cache.root.chmod(0o777)
    assert main(["list", "--dir", str(cache.root)]) == 1
    listed = capsys.readouterr().out
    assert "refused: other users may write to it (mode 0777)" in listed
    assert main(["clear", "--dir", str(cache.root)]) == 1
    assert capsys.readouterr().out == listed
    assert main(["size", "--dir", str(cache.root)]) == 1
    assert list((cache.root / "ab").glob("*.so"))  # nothing was removed


_LOADER = """
import sys
from exprc.codegen.cache.disk import DiskCache
cache, keys, rounds = DiskCache(sys.argv[1]), sys.argv[2].split(","), int(sys.argv[3])
built = 0
for _ in range(rounds):
    for i, key in enumerate(keys):
        def build(i=i, key=key):
            global built
            built += 1
            with cache.store(key, b"library %d" % i) as file:
                return file.read_bytes()
        found, fresh = cache.lookup_or_build(key, build)
        data = found if fresh else found[0].read_bytes()
        assert data == b"library %d" % i, data
print(built)
"""


def test_clear_while_other_processes_load_and_build_breaks_none_of_them(tmp_path):
    """Finding 3: clear ran while other processes looked entries up and built them: each
    load gets whole, verified bytes or builds again; none fails."""
    keys = [f"{i:02x}" + "1" * 62 for i in range(8)]
    cache = DiskCache(tmp_path)
    for i, key in enumerate(keys):
        cache.store(key, b"library %d" % i).close()
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root))
    loaders = [
        subprocess.Popen(
            [sys.executable, "-c", _LOADER, str(tmp_path), ",".join(keys), "40"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    removed = 0
    while any(p.poll() is None for p in loaders):
        for entry in cache.entries():
            removed += cache.remove(entry)
    results = [p.communicate() for p in loaders]
    assert all(p.returncode == 0 for p in loaders), [err for _, err in results]
    assert removed > 0 and sum(int(out) for out, _ in results) > 0  # clear did remove entries, and they were rebuilt
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_reader_that_stops_early_gets_no_traceback(tmp_path):
    """``python -m exprc.cache list | head``: the reader closes the pipe before the listing is written."""
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, EXPRC_CACHE_DIR=str(tmp_path), PYTHONPATH=str(root))
    proc = subprocess.Popen(
        [sys.executable, "-m", "exprc.cache", "list"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    proc.stdout.close()
    errors = proc.stderr.read().decode()
    proc.wait(timeout=60)
    proc.stderr.close()
    assert "BrokenPipeError" not in errors and "Traceback" not in errors, errors
    assert proc.returncode == 1
