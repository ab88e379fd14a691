"""Building and caching: the disk cache is reused across programs and processes, built once
when processes race, checked for damage, refused when others could write to it, and a
failed compile says why and where the source is."""

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import exprc as ex
from exprc.codegen.c import build
from exprc.codegen.c import program as c
from exprc.codegen.cache.disk import DiskCache, default_root


def _forget():
    """Forget what this process compiled and loaded, so the next build goes to the disk cache."""
    build.clear_loaded()
    c.clear_memo()


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPRC_CACHE_DIR", str(tmp_path))
    _forget()
    yield tmp_path
    _forget()


def _is_runtime(ref):
    """Whether the reference file ``ref`` is the run-time library's (its source defines the table)."""
    source = ref.with_suffix(".c")
    return source.exists() and "exprc_runtime_table(void)" in source.read_text()


def _program_refs(cache_dir):
    """The reference files of the cached programs (not of the run-time library)."""
    return [
        ref
        for ref in cache_dir.rglob("*.ref")
        if json.loads(ref.read_text())["library"].endswith(".so") and not _is_runtime(ref)
    ]


def _program_libraries(cache_dir):
    """The cached programs' library files."""
    return [ref.with_name(json.loads(ref.read_text())["library"]) for ref in _program_refs(cache_dir)]


def _store_takes_prefix():
    import inspect

    return "prefix" in inspect.signature(DiskCache.store).parameters


def _runtime_file(cache_dir):
    """The cached run-time library."""
    (ref,) = [ref for ref in cache_dir.rglob("*.ref") if _is_runtime(ref)]
    return ref.with_name(json.loads(ref.read_text())["library"])


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
    _forget()
    g = ex.function(inputs, out, backend="c")
    assert build.stats["compiled"] == before["compiled"] + 1
    assert build.stats["loaded_from_disk"] == before["loaded_from_disk"] + 1
    np.testing.assert_array_equal(f(np.arange(3.0)), g(np.arange(3.0)))
    assert list(fresh_cache.rglob("*.c")) and list(fresh_cache.rglob("*.so")) and list(fresh_cache.rglob("*.ref"))
    assert not list(fresh_cache.rglob("*.tmp")) and not list(fresh_cache.glob(".build-*"))


def test_corrupted_library_is_rebuilt(fresh_cache):
    inputs, out = _graph(2)
    ex.function(inputs, out, backend="c")
    (library,) = _program_libraries(fresh_cache)
    _corrupt(library, library.read_bytes()[:100])  # truncated
    _forget()
    before = build.stats["compiled"]
    f = ex.function(inputs, out, backend="c")
    assert build.stats["compiled"] == before + 1
    np.testing.assert_allclose(f(np.zeros(2)), [1.0, 1.0])


def test_corrupted_reference_is_rebuilt(fresh_cache):
    inputs, out = _graph(3)
    ex.function(inputs, out, backend="c")
    (ref,) = _program_refs(fresh_cache)
    _corrupt(ref, b"{not json")
    _forget()
    before = build.stats["compiled"]
    ex.function(inputs, out, backend="c")
    assert build.stats["compiled"] == before + 1


def test_run_time_is_compiled_once_for_every_program(fresh_cache, monkeypatch):
    compiles = []
    real = build._compile
    monkeypatch.setattr(
        build, "_compile", lambda *a, **k: compiles.append(k.get("prefix") == build.RUNTIME_PREFIX) or real(*a, **k)
    )
    for k in (7, 8):
        inputs, out = _graph(k)
        ex.function(inputs, out, backend="c")
    assert compiles == [True, False, False]  # the first program builds the run time, the second reuses it
    assert _runtime_file(fresh_cache).name.startswith(build.RUNTIME_PREFIX) or not _store_takes_prefix()
    # programs link nothing of it: they call it through the table they are bound to
    for ref in _program_refs(fresh_cache):
        source = ref.with_suffix(".c").read_text()
        assert "exprc_segment_numpy_r8" not in source and "exprc_rt->segment_numpy" in source


def test_damaged_run_time_object_is_rebuilt(fresh_cache):
    inputs, out = _graph(9)
    ex.function(inputs, out, backend="c")
    runtime = _runtime_file(fresh_cache)
    _corrupt(runtime, runtime.read_bytes()[:64])
    _forget()
    inputs, out = _graph(10)  # a new program checks the run time's entry again
    f = ex.function(inputs, out, backend="c")
    np.testing.assert_allclose(f(np.zeros(2)), [-7.0, -7.0])
    assert _runtime_file(fresh_cache).stat().st_size > 64


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


# --- the cache across processes, its integrity and its directory ---------------------------------

_CHILD = """
import json, sys
import numpy as np
import exprc as ex
from exprc.codegen.c import build
x = ex.vector("x")
f = ex.function([x], ex.tanh(x) * 5 + ex.exp(x) - 11, backend="c")
value = f(np.linspace(-1, 1, 5))
expected = np.tanh(np.linspace(-1, 1, 5)) * 5 + np.exp(np.linspace(-1, 1, 5)) - 11
assert np.allclose(value, expected), value
print(json.dumps(build.stats))
"""


def _child(cache_dir, **env):
    """Start a Python process that builds and runs one function with the cache in ``cache_dir``."""
    environ = dict(os.environ, EXPRC_CACHE_DIR=str(cache_dir), **env)
    environ["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]), environ.get("PYTHONPATH", "")])
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD], env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _finish(process):
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def test_concurrent_processes_build_one_entry(tmp_path):
    processes = [_child(tmp_path) for _ in range(4)]
    stats = [_finish(p) for p in processes]
    assert sum(s["compiled"] for s in stats) == 1
    assert sum(s["loaded_from_disk"] for s in stats) == 3
    assert len(_program_libraries(tmp_path)) == 1 and len(_program_refs(tmp_path)) == 1
    assert len(list(tmp_path.rglob("*.so"))) == 2  # the run-time library, built once too
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.glob(".build-*"))


def test_warm_second_process_does_not_run_the_compiler(tmp_path):
    log = tmp_path / "compiler-runs.log"
    wrapper = tmp_path / "cc-wrapper"
    wrapper.write_text(
        "#!/bin/sh\n"
        'if [ -n "$EXPRC_TEST_NO_COMPILER" ]; then echo "the compiler was run: $*" >&2; exit 1; fi\n'
        f'echo "$*" >> "{log}"\n'
        'exec cc "$@"\n'
    )
    wrapper.chmod(0o755)
    cache_dir = tmp_path / "cache"
    first = _finish(_child(cache_dir, CC=str(wrapper)))
    runs = log.read_text().count("\n")
    assert first["compiled"] == 1 and runs == 3  # --version, the run time, then the program
    second = _finish(_child(cache_dir, CC=str(wrapper), EXPRC_TEST_NO_COMPILER="1"))
    assert second == {"compiled": 0, "loaded_from_disk": 1}
    assert log.read_text().count("\n") == runs


def test_altered_library_is_rebuilt(fresh_cache):
    inputs, out = _graph(5)
    ex.function(inputs, out, backend="c")
    (library,) = _program_libraries(fresh_cache)
    data = bytearray(library.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte changed
    _corrupt(library, bytes(data))
    _forget()
    before = build.stats["compiled"]
    f = ex.function(inputs, out, backend="c")
    assert build.stats["compiled"] == before + 1
    np.testing.assert_allclose(f(np.zeros(2)), [-2.0, -2.0])


def test_cache_dir_writable_by_others_is_refused(tmp_path, monkeypatch, fresh_cache):
    inputs, out = _graph(6)
    ex.function(inputs, out, backend="c")  # a good entry in the trusted cache
    shared = tmp_path / "shared"
    shutil.copytree(fresh_cache, shared)
    shared.chmod(0o777)
    before = sorted(p.relative_to(shared) for p in shared.rglob("*"))
    monkeypatch.setenv("EXPRC_CACHE_DIR", str(shared))
    _forget()
    compiled = build.stats["compiled"]
    with pytest.warns(build.CacheWarning, match="refused: other users may write to it"):
        f = ex.function(inputs, out, backend="c")
    assert build.stats["compiled"] == compiled + 1  # built again, not loaded from the shared directory
    assert not f._program.compiled.library.path.startswith(str(shared))
    assert sorted(p.relative_to(shared) for p in shared.rglob("*")) == before  # nothing written there
    np.testing.assert_allclose(f(np.zeros(2)), [-3.0, -3.0])


def test_default_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("EXPRC_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_root() == tmp_path / "xdg" / "exprc"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_root() == Path.home() / ".cache" / "exprc"
    cache = DiskCache(tmp_path / "new" / "exprc")
    assert cache.refusal() is None
    assert stat.S_IMODE(os.stat(cache.root).st_mode) == 0o700


_WARM_CHILD = """
import json, sys
import numpy as np
import exprc as ex
from exprc.codegen.c import build
x, w, t = ex.matrix("x"), ex.vector("w"), ex.vector("t")
outputs = [ex.log1p(ex.exp(-t * (x @ w))).mean() + 0.01 * (w ** 2).sum(), (x * w).sum(axis=1)]
f = ex.function([x, w, t], outputs, backend="c")
values = [np.arange(12.0).reshape(3, 4) / 10, np.linspace(-1, 1, 4), np.array([1.0, -1.0, 1.0])]
expected = ex.function([x, w, t], outputs, backend="numpy")(*values)
ok = all(np.allclose(a, b) for a, b in zip(f(*values), expected))
print(json.dumps({"stats": build.stats, "ok": ok, "modules": [m for m in ("sympy", "pycparser") if m in sys.modules]}))
"""


def test_warm_second_process_imports_neither_sympy_nor_a_c_parser(tmp_path):
    def child():
        environ = dict(os.environ, EXPRC_CACHE_DIR=str(tmp_path))
        environ["PYTHONPATH"] = os.pathsep.join(
            [str(Path(__file__).resolve().parents[2]), environ.get("PYTHONPATH", "")]
        )
        return subprocess.Popen(
            [sys.executable, "-c", _WARM_CHILD], env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    cold = _finish(child())
    assert cold["ok"] and cold["stats"]["compiled"] == 1 and "sympy" not in cold["modules"]
    warm = _finish(child())
    assert warm["ok"] and warm["stats"] == {"compiled": 0, "loaded_from_disk": 1}
    assert warm["modules"] == []  # no SymPy, and cffi's declarations come parsed from the cache


def test_cache_entry_without_parsed_declarations_still_loads(fresh_cache):
    inputs, out = _graph(7)
    ex.function(inputs, out, backend="c")
    (ref,) = _program_refs(fresh_cache)
    meta = json.loads(ref.read_text())
    assert meta["ffi"]["cdef_sha256"]
    del meta["ffi"]  # as an older exprc wrote them
    ref.write_text(json.dumps(meta))
    _forget()
    before = dict(build.stats)
    f = ex.function(inputs, out, backend="c")
    assert build.stats["compiled"] == before["compiled"]
    np.testing.assert_allclose(f(np.zeros(2)), [-4.0, -4.0])


def test_big_program_compiles_as_units_in_parallel(fresh_cache, monkeypatch, rng):
    from exprc.codegen.c import render as c_render

    monkeypatch.setattr(c_render, "UNIT_SIZE", 1)
    monkeypatch.setattr(build, "parallel_units", lambda: 3)
    x, y = ex.matrix("x"), ex.matrix("y")
    exprs = [ex.exp(x) * y, ex.tanh(x + y).sum(axis=1), (x * x).max(), ex.sin(x) - ex.cos(y) * 2]
    fc = ex.function([x, y], exprs, backend="c")
    fn = ex.function([x, y], exprs, backend="numpy")
    _, units = c_render.render_sources(fc._program.program.kernels, "", fc._program.compiled.segments, {}, max_units=3)
    assert len(units) == 3 and sum("exprc_segment_numpy(" in u for u in units) == 1
    for xv, yv in [
        (rng.uniform(-1, 1, (5, 7)), rng.uniform(-1, 1, (5, 7))),
        (rng.uniform(-1, 1, (300, 200)).T, rng.uniform(-1, 1, (1, 300))),
    ]:
        for got, expected in zip(fc(xv, yv), fn(xv, yv)):
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_verify_grad_again_reuses_the_compiled_gradient(fresh_cache, rng):
    def fn(x, y):
        return ex.tanh(x * y) + ex.exp(x - y)

    ex.verify_grad(fn, [rng.uniform(-1, 1, (3, 1)), rng.uniform(-1, 1, (3, 4))], rng=rng, backend="c")
    compiled = build.stats["compiled"]
    # other values and shapes, and another random projection: the same two programs
    ex.verify_grad(fn, [rng.uniform(-1, 1, (2, 5)), rng.uniform(-1, 1, (2, 5))], rng=rng, backend="c")
    assert build.stats["compiled"] == compiled


def test_building_and_calling_leave_the_environment_alone(fresh_cache):
    before = dict(os.environ)
    inputs, out = _graph(11)
    f = ex.function(inputs, out, backend="c")
    f(np.zeros(10**5))
    assert dict(os.environ) == before
