"""Building and caching: the disk cache is reused across programs and checked for
corruption, and a failed compile says why and where the source is."""
import os

import numpy as np
import pytest

import exprc as ex
from codegen import build
from codegen.cache import DiskCache


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPRC_CACHE_DIR", str(tmp_path))
    build.clear_loaded()
    yield tmp_path
    build.clear_loaded()


def _graph(k=1):
    """A graph of its own per test (``k``), so no test meets a library another loaded."""
    x = ex.vector("x")
    return [x], ex.cosh(x) * 3 - k


def _corrupt(path, data):
    """Replace ``path`` with ``data`` as another program would (a new file, not the mapped one)."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def test_second_program_loads_from_disk(fresh_cache):
    inputs, out = _graph()
    before = dict(build.stats)
    f = ex.function(inputs, out, backend="c")
    assert build.stats["compiled"] == before["compiled"] + 1
    build.clear_loaded()
    g = ex.function(inputs, out, backend="c")
    assert build.stats["compiled"] == before["compiled"] + 1
    assert build.stats["loaded_from_disk"] == before["loaded_from_disk"] + 1
    np.testing.assert_array_equal(f(np.arange(3.0)), g(np.arange(3.0)))
    assert list(fresh_cache.rglob("*.c")) and list(fresh_cache.rglob("*.so")) and list(fresh_cache.rglob("*.ref"))
    assert not list(fresh_cache.rglob("*.tmp")) and not list(fresh_cache.glob(".build-*"))


def test_corrupted_library_is_rebuilt(fresh_cache):
    inputs, out = _graph(2)
    ex.function(inputs, out, backend="c")
    (library,) = fresh_cache.rglob("*.so")
    _corrupt(library, library.read_bytes()[:100])  # truncated
    build.clear_loaded()
    before = build.stats["compiled"]
    f = ex.function(inputs, out, backend="c")
    assert build.stats["compiled"] == before + 1
    np.testing.assert_allclose(f(np.zeros(2)), [1.0, 1.0])


def test_corrupted_reference_is_rebuilt(fresh_cache):
    inputs, out = _graph(3)
    ex.function(inputs, out, backend="c")
    (ref,) = fresh_cache.rglob("*.ref")
    _corrupt(ref, b"{not json")
    build.clear_loaded()
    before = build.stats["compiled"]
    ex.function(inputs, out, backend="c")
    assert build.stats["compiled"] == before + 1


def test_compile_error_shows_message_and_source(fresh_cache):
    cache = DiskCache(fresh_cache)
    with pytest.raises(build.CompileError) as info:
        build.load_library("void broken(void) { this is not C; }", "void broken(void);", cache)
    message = str(info.value)
    assert "error" in message and "the source is saved at" in message
    assert os.path.exists(info.value.source_path)
    assert str(info.value.source_path) in message


def test_cc_is_respected(fresh_cache, monkeypatch):
    monkeypatch.setenv("CC", "cc -DEXPRC_TEST_UNDEFINED=")
    inputs, out = _graph(4)
    before = build.stats["compiled"]
    ex.function(inputs, out, backend="c")  # a different compiler command is a different key
    assert build.stats["compiled"] == before + 1
    monkeypatch.setenv("CC", "/nonexistent/cc")
    build.compiler_identity.cache_clear()
    with pytest.raises(build.CompileError, match="cannot run the C compiler"):
        ex.function(inputs, out * 2, backend="c")
