"""mode="check" and mode="nanguard" (exprc.check): wrong kernels are caught and named,
NaN and inf are traced to the node that creates them."""

import dataclasses

import numpy as np
import pytest

import exprc as ex
from exprc.codegen.c import program as c_backend
from exprc.codegen.ir import kernel as ir

BACKENDS = ("numpy", "c")


def _swap_call(expr, old, new):
    """``expr`` with every call of scalar op ``old`` calling ``new`` instead."""
    if isinstance(expr, ir.Call):
        args = tuple(_swap_call(a, old, new) for a in expr.call_args)
        return ir.Call(new if expr.op == old else expr.op, args, expr.dtype, expr.note)
    if isinstance(expr, ir.Cast):
        return ir.Cast(_swap_call(expr.arg, old, new), expr.dtype, expr.note)
    return expr


def wrong_kernel(note, old, new):
    """A program hook making the kernel whose result is ``note`` (every kernel, if None) call
    ``new`` where it called ``old``: a deliberately wrong kernel, as a code generation bug
    would make it."""
    hits = []

    def hook(program):
        for step in program.steps:
            kernel = getattr(step, "kernel", None)
            if kernel is not None and note in (None, kernel.note):
                stores = tuple((b, _swap_call(e, old, new)) for b, e in kernel.stores)
                reduction = kernel.reduction
                if reduction is not None:
                    reduction = dataclasses.replace(reduction, value=_swap_call(reduction.value, old, new))
                step.kernel = dataclasses.replace(kernel, stores=stores, reduction=reduction)
                hits.append(step.kernel.name)
        return program

    return c_backend.program_hook(hook), hits


def _graph():
    """Three kernels with a NumPy step (a matmul) between: exp(x) is stored for the matmul."""
    x, y = ex.matrix("x"), ex.vector("y")
    a = ex.exp(x)
    b = ex.sin(ex.dot(a, y)) * 2
    return [x, y], a, b


@pytest.mark.parametrize("backend", BACKENDS)
def test_check_mode_agrees_and_returns_the_results(backend, rng):
    (x, y), _, b = _graph()
    out = b + ex.log(y).sum()
    args = rng.uniform(0.5, 2, (3, 4)), rng.uniform(0.5, 2, 4)
    checked = ex.function([x, y], [out, b], backend=backend, mode="check")
    plain = ex.function([x, y], [out, b], backend=backend)
    for got, want in zip(checked(*args), plain(*args)):
        np.testing.assert_array_equal(got, want)
    assert checked.mode == "check" and plain.mode is None


def test_check_names_the_wrong_kernel_and_shows_its_code(rng):
    (x, y), a, b = _graph()
    hook, hits = wrong_kernel("exp(x)", "exp", "expm1")
    with hook:
        f = ex.function([x, y], b, mode="check")
        with pytest.raises(ex.CheckError) as caught:
            f(rng.uniform(0.5, 2, (3, 4)), rng.uniform(0.5, 2, 4))
    assert set(hits) == {"k0_exp_x"}  # in the program and in its probe
    error = caught.value
    assert error.variable is a  # not the output, where the error shows too
    assert error.step == 0
    assert "computes exp(x) (Elemwise{exp}) differently" in str(error)
    assert "expm1(x_v)" in error.code and "k0_exp_x" in error.code
    np.testing.assert_allclose(error.max_abs, np.abs(error.got - error.expected).max())
    assert error.max_abs == pytest.approx(1.0)  # exp - expm1 = 1 everywhere
    assert "float64 array of shape (3, 4)" in str(error)


def test_check_names_a_later_kernel_when_the_earlier_ones_are_right(rng):
    (x, y), a, b = _graph()
    hook, hits = wrong_kernel("sin(exp(x) @ y) * 2", "sin", "cos")
    with hook:
        f = ex.function([x, y], b, mode="check")
        with pytest.raises(ex.CheckError) as caught:
            f(rng.uniform(0.5, 2, (3, 4)), rng.uniform(0.5, 2, 4))
    assert len(set(hits)) == 1
    assert caught.value.variable is b
    assert "sin(exp(x) @ y)" in str(caught.value) and "cos(" in caught.value.code


def test_check_reports_nan_where_the_reference_has_none(rng):
    x = ex.vector("x")
    y = ex.exp(x) + 1
    hook, _ = wrong_kernel("exp(x) + 1", "exp", "log")
    with hook:
        f = ex.function([x], y, mode="check")
        with pytest.raises(ex.CheckError, match="not finite where the reference's value is"):
            f(-rng.uniform(1, 2, 5))


def test_check_wrong_integer_kernel(rng):
    i = ex.ivector("i")
    y = (i * 3 + 1).sum()
    hook, _ = wrong_kernel("(i * 3 + 1).sum()", "add", "subtract")
    with hook:
        f = ex.function([i], y, mode="check")
        with pytest.raises(ex.CheckError) as caught:
            f(np.arange(4, dtype=np.int32))
    assert caught.value.variable is y
    assert caught.value.got.item() == 18 - 4 and caught.value.expected.item() == 18 + 4


@pytest.mark.parametrize("target", ["uint32", "uint64"])
def test_check_leaves_undefined_unsigned_casts_alone(target):
    """NaN or an infinity converted to uint32 or uint64 has no NumPy answer to compare with
    (its scalar and array casts disagree): the step is not compared; a defined one is."""
    x = ex.vector("x")
    y = ex.log(x).astype(target) + 1
    f = ex.function([x], y, mode="check")
    got = f(np.array([0.0, -1.0, 8.0]))  # log gives -inf and NaN
    assert got.dtype == target and got[2] == 3
    hook, _ = wrong_kernel(None, "add", "subtract")
    with hook:
        wrong = ex.function([x], ex.log(x).astype(target) + 1, mode="check")
        with pytest.raises(ex.CheckError):
            wrong(np.array([8.0, 1.0]))


def test_check_tolerates_reordered_float32_sums(rng):
    x = ex.fvector("x")
    f = ex.function([x], [(x * x).sum(), (x - 1.5).sum()], mode="check")
    f(rng.uniform(-1, 1, 100_000).astype(np.float32))  # the C sum accumulates in float64, NumPy's pairwise in float32


def test_probe_lowers_to_the_same_kernels():
    (x, y), a, b = _graph()
    z = ex.softmax(x, axis=1) * ex.log(y) - ex.exp(x).sum(axis=0)
    f = ex.function([x, y], [b, z], mode="check")
    checked = f._program
    kernels = [(k.name, k.note) for k in checked.program.program.kernels]
    assert kernels == [(k.name, k.note) for k in checked.probe.program.kernels]
    assert len(checked.probe_outputs) > 2


def test_unknown_mode():
    x = ex.vector("x")
    with pytest.raises(ValueError, match="mode 'fast' is not known; expected None or one of"):
        ex.function([x], x, mode="fast")


@pytest.mark.parametrize("backend", BACKENDS)
def test_nanguard_names_the_node_that_creates_nan(backend):
    x, y = ex.vector("x"), ex.vector("y")
    y_log = ex.log(y)
    out = ex.exp(x) * 2 + y_log.sum()
    f = ex.function([x, y], out, backend=backend, mode="nanguard")
    np.testing.assert_allclose(f(np.zeros(2), np.ones(3)), [2.0, 2.0])
    with pytest.raises(ex.NanGuardError) as caught:
        f(np.zeros(2), np.array([1.0, -1.0, 2.0]))
    assert caught.value.variable is y_log
    assert "creates NaN: log(y) (Elemwise{log})" in str(caught.value)
    if backend == "c":
        assert "inside the kernel that stores log(y).sum()" in str(caught.value)
        assert "log(y_v)" in caught.value.code


def test_nanguard_inf_and_nan_from_infinities():
    a, b = ex.vector("a"), ex.vector("b")
    big_a, big_b = ex.exp(a), ex.exp(b)
    diff = big_a - big_b
    f = ex.function([a, b], [diff, big_a], mode="nanguard")
    with pytest.raises(ex.NanGuardError, match="creates inf: exp") as caught:
        f(np.array([1000.0]), np.array([0.0]))
    assert caught.value.variable is big_a
    g = ex.function([a, b], diff * 2, mode="nanguard")
    with pytest.raises(ex.NanGuardError, match="creates NaN: exp\\(a\\) - exp\\(b\\)") as caught:
        g(np.array([1000.0]), np.array([1000.0]))  # the kernel stores NaN only: inf - inf made it
    assert caught.value.variable is diff
    h = ex.function([a, b], (a - b) * 2, mode="nanguard")
    with pytest.raises(ex.NanGuardError, match="creates NaN: a - b") as caught:
        h(np.array([np.inf, 1.0]), np.array([np.inf, 0.0]))  # inf - inf: the infinities were given, the NaN is made
    assert "(a - b) * 2" in str(caught.value)


def test_nanguard_leaves_nan_that_was_given():
    x = ex.vector("x")
    f = ex.function([x], ex.exp(x) + 1, mode="nanguard")
    got = f(np.array([np.nan, 0.0]))
    assert np.isnan(got[0]) and got[1] == 2.0
