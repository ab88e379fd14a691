"""Gradient graphs through the C back end: verify_grad with backend="c" on functions that
use many ops at once (one compiled function each, to keep compiling time down), and the
compiled gradients equal to the NumPy reference's on strided and broadcast inputs."""

import numpy as np
import pytest

import exprc as ex
from tests.grad.test_rules import BINARY, UNARY
from tests.helpers import in_layout


def _unary_all(x):
    parts = []
    for name, (low, high) in sorted(UNARY.items()):
        # map x from (-1, 1) into the op's domain
        scaled = low + (x + 1) * (0.5 * (high - low))
        parts.append(ex.flatten(ex.ELEMWISE_FUNCTIONS[name](scaled)))
    return ex.concatenate(parts)


def _binary_all(x, y):
    parts = []
    for _name, (fn, (lx, hx), (ly, hy)) in sorted(BINARY.items()):
        parts.append(ex.flatten(fn(lx + (x + 1) * (0.5 * (hx - lx)), ly + (y + 1) * (0.5 * (hy - ly)))))
    return ex.concatenate(parts)


def _structure_all(x, w):
    parts = [
        x.sum(axis=0),
        x.prod(axis=1),
        x.mean(axis=0),
        x.var(axis=1),
        x.std(axis=0),
        x.max(axis=1),
        x.min(axis=0),
        ex.logsumexp(x, axis=1),
        ex.flatten(ex.softmax(x)),
        ex.flatten(ex.log_softmax(x, axis=0)),
        ex.flatten(x @ w),
        ex.flatten(ex.tensordot(x, w, axes=([1], [0]))),
        ex.flatten(ex.outer(x[0], w[:, 0])),
        ex.flatten(x.T.reshape((-1,))),
        ex.flatten(ex.concatenate([x, x[:, ::-1]], axis=1)),
        ex.flatten(ex.broadcast_to(x[:1], (2, 3, 4))),
        ex.flatten(x[1:, ::2] ** 2),
        x[[0, 2, 2], 1],
        ex.flatten(ex.set_subtensor(x[1:, :2], w[:2, :2].T)),
        ex.flatten(ex.inc_subtensor(x[[0, 0]], w[:, 1])),
        ex.flatten(ex.clip(x, -0.5, 0.5)),
        ex.flatten(ex.where(x > 0, x * w[0, 0], ex.sin(x))),
    ]
    return ex.concatenate(parts)


@pytest.mark.parametrize("layout", ["contiguous", "strided"])
def test_verify_grad_c_unary(rng, layout):
    ex.verify_grad(_unary_all, [in_layout(rng.uniform(-0.95, 0.95, (3, 4)), layout)], rng=rng, backend="c")


def test_verify_grad_c_binary_broadcast(rng):
    ex.verify_grad(
        _binary_all,
        [rng.uniform(-0.95, 0.95, (3, 1)), in_layout(rng.uniform(-0.95, 0.95, (3, 4)), "transposed")],
        rng=rng,
        backend="c",
    )
    # a length that is 1 only at run time
    ex.verify_grad(
        _binary_all, [rng.uniform(-0.95, 0.95, (1, 4)), rng.uniform(-0.95, 0.95, (3, 4))], rng=rng, backend="c"
    )


def test_verify_grad_c_reductions_linalg_shapes_indexing(rng):
    ex.verify_grad(
        _structure_all,
        [in_layout(rng.uniform(0.2, 1.5, (3, 4)), "strided"), rng.uniform(-1, 1, (4, 2))],
        rng=rng,
        backend="c",
    )


def test_c_gradients_equal_numpy_gradients(rng):
    x, w = ex.matrix("x"), ex.matrix("w")
    cost = (_structure_all(x, w) ** 2).sum()
    outputs = ex.grad(cost, [x, w])
    by_numpy = ex.function([x, w], outputs, backend="numpy")
    by_c = ex.function([x, w], outputs, backend="c")
    for xv in [
        rng.uniform(0.2, 1.5, (3, 4)),
        in_layout(rng.uniform(0.2, 1.5, (3, 4)), "strided"),
        in_layout(rng.uniform(0.2, 1.5, (3, 4)), "broadcast"),
    ]:
        wv = in_layout(rng.uniform(-1, 1, (4, 2)), "transposed")
        for got, expected in zip(by_c(xv, wv), by_numpy(xv, wv)):
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_c_second_order_and_jacobian(rng):
    x = ex.vector("x")
    cost = (ex.exp(x) + ex.log(x) + ex.tanh(x) + ex.sigmoid(x) + ex.softplus(x)).sum() + ex.logsumexp(x)
    outputs = [ex.hessian(cost, x), ex.jacobian(ex.softmax(x), x), ex.grad(ex.grad(cost, x).sum(), x)]
    by_numpy = ex.function([x], outputs, backend="numpy")
    by_c = ex.function([x], outputs, backend="c")
    xv = in_layout(rng.uniform(0.5, 2, 5), "strided")
    for got, expected in zip(by_c(xv), by_numpy(xv)):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    h = by_c(xv)[0]
    assert np.isfinite(h).all()
