"""ex.nnet.pool_2d/pool_3d against Theano's pooling written loop by loop: every mode, with and
without ignore_border, padding and strides; gradients (max to the first maximum) against
finite differences; the errors."""

import numpy as np
import pytest

import exprc as ex
from exprc.shapes import ShapeError

from ._oracle import check, checks_in_one_program, current_backend, declare, make

MODES = ["max", "sum", "average_inc_pad", "average_exc_pad"]


def _out_length(n, w, s, p, ignore_border):
    if ignore_border:
        return (n + 2 * p - w) // s + 1
    if s >= w:
        return (n - 1) // s + 1
    return max(0, (n - 1 - w + s) // s) + 1


def pool_loops(x, ws, stride, pad, ignore_border, mode):
    """Theano's ``Pool.perform``: each window's region of the padded input, clipped to the
    real input unless the mode is average_inc_pad, then max, sum or mean of it."""
    nd = len(ws)
    spatial = x.shape[-nd:]
    padded_shape = tuple(n + 2 * p for n, p in zip(spatial, pad))
    padded = np.zeros(x.shape[:-nd] + padded_shape, dtype=x.dtype)
    padded[(Ellipsis,) + tuple(slice(p, p + n) for p, n in zip(pad, spatial))] = x
    out_shape = tuple(_out_length(n, w, s, p, ignore_border) for n, w, s, p in zip(spatial, ws, stride, pad))
    out = np.zeros(x.shape[:-nd] + out_shape, dtype=x.dtype)
    for lead in np.ndindex(*x.shape[:-nd]):
        for pos in np.ndindex(*out_shape):
            region = []
            for i in range(nd):
                start = pos[i] * stride[i]
                end = min(start + ws[i], padded_shape[i])
                if mode != "average_inc_pad":
                    start, end = max(start, pad[i]), min(end, padded_shape[i] - pad[i])
                region.append(slice(start, end))
            values = padded[lead + tuple(region)]
            out[lead + pos] = {"max": np.max, "sum": np.sum}.get(mode, np.mean)(values)
    return out


# (input shape, ws, stride, pad, ignore_border)
POOL_CASES = [
    ((2, 3, 6, 6), (2, 2), None, (0, 0), True),
    ((2, 3, 7, 5), (2, 2), None, (0, 0), True),
    ((2, 3, 7, 5), (2, 2), None, (0, 0), False),
    ((1, 2, 7, 6), (3, 2), (1, 2), (0, 0), True),
    ((1, 2, 7, 6), (3, 3), (2, 1), (0, 0), False),
    ((1, 2, 5, 6), (2, 3), (3, 4), (0, 0), False),
    ((1, 2, 6, 5), (3, 3), (2, 2), (1, 1), True),
    ((1, 2, 6, 5), (3, 2), (1, 1), (2, 1), True),
    ((2, 5, 4), (2, 3), (2, 1), (1, 0), True),
    ((6, 7), (4, 4), (3, 3), (0, 0), False),
]


def _case_id(case):
    shape, ws, stride, pad, ignore_border = case
    return f"{'x'.join(map(str, shape))}-ws{ws}-st{stride}-pad{pad}-ib{ignore_border}"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_pool_2d_matches_loops(dtype, mode):
    rng = np.random.default_rng(1)
    with checks_in_one_program():
        for shape, ws, stride, pad, ignore_border in POOL_CASES:
            xv = make(shape, dtype, rng=rng)
            x = declare("x", xv, "partial")
            y = ex.nnet.pool_2d(x, ws, ignore_border=ignore_border, stride=stride, pad=pad, mode=mode)
            expected = pool_loops(xv, ws, stride or ws, pad, ignore_border, mode)
            assert y.dtype == dtype and y.type.shape[1:] == expected.shape[1:]
            check(y, {x: xv}, expected)


@pytest.mark.parametrize("layout", ["transposed", "strided", "broadcast"])
def test_pool_2d_of_strided_and_broadcast_inputs(layout):
    xv = make((3, 2, 5, 7), "float64", layout, np.random.default_rng(2))
    x = declare("x", xv)
    with checks_in_one_program():
        for mode in MODES:
            y = ex.nnet.pool_2d(x, (2, 3), stride=(2, 2), pad=(1, 0), mode=mode)
            check(y, {x: xv}, pool_loops(xv, (2, 3), (2, 2), (1, 0), True, mode))


def test_pool_3d_matches_loops():
    xv = make((2, 5, 4, 6), "float32", rng=np.random.default_rng(3))
    x = declare("x", xv)
    with checks_in_one_program():
        for mode in MODES:
            y = ex.nnet.pool_3d(x, (2, 2, 3), ignore_border=False, stride=(2, 1, 2), mode=mode)
            check(y, {x: xv}, pool_loops(xv, (2, 2, 3), (2, 1, 2), (0, 0, 0), False, mode))


def test_pool_2d_static_shapes():
    x = ex.tensor("x", shape=(None, 20, 24, 24))
    assert ex.nnet.pool_2d(x, (2, 2)).type.shape == (None, 20, 12, 12)
    y = ex.tensor("y", shape=(None, 1, 7, 5))
    assert ex.nnet.pool_2d(y, (2, 2)).type.shape == (None, 1, 3, 2)
    assert ex.nnet.pool_2d(y, (2, 2), ignore_border=False).type.shape == (None, 1, 4, 3)
    assert ex.nnet.pool_2d(y, (3, 3), stride=(1, 1), ignore_border=False).type.shape == (None, 1, 5, 3)
    assert ex.nnet.pool_2d(y, (3, 3), stride=(2, 2), pad=(1, 1)).type.shape == (None, 1, 4, 3)


@pytest.mark.parametrize("mode", MODES)
def test_pool_2d_gradients_match_finite_differences(mode):
    if current_backend() == "cuda":
        pytest.skip("verify_grad compiles for numpy or c; the CUDA back end runs these ops as host steps")
    # Distinct values, far apart, so that no finite difference moves a maximum.
    rng = np.random.default_rng(4)
    xv = rng.permutation(2 * 2 * 7 * 6).reshape(2, 2, 7, 6) * 0.1
    backend = current_backend()
    for ws, stride, pad, ignore_border in (((2, 2), None, (0, 0), False), ((3, 2), (2, 1), (1, 1), True)):

        def pool(x, ws=ws, stride=stride, pad=pad, ignore_border=ignore_border):
            return ex.nnet.pool_2d(x, ws, ignore_border=ignore_border, stride=stride, pad=pad, mode=mode)

        ex.verify_grad(pool, [xv], backend=backend)
        if backend == "numpy":
            # The gradient ops' own gradients (the C back end runs the same references).
            ex.verify_grad(lambda x, pool=pool: ex.grad((pool(x) ** 2).sum(), x), [xv])


def test_max_pool_gradient_goes_to_the_first_maximum():
    xv = np.array([[1.0, 3.0, 3.0, 0.0], [3.0, 2.0, 0.0, 3.0], [5.0, 5.0, 4.0, 4.0], [5.0, 5.0, 4.0, 4.0]])
    x = declare("x", xv)
    g = ex.grad(ex.nnet.pool_2d(x, (2, 2)).sum(), x)
    expected = np.array([[0.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    # Overlapping windows: each window sends its gradient to its own first maximum.
    g2 = ex.grad((ex.nnet.pool_2d(x, (2, 2), stride=(1, 1)) * np.arange(9.0).reshape(3, 3)).sum(), x)
    expected2 = np.zeros((4, 4))
    for i in range(3):
        for j in range(3):
            window = xv[i : i + 2, j : j + 2]
            a, b = np.unravel_index(np.argmax(window), (2, 2))
            expected2[i + a, j + b] += 3 * i + j
    with checks_in_one_program():
        check(g, {x: xv}, expected)
        check(g2, {x: xv}, expected2)


def test_average_pool_gradient_values():
    xv = make((1, 1, 5, 4), "float64", rng=np.random.default_rng(5))
    x = declare("x", xv)
    with checks_in_one_program():
        for mode in ("sum", "average_inc_pad", "average_exc_pad"):
            g = ex.grad(ex.nnet.pool_2d(x, (2, 2), stride=(2, 1), pad=(1, 1), mode=mode).sum(), x)
            # Each element's gradient: the sum over the windows holding it of 1 / their divisor.
            expected = np.zeros(xv.shape)
            for i in np.ndindex(*xv.shape):
                basis = np.zeros(xv.shape)
                basis[i] = 1.0
                expected[i] = pool_loops(basis, (2, 2), (2, 1), (1, 1), True, mode).sum()
            check(g, {x: xv}, expected)


@pytest.mark.backend_independent
def test_pool_2d_errors_when_building():
    x = ex.tensor("x", shape=(None, 3, 4, 5))
    with pytest.raises(ShapeError, match=r"pool \(max\): window \(5, 2\) is larger than the input of shape"):
        ex.nnet.pool_2d(x, (5, 2))
    with pytest.raises(ValueError, match=r"pool_2d: ws \(2, 2\) and stride \(0, 1\) must be positive"):
        ex.nnet.pool_2d(x, (2, 2), stride=(0, 1))
    with pytest.raises(ValueError, match=r"pad \(2, 0\) must be below ws \(2, 2\)"):
        ex.nnet.pool_2d(x, (2, 2), pad=(2, 0))
    with pytest.raises(ValueError, match="needs ignore_border=True"):
        ex.nnet.pool_2d(x, (2, 2), pad=(1, 0), ignore_border=False)
    with pytest.raises(ValueError, match="pool_2d: mode must be one of"):
        ex.nnet.pool_2d(x, (2, 2), mode="average")
    with pytest.raises(ValueError, match="pool_2d: ws must be an int or 2 ints"):
        ex.nnet.pool_2d(x, (2, 2, 2))
    with pytest.raises(ValueError, match="pool_2d: .* is 1-d; expected at least 2 axes"):
        ex.nnet.pool_2d(ex.vector("v"), (2, 2))
    with pytest.raises(TypeError, match=r"pool \(max\): .* is int64; expected a floating-point tensor"):
        ex.nnet.pool_2d(ex.matrix("m", dtype="int64"), (2, 2))


def test_pool_2d_errors_when_called():
    x = ex.tensor4("x")
    f = ex.function([x], ex.nnet.pool_2d(x, (3, 3)), backend=current_backend())
    with pytest.raises(
        ShapeError, match=r"pool \(max\): window \(3, 3\) is larger than the input of shape \(1, 1, 2, 5\)"
    ):
        f(np.zeros((1, 1, 2, 5)))
