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
    assert total == sum(
        p.stat().st_size
        for p in tmp_path.rglob("*")
        if p.is_file() and p.parent != tmp_path / "memo" and not p.name.endswith(".lock")
    )
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
    assert "removed 4 of 5 entries" in capsys.readouterr().out
    assert all(path.exists() for path in entry.files)


def test_runs_as_a_module(tmp_path):
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, EXPRC_CACHE_DIR=str(tmp_path), PYTHONPATH=str(root))
    done = subprocess.run([sys.executable, "-m", "exprc.cache", "size"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"cache: {tmp_path}", "0 entries, 0 B"]
    wrong = subprocess.run(
        [sys.executable, "-m", "exprc.cache", "size", "--older-than", "3"], env=env, capture_output=True, text=True
    )
    assert wrong.returncode == 2 and "--older-than goes with clear" in wrong.stderr
