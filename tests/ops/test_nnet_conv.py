"""ex.nnet.conv1d/conv2d/conv3d against a convolution written loop by loop: every border mode,
stride, dilation, group count and both filter_flip values, float32 and float64, strided and
broadcast inputs; gradients against finite differences; the errors."""

import numpy as np
import pytest

import exprc as ex
from exprc.shapes import ShapeError

from ._oracle import check, checks_in_one_program, current_backend, declare, make


def conv_loops(x, w, pad, stride, dilation, groups, flip):
    """The convolution by its definition: one output element at a time, in float64."""
    nd = x.ndim - 2
    if flip:
        w = w[(slice(None), slice(None)) + (slice(None, None, -1),) * nd]
    n_batch, channels = x.shape[:2]
    n_out, per_group = w.shape[:2]
    xp = np.zeros((n_batch, channels) + tuple(s + 2 * p for s, p in zip(x.shape[2:], pad)))
    xp[(slice(None), slice(None)) + tuple(slice(p, p + s) for p, s in zip(pad, x.shape[2:]))] = x
    kernel = w.shape[2:]
    out_shape = tuple((xp.shape[2 + i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1 for i in range(nd))
    out = np.zeros((n_batch, n_out) + out_shape)
    outs_per_group = n_out // groups
    for n in range(n_batch):
        for o in range(n_out):
            group = o // outs_per_group
            for pos in np.ndindex(*out_shape):
                total = 0.0
                for c in range(per_group):
                    for k in np.ndindex(*kernel):
                        at = tuple(pos[i] * stride[i] + k[i] * dilation[i] for i in range(nd))
                        total += xp[(n, group * per_group + c) + at] * w[(o, c) + k]
                out[(n, o) + pos] = total
    return out


def _pad(border_mode, kernel, dilation):
    nd = len(kernel)
    if border_mode == "valid":
        return (0,) * nd
    if border_mode == "full":
        return tuple(d * (k - 1) for d, k in zip(dilation, kernel))
    if border_mode == "half":
        return tuple(d * (k // 2) for d, k in zip(dilation, kernel))
    return (border_mode,) * nd if isinstance(border_mode, int) else tuple(border_mode)


# (input shape, filter shape, border_mode, subsample, filter_dilation, num_groups)
CONV2D_CASES = [
    ((2, 3, 6, 7), (4, 3, 3, 2), "valid", (1, 1), (1, 1), 1),
    ((2, 3, 6, 7), (4, 3, 3, 2), "full", (1, 1), (1, 1), 1),
    ((2, 3, 6, 7), (4, 3, 3, 3), "half", (1, 1), (1, 1), 1),
    ((2, 3, 6, 7), (4, 3, 2, 3), "half", (2, 1), (1, 1), 1),
    ((1, 2, 5, 5), (3, 2, 3, 3), 1, (1, 1), (1, 1), 1),
    ((1, 2, 5, 6), (3, 2, 3, 2), (2, 1), (2, 3), (1, 1), 1),
    ((2, 2, 7, 8), (2, 2, 2, 3), "valid", (1, 1), (2, 3), 1),
    ((1, 2, 7, 8), (2, 2, 3, 2), "full", (3, 2), (2, 2), 1),
    ((1, 2, 7, 8), (2, 2, 3, 3), "half", (1, 2), (2, 1), 1),
    ((2, 4, 5, 6), (6, 2, 3, 3), "valid", (1, 1), (1, 1), 2),
    ((1, 6, 5, 5), (3, 2, 2, 2), (1, 0), (2, 2), (1, 2), 3),
    ((1, 4, 4, 4), (4, 1, 3, 3), "half", (1, 1), (1, 1), 4),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_conv2d_matches_loops(dtype):
    rng = np.random.default_rng(1)
    with checks_in_one_program():
        for x_shape, w_shape, border_mode, subsample, dilation, groups in CONV2D_CASES:
            for flip in (True, False):
                xv, wv = make(x_shape, dtype, rng=rng), make(w_shape, dtype, rng=rng)
                x, w = declare("x", xv, "partial"), declare("w", wv, "static")
                y = ex.nnet.conv2d(
                    x,
                    w,
                    border_mode=border_mode,
                    subsample=subsample,
                    filter_flip=flip,
                    filter_dilation=dilation,
                    num_groups=groups,
                )
                pad = _pad(border_mode, w_shape[2:], dilation)
                expected = conv_loops(xv, wv, pad, subsample, dilation, groups, flip).astype(dtype)
                assert y.dtype == dtype and y.type.shape[1:] == expected.shape[1:]
                check(y, {x: xv, w: wv}, expected)


def test_conv1d_and_conv3d_match_loops():
    rng = np.random.default_rng(2)
    with checks_in_one_program():
        xv, wv = make((2, 3, 9), "float64", rng=rng), make((4, 3, 3), "float64", rng=rng)
        x, w = declare("x", xv), declare("w", wv, "static")
        for border_mode, stride, dilation in (("valid", 1, 1), ("full", 2, 1), ("half", 1, 2), (2, 3, 2)):
            y = ex.nnet.conv1d(x, w, border_mode=border_mode, subsample=stride, filter_dilation=dilation)
            pad = _pad(border_mode, (3,), (dilation,))
            check(y, {x: xv, w: wv}, conv_loops(xv, wv, pad, (stride,), (dilation,), 1, True))
        xv3, wv3 = make((1, 2, 4, 5, 4), "float32", rng=rng), make((2, 1, 2, 3, 2), "float32", rng=rng)
        x3, w3 = declare("x3", xv3), declare("w3", wv3, "static")
        y = ex.nnet.conv3d(x3, w3, border_mode="half", subsample=(1, 2, 1), num_groups=2, filter_flip=False)
        pad = _pad("half", (2, 3, 2), (1, 1, 1))
        check(y, {x3: xv3, w3: wv3}, conv_loops(xv3, wv3, pad, (1, 2, 1), (1, 1, 1), 2, False).astype("float32"))


@pytest.mark.parametrize("layout", ["transposed", "strided", "broadcast"])
def test_conv2d_of_strided_and_broadcast_inputs(layout):
    rng = np.random.default_rng(3)
    xv = make((2, 3, 5, 6), "float64", layout, rng)
    wv = make((2, 3, 3, 3), "float64", layout, rng)
    x, w = declare("x", xv), declare("w", wv)
    y = ex.nnet.conv2d(x, w, border_mode=(1, 1), subsample=(2, 1))
    check(y, {x: xv, w: wv}, conv_loops(xv, wv, (1, 1), (2, 1), (1, 1), 1, True))


def test_conv2d_static_shapes():
    x, w = ex.tensor("x", shape=(None, 3, 28, 28)), ex.tensor("w", shape=(20, 3, 5, 5))
    assert ex.nnet.conv2d(x, w).type.shape == (None, 20, 24, 24)
    assert ex.nnet.conv2d(x, w, border_mode="full").type.shape == (None, 20, 32, 32)
    assert ex.nnet.conv2d(x, w, border_mode="half", subsample=2).type.shape == (None, 20, 14, 14)
    assert ex.nnet.conv2d(x, w, filter_dilation=(2, 3)).type.shape == (None, 20, 20, 16)
    assert ex.nnet.conv2d(ex.tensor4("u"), w).type.shape == (None, 20, None, None)


GRAD_CASES = [
    ((1, 2, 5, 6), (3, 2, 3, 2), "valid", (1, 1), (1, 1), 1, True),
    ((2, 2, 5, 6), (2, 2, 2, 3), (1, 2), (2, 3), (1, 1), 1, False),
    ((1, 4, 6, 5), (4, 2, 2, 2), "full", (2, 1), (2, 1), 2, True),
    ((1, 2, 6, 7), (2, 2, 3, 3), "half", (3, 2), (1, 2), 1, False),
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=lambda c: f"{c[2]}-s{c[3]}-d{c[4]}-g{c[5]}-flip{c[6]}")
def test_conv2d_gradients_match_finite_differences(case):
    if current_backend() == "cuda":
        pytest.skip("verify_grad compiles for numpy or c; the CUDA back end runs these ops as host steps")
    x_shape, w_shape, border_mode, subsample, dilation, groups, flip = case
    rng = np.random.default_rng(4)
    xv, wv = rng.normal(size=x_shape), rng.normal(size=w_shape)

    def conv(x, w):
        return ex.nnet.conv2d(
            x, w, filter_shape=w_shape, border_mode=border_mode, subsample=subsample,
            filter_flip=flip, filter_dilation=dilation, num_groups=groups,
        )  # fmt: skip

    ex.verify_grad(conv, [xv, wv], backend=current_backend())
    if current_backend() == "numpy":
        # Second derivatives: each gradient op's own gradient (the C back end runs the same
        # NumPy references for these ops, so once is enough).
        ex.verify_grad(lambda x, w: ex.grad((conv(x, w) ** 2).sum(), x), [xv, wv])
        ex.verify_grad(lambda x, w: ex.grad((conv(x, w) ** 2).sum(), w), [xv, wv])


def test_conv2d_gradients_in_float32_on_strided_points():
    if current_backend() == "cuda":
        pytest.skip("verify_grad compiles for numpy or c")
    rng = np.random.default_rng(5)
    xv = make((2, 2, 5, 5), "float32", "strided", rng)
    wv = make((3, 2, 2, 2), "float32", "transposed", rng)
    ex.verify_grad(lambda x, w: ex.nnet.conv2d(x, w, subsample=2), [xv, wv], backend=current_backend())


def test_conv2d_gradient_values_match_loops():
    """Both gradients of ``<g, conv(x, w)>`` against the loop convolution of basis arrays."""
    rng = np.random.default_rng(6)
    xv, wv = rng.normal(size=(1, 2, 5, 4)), rng.normal(size=(3, 2, 2, 3))
    gv = rng.normal(size=(1, 3, 2, 2))
    x, w = declare("x", xv), declare("w", wv)
    y = ex.nnet.conv2d(x, w, border_mode=(0, 1), subsample=(2, 3))
    assert conv_loops(xv, wv, (0, 1), (2, 3), (1, 1), 1, True).shape == gv.shape
    gx, gw = ex.grad((y * gv).sum(), [x, w])
    expected_gx, expected_gw = np.zeros_like(xv), np.zeros_like(wv)
    for target, expected in ((xv, expected_gx), (wv, expected_gw)):
        for i in np.ndindex(*target.shape):
            basis = np.zeros_like(target)
            basis[i] = 1.0
            args = (basis, wv) if target is xv else (xv, basis)
            expected[i] = (conv_loops(*args, (0, 1), (2, 3), (1, 1), 1, True) * gv).sum()
    with checks_in_one_program():
        check(gx, {x: xv, w: wv}, expected_gx)
        check(gw, {x: xv, w: wv}, expected_gw)


@pytest.mark.backend_independent
def test_conv2d_errors_when_building():
    x, w = ex.tensor("x", shape=(None, 3, 8, 8)), ex.tensor("w", shape=(4, 2, 3, 3))
    with pytest.raises(ShapeError, match=r"conv2d: input of shape \(\?, 3, 8, 8\) has 3 channels.*\(4, 2, 3, 3\)"):
        ex.nnet.conv2d(x, w)
    big = ex.tensor("big", shape=(4, 3, 9, 2))
    with pytest.raises(ShapeError, match=r"conv2d: filters of shape \(4, 3, 9, 2\).*larger than the input"):
        ex.nnet.conv2d(x, big)
    w3 = ex.tensor("w3", shape=(4, 3, 3, 3))
    with pytest.raises(ValueError, match=r"conv2d: subsample \(0, 1\) must be positive"):
        ex.nnet.conv2d(x, w3, subsample=(0, 1))
    with pytest.raises(ValueError, match="conv2d: filter_dilation"):
        ex.nnet.conv2d(x, w3, filter_dilation=0)
    with pytest.raises(ValueError, match="conv2d: border_mode must be"):
        ex.nnet.conv2d(x, w3, border_mode="same")
    with pytest.raises(ValueError, match=r"conv2d: border_mode 'full' needs the filters' spatial lengths"):
        ex.nnet.conv2d(x, ex.tensor4("w"), border_mode="full")
    with pytest.raises(ShapeError, match=r"6 filters .* do not split into 4 groups"):
        ex.nnet.conv2d(ex.tensor("x", shape=(1, 4, 5, 5)), ex.tensor("w", shape=(6, 1, 3, 3)), num_groups=4)
    with pytest.raises(ValueError, match=r"conv2d: input x is 3-d; expected 4-d"):
        ex.nnet.conv2d(ex.tensor3("x"), w3)
    with pytest.raises(TypeError, match="conv2d: .* is int64; expected float32 or float64"):
        ex.nnet.conv2d(ex.tensor4("x", dtype="int64"), w3)
    with pytest.raises(ShapeError, match="conv2d: filter_shape"):
        ex.nnet.conv2d(x, w3, filter_shape=(4, 3, 5, 5))


def test_conv2d_errors_when_called():
    x, w = ex.tensor4("x"), ex.tensor4("w")
    hinted = ex.nnet.conv2d(x, w, filter_shape=(None, 3, 3, 3), border_mode="half")
    assert hinted.type.shape == (None, None, None, None)
    g = ex.function([x, w], hinted, backend=current_backend())
    with pytest.raises(ShapeError):
        g(np.zeros((1, 3, 5, 5)), np.zeros((2, 3, 5, 5)))
    f = ex.function([x, w], ex.nnet.conv2d(x, w), backend=current_backend())
    with pytest.raises(ShapeError, match=r"conv2d: input of shape \(1, 3, 5, 5\) has 3 channels"):
        f(np.zeros((1, 3, 5, 5)), np.zeros((2, 2, 3, 3)))
    with pytest.raises(ShapeError, match=r"conv2d: filters of shape \(2, 3, 6, 3\) .* larger than the input"):
        f(np.zeros((1, 3, 5, 5)), np.zeros((2, 3, 6, 3)))
