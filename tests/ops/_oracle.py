"""Checking exprc's back ends against NumPy itself, for the op tests.

Every op test runs once per back end of :data:`BACKENDS` (the ``op_backend``
fixture in ``conftest.py`` picks it; :func:`current_backend` says which).
Inputs come from :mod:`tests.helpers` (random values in a chosen memory layout).
:func:`check` runs an expression through ``exprc.function(..., backend=...)``
and ``expr.eval``, then compares the result with the NumPy oracle: values, dtype,
shape, and the static shape exprc inferred when building the graph.
"""

import contextlib
import warnings

import numpy as np

import exprc as ex
from tests.codegen._compare import assert_same as assert_within_ulps
from tests.helpers import DTYPES, LAYOUTS, in_layout, random_array  # noqa: F401 - the op tests take them from here

#: Set to 1 to run the op tests on device="cuda" over the stand-in driver of
#: tests/codegen/cuda_fake.py, which interprets each kernel launch (no GPU needed; slow);
#: set to "emulate" to run the kernels' CUDA source on the CPU instead
#: (tests/codegen/cuda_emulator.py; needs g++).
FAKE_GPU = "EXPRC_TEST_FAKE_GPU"


def _stand_in():
    """The stand-in GPU asked for by ``$EXPRC_TEST_FAKE_GPU``, or None."""
    import os

    choice = os.environ.get(FAKE_GPU)
    if choice == "1":
        from tests.codegen.cuda_fake import FakeGpu

        return FakeGpu
    if choice == "emulate":
        from tests.codegen.cuda_emulator import EmulatedGpu

        return EmulatedGpu
    return None


def _cuda_testable():
    return _stand_in() is not None or ex.cuda.is_available()


#: The back ends every op test runs on: the NumPy reference, the compiled C, and CUDA
#: where a GPU is there (see tests/test_cuda_gpu.py) or the stand-in driver is asked for.
BACKENDS = ("numpy", "c") + (("cuda",) if _cuda_testable() else ())


def on_cuda(monkeypatch):
    """Make ``ex.function(..., backend="cuda")`` compile for ``device="cuda"`` and hand back
    NumPy copies of its results, so the op tests run unchanged on the GPU (or, with
    ``$EXPRC_TEST_FAKE_GPU``, over a stand-in)."""
    stand_in = _stand_in()
    if stand_in is not None:
        stand_in(monkeypatch)
    real = ex.function

    def function(inputs, outputs, backend=None, **options):
        if backend != "cuda":
            return real(inputs, outputs, backend=backend, **options)
        f = real(inputs, outputs, device="cuda", **options)

        def call(*args, **kwargs):
            result = f(*args, **kwargs)
            return [r.get() for r in result] if isinstance(result, list) else result.get()

        return call

    monkeypatch.setattr(ex, "function", function)


_backend = ["numpy"]


def current_backend():
    """The back end the running op test compiles for."""
    return _backend[0]


def use_backend(name):
    """Make the op tests compile for back end ``name`` (one of :data:`BACKENDS`)."""
    assert name in BACKENDS, name
    _backend[0] = name


FLOATS = ("float32", "float64")
INTS = ("int32", "int64")
NUMERIC = FLOATS + INTS


def make(shape, dtype, layout="contiguous", rng=None, low=-3, high=3):
    """Random values of ``shape`` and ``dtype`` (see :func:`tests.helpers.random_array`) in ``layout``."""
    rng = rng if rng is not None else np.random.default_rng(0)
    values = random_array(rng, tuple(shape), dtype, low, high)
    return in_layout(values, layout) if values.ndim else values  # a 0-d array has one layout


def declare(name, array, static="dynamic"):
    """An input variable for ``array``: with its lengths static, all unknown, or only the first unknown."""
    array = np.asarray(array)
    if static == "static":
        shape = array.shape
    elif static == "dynamic":
        shape = (None,) * array.ndim
    elif static == "partial":
        shape = (None,) + array.shape[1:] if array.ndim else ()
    else:
        raise ValueError(f"unknown declaration {static!r}")
    return ex.tensor(name, dtype=array.dtype.name, shape=shape)


def assert_static_shape(expr, result):
    """The static shape exprc inferred agrees with the shape the result has."""
    result = np.asarray(result)
    assert expr.type.ndim == result.ndim, f"{expr} is {expr.type}, but its value has shape {result.shape}"
    for static, actual in zip(expr.type.shape, result.shape):
        assert static is None or static == actual, (
            f"{expr} has static shape {expr.type.shape}, but its value has shape {result.shape}"
        )


def tolerance(dtype):
    """rtol, atol for comparing results of ``dtype`` computed in a different order."""
    if np.dtype(dtype) == np.float32:
        return 1e-4, 1e-5
    if np.dtype(dtype) == np.float16:
        return 1e-2, 1e-2
    return 1e-10, 1e-12


def assert_same(got, expected, rtol=None, atol=None):
    """``got`` equals ``expected`` in dtype, shape and values (NaN matching NaN, floats up to a tolerance)."""
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.dtype == expected.dtype, f"dtype {got.dtype}, NumPy gives {expected.dtype}"
    assert got.shape == expected.shape, f"shape {got.shape}, NumPy gives {expected.shape}"
    if expected.dtype.kind == "f":
        default_rtol, default_atol = tolerance(expected.dtype)
        np.testing.assert_allclose(
            got,
            expected,
            rtol=default_rtol if rtol is None else rtol,
            atol=default_atol if atol is None else atol,
            equal_nan=True,
        )
    else:
        np.testing.assert_array_equal(got, expected)


def run(expr, feeds):
    """``expr`` computed by the current back end given ``feeds`` (variable -> array), by
    ``exprc.function``, and by ``expr.eval`` (the NumPy reference): the two agree exactly
    when the back end is NumPy, to a few ulp when it is compiled code."""
    f = ex.function(list(feeds), expr, backend=current_backend())
    return _agrees_with_eval(expr, feeds, f(*feeds.values()))


def _agrees_with_eval(expr, feeds, got):
    evaluated = expr.eval(dict(feeds)) if feeds else expr.eval()
    assert np.asarray(evaluated).dtype == np.asarray(got).dtype
    if current_backend() == "numpy":
        np.testing.assert_array_equal(evaluated, got)
    else:
        assert_within_ulps(got, evaluated, f"{expr} on the {current_backend()} back end")
    return got


def numpy_result(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` as an array, with NumPy's warnings about NaN and empty slices silenced."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(fn(*args, **kwargs))


def check(expr, feeds, expected, rtol=None, atol=None):
    """Compute ``expr`` and compare it with ``expected`` (the NumPy oracle's value):
    values, dtype, shape and the inferred static shape. Returns exprc's result (None within
    :func:`checks_in_one_program`, where the comparison comes at its end)."""
    if _pending:
        _pending[-1].append((expr, feeds, expected, rtol, atol))
        return None
    return _compare_with(expr, feeds, expected, rtol, atol, run(expr, feeds))


def _compare_with(expr, feeds, expected, rtol, atol, got):
    assert_same(got, expected, rtol, atol)
    assert_static_shape(expr, got)
    return got


#: The checks recorded by the innermost :func:`checks_in_one_program`.
_pending = []


@contextlib.contextmanager
def checks_in_one_program():
    """The :func:`check` calls within compile as one ``exprc.function`` (every expression an
    output, every variable an input) on a compiled back end, where one compile of many
    kernels costs a fraction of many compiles of one. At the end of the block each check is
    made as :func:`check` makes it, in order: the same assertions, naming its expression.
    Where the checks give one variable different values, or the joint program fails to
    build or run, each compiles alone (so a failure is its own)."""
    pending = []
    _pending.append(pending)
    try:
        yield
    finally:
        _pending.remove(pending)
    for (expr, feeds, expected, rtol, atol), got in zip(pending, _run_together(pending)):
        if got is None:
            got = run(expr, feeds)
        else:
            got = _agrees_with_eval(expr, feeds, got)
        _compare_with(expr, feeds, expected, rtol, atol, got)


def _run_together(pending):
    """Each pending check's value by one program, or None where it must run alone."""
    alone = [None] * len(pending)
    if current_backend() == "numpy" or len(pending) < 2:
        return alone
    values = {}
    for _, feeds, *_ in pending:
        for variable, value in feeds.items():
            if variable in values and values[variable] is not value:
                return alone
            values[variable] = value
    try:
        got = ex.function(list(values), [p[0] for p in pending], backend=current_backend())(*values.values())
    except Exception:  # noqa: BLE001 - each check then compiles alone and reports its own error
        return alone
    return list(got)


def shape_id(shape):
    """``(0, 3)`` as ``0x3``, ``()`` as ``0d``: readable test ids."""
    return "x".join(map(str, shape)) if shape else "0d"


# --- many cases in one program --------------------------------------------------------

#: Test function name -> the parameters of each of its cases this run selected (filled in by
#: ``conftest.pytest_collection_finish``, after ``-k`` and ``-m`` have chosen): a batch
#: compiles the cases that will run, no others.
SELECTED = {}


class Batch:
    """The cases of one test function, compiled for a compiled back end as one
    ``exprc.function`` with every case's inputs and outputs, and called once.

    Compiling is most of an op test's time, and the C compiler's start, its headers and the
    runtime cost about as much as one more small kernel: one program of twenty kernels
    builds in a fraction of the time of twenty programs. Each test still checks its own
    case, with its own assertions: it asks :meth:`compute` for its outputs, which come from
    the batch when its group built and ran, else (NumPy back end, a case the batch could not
    prepare, or a batch whose build or call raised) from its own ``exprc.function``, so a
    failure is reported by the case that causes it.

    ``prepare(**params)`` gives a case's ``(symbols, outputs, arrays)``, built exactly as the
    test builds them (same values), or raises to leave the case out; ``group(**params)`` says
    which cases share a program. Under pytest-xdist, cases run in collection order in
    consecutive runs per worker, so a group is seldom split; where it is, each worker that
    runs part of it builds the program.
    """

    def __init__(self, test_name, prepare, group):
        self.test_name = test_name
        self.prepare = prepare
        self.group = group
        self._built = {}  # (back end, group) -> {case key: outputs, or None}

    @staticmethod
    def key(params):
        return tuple(sorted((k, repr(v)) for k, v in params.items() if k != "op_backend"))

    def _build(self, backend, group):
        cases = {}
        for params in SELECTED.get(self.test_name, ()):
            params = {k: v for k, v in params.items() if k != "op_backend"}
            if self.group(**params) != group:
                continue
            try:
                cases[self.key(params)] = self.prepare(**params)
            except Exception:  # noqa: BLE001 - the case's own test reports it
                continue
        results = dict.fromkeys(cases)
        if len(cases) < 2:
            return results
        symbols, outputs, arrays, spans = [], [], [], {}
        for k, (case_symbols, case_outputs, case_arrays) in cases.items():
            spans[k] = (len(outputs), len(outputs) + len(case_outputs))
            symbols += case_symbols
            outputs += case_outputs
            arrays += case_arrays
        before = [a.copy() for a in arrays]
        try:
            got = ex.function(symbols, outputs, backend=backend)(*arrays)
        except Exception:  # noqa: BLE001 - each case then compiles alone and reports its own error
            return results
        if not all(a.tobytes() == b.tobytes() for a, b in zip(arrays, before)):
            return results  # an input was modified: each case compiles alone to say which
        for k, (start, stop) in spans.items():
            results[k] = (cases[k][2], got[start:stop])
        return results

    def compute(self, symbols, outputs, arrays, **params):
        """The values of ``outputs`` (a list) for ``arrays``, by the current back end."""
        backend = current_backend()
        if backend != "numpy":
            group = (backend, self.group(**params))
            if group not in self._built:
                self._built[group] = self._build(*group)
            found = self._built[group].get(self.key(params))
            if found is not None:
                batch_arrays, got = found
                # the batch ran on the very values this test built
                if len(batch_arrays) == len(arrays) and all(
                    a.dtype == b.dtype and a.shape == b.shape and a.strides == b.strides and a.tobytes() == b.tobytes()
                    for a, b in zip(batch_arrays, arrays)
                ):
                    return list(got)
        return list(ex.function(symbols, outputs, backend=backend)(*arrays))
