"""ex.nnet's activations, losses, one_hot and batch normalization against NumPy, their
gradients against finite differences, and that they compile to kernels (no NumPy steps)."""

import math

import numpy as np
import pytest

import exprc as ex
from exprc.codegen.c.lowerings import C_LOWERINGS
from exprc.codegen.ir.lowering import Kind
from exprc.codegen.ir.steps import KernelStep, NumpyStep

from . import _oracle
from ._oracle import check, checks_in_one_program, current_backend, declare, make


def _erf(x):
    return np.vectorize(math.erf)(x)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


ALPHA, SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946

#: name -> (build, NumPy oracle)
ACTIVATIONS = {
    "relu": (ex.nnet.relu, lambda x: np.maximum(x, 0)),
    "leaky_relu": (lambda x: ex.nnet.relu(x, alpha=0.1), lambda x: np.where(x > 0, x, 0.1 * x)),
    "elu": (ex.nnet.elu, lambda x: np.where(x > 0, x, np.expm1(x))),
    "elu_alpha": (lambda x: ex.nnet.elu(x, 0.5), lambda x: np.where(x > 0, x, 0.5 * np.expm1(x))),
    "selu": (ex.nnet.selu, lambda x: SCALE * np.where(x > 0, x, ALPHA * np.expm1(x))),
    "gelu": (ex.nnet.gelu, lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2)))),
    "gelu_tanh": (
        lambda x: ex.nnet.gelu(x, approximate=True),
        lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3))),
    ),
    "silu": (ex.nnet.silu, lambda x: x * _sigmoid(x)),
    "softsign": (ex.nnet.softsign, lambda x: x / (1 + np.abs(x))),
    "hard_sigmoid": (ex.nnet.hard_sigmoid, lambda x: np.clip(0.2 * x + 0.5, 0, 1)),
    "sigmoid": (ex.nnet.sigmoid, _sigmoid),
    "softplus": (ex.nnet.softplus, lambda x: np.logaddexp(0, x)),
    "softmax": (ex.nnet.softmax, lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True)),
    "softmax_axis0": (
        lambda x: ex.nnet.softmax(x, axis=0),
        lambda x: np.exp(x) / np.exp(x).sum(0, keepdims=True),
    ),
    "log_softmax": (ex.nnet.log_softmax, lambda x: x - np.log(np.exp(x).sum(-1, keepdims=True))),
    "logsumexp": (lambda x: ex.nnet.logsumexp(x, axis=1), lambda x: np.log(np.exp(x).sum(1))),
}


@pytest.mark.parametrize("dtype, layout", [("float32", "strided"), ("float64", "contiguous")])
def test_activations_match_numpy(dtype, layout):
    xv = make((4, 5), dtype, layout, np.random.default_rng(1))
    x = declare("x", xv)
    with checks_in_one_program():
        for build, oracle in ACTIVATIONS.values():
            y = build(x)
            expected = oracle(xv.astype("float64")).astype(dtype)
            check(y, {x: xv}, expected, rtol=2e-6 if dtype == "float32" else 1e-12)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_gradients_match_finite_differences(name):
    if current_backend() != "numpy":
        pytest.skip("compositions of ops whose compiled gradients tests/grad checks; values are checked above")
    build, _ = ACTIVATIONS[name]
    # Away from the kinks at 0 (relu, elu) and at +-2.5 (hard_sigmoid).
    xv = np.array([[-3.1, -1.2, -0.4, 0.3], [0.9, 1.7, 2.2, 3.4]])
    ex.verify_grad(build, [xv])


def test_activations_compile_to_kernels_alone():
    if current_backend() != "c":
        pytest.skip("the C program's steps are what is checked")
    x = ex.matrix("x")
    f = ex.function([x], [build(x) for build, _ in ACTIVATIONS.values()], backend="c")
    steps = f._program.program.steps
    # Every value is computed by a C kernel: a step outside one may only re-view a value.
    computed_outside = [
        s.node for s in steps if isinstance(s, NumpyStep) and C_LOWERINGS.kind(s.node.op) not in (Kind.VIEW, Kind.SHAPE)
    ]
    assert any(isinstance(s, KernelStep) for s in steps) and not computed_outside, computed_outside


def test_one_hot():
    yv = np.array([[2, 0], [1, 3]], dtype="int32")
    y = declare("y", yv)
    with checks_in_one_program():
        check(ex.nnet.one_hot(y, 4), {y: yv}, np.eye(4)[yv])
        check(ex.nnet.one_hot(y, 5, "float32"), {y: yv}, np.eye(5, dtype="float32")[yv])


def test_categorical_crossentropy_of_labels_and_of_one_hot_rows():
    rng = np.random.default_rng(2)
    pv = rng.uniform(0.05, 1, size=(5, 3))
    pv /= pv.sum(1, keepdims=True)
    labels = np.array([0, 2, 1, 1, 0])
    p = declare("p", pv, "partial")
    p_dynamic = declare("pd", pv)
    y = declare("y", labels)
    t = declare("t", np.eye(3)[labels])
    expected = -np.log(pv[np.arange(5), labels])
    with checks_in_one_program():
        check(ex.nnet.categorical_crossentropy(p, y), {p: pv, y: labels}, expected)
        check(ex.nnet.categorical_crossentropy(p, t), {p: pv, t: np.eye(3)[labels]}, expected)
        # The number of classes known only when called.
        check(ex.nnet.categorical_crossentropy(p_dynamic, y), {p_dynamic: pv, y: labels}, expected)
    # A zero probability off the label costs nothing.
    zero = np.array([[0.0, 1.0]])
    z = declare("z", zero, "partial")
    lz = declare("lz", np.array([1]))
    check(ex.nnet.categorical_crossentropy(z, lz), {z: zero, lz: np.array([1])}, np.array([0.0]))


def test_crossentropy_gradients():
    if current_backend() == "cuda":
        pytest.skip("verify_grad compiles for numpy or c")
    labels = ex.constant(np.array([0, 2, 1]))
    logits = np.array([[0.3, -1.0, 2.0], [1.5, 0.2, -0.7], [0.0, 0.4, 0.1]])
    backend = current_backend()
    ex.verify_grad(
        lambda z: ex.nnet.categorical_crossentropy(ex.nnet.softmax(ex.reshape(z, (3, 3))), labels),
        [logits],
        backend=backend,
    )
    ex.verify_grad(lambda z: ex.nnet.sigmoid_binary_crossentropy(z, 0.3), [logits], backend=backend)
    ex.verify_grad(lambda o: ex.nnet.binary_crossentropy(ex.nnet.sigmoid(o), 0.7), [logits], backend=backend)


def test_binary_crossentropies():
    rng = np.random.default_rng(3)
    ov, tv = rng.uniform(0.05, 0.95, size=(3, 4)), rng.uniform(0, 1, size=(3, 4))
    zv = np.array([[-800.0, -3.0, 0.0, 3.0, 800.0]])
    o, t, z = declare("o", ov), declare("t", tv), declare("z", zv)
    with checks_in_one_program():
        check(ex.nnet.binary_crossentropy(o, t), {o: ov, t: tv}, -(tv * np.log(ov) + (1 - tv) * np.log(1 - ov)))
        # Stable from logits: finite for logits far out, where sigmoid rounds to 0 or 1.
        check(ex.nnet.sigmoid_binary_crossentropy(z, 1.0), {z: zv}, np.logaddexp(0, -zv))
        check(ex.nnet.sigmoid_binary_crossentropy(z, 0.0), {z: zv}, np.logaddexp(0, zv))


def test_batch_normalization_train_and_test():
    rng = np.random.default_rng(4)
    xv = rng.normal(size=(6, 3, 2, 2))
    gv, bv = rng.normal(size=(1, 3, 1, 1)), rng.normal(size=(1, 3, 1, 1))
    rm, rv = rng.normal(size=(1, 3, 1, 1)), rng.uniform(0.5, 2, size=(1, 3, 1, 1))
    x, g, b = declare("x", xv), declare("g", gv), declare("b", bv)
    m_in, v_in = declare("rm", rm), declare("rv", rv)
    feeds = {x: xv, g: gv, b: bv, m_in: rm, v_in: rv}
    eps = 1e-3
    out, mean, invstd, new_m, new_v = ex.nnet.batch_normalization_train(
        x, g, b, "spatial", eps, 0.25, running_mean=m_in, running_var=v_in
    )
    mu, var = xv.mean((0, 2, 3), keepdims=True), xv.var((0, 2, 3), keepdims=True)
    with checks_in_one_program():
        check(out, feeds, (xv - mu) / np.sqrt(var + eps) * gv + bv)
        check(mean, feeds, mu)
        check(invstd, feeds, 1 / np.sqrt(var + eps))
        check(new_m, feeds, 0.75 * rm + 0.25 * mu)
        check(new_v, feeds, 0.75 * rv + 0.25 * var * 24 / 23)
        test = ex.nnet.batch_normalization_test(x, g, b, m_in, v_in, "spatial", eps)
        check(test, feeds, (xv - rm) / np.sqrt(rv + eps) * gv + bv)
        check(ex.nnet.batch_normalization(x, g, b, m_in, v_in), feeds, (xv - rm) * (gv / rv) + bv)
    per_activation, *_ = ex.nnet.batch_normalization_train(x, 1.0, 0.0, epsilon=0.0)
    check(per_activation, {x: xv}, (xv - xv.mean(0)) / xv.std(0))


def test_batch_normalization_gradient():
    if current_backend() == "cuda":
        pytest.skip("verify_grad compiles for numpy or c")
    xv = np.random.default_rng(5).normal(size=(5, 3))
    ex.verify_grad(
        lambda x, g: ex.nnet.batch_normalization_train(x, g, 0.5)[0],
        [xv, np.array([1.5, -0.5, 2.0])],
        backend=current_backend(),
    )


@pytest.mark.backend_independent
def test_errors():
    with pytest.raises(TypeError, match="one_hot: labels y are float64; expected an integer tensor"):
        ex.nnet.one_hot(ex.vector("y"), 3)
    with pytest.raises(ValueError, match="one_hot: the number of classes must be at least 0"):
        ex.nnet.one_hot(ex.vector("y", "int64"), -1)
    with pytest.raises(ValueError, match="one_hot: the number of classes must be an int or an integer scalar"):
        ex.nnet.one_hot(ex.vector("y", "int64"), 2.5)
    with pytest.raises(ValueError, match="categorical_crossentropy: integer labels .* one axis less"):
        ex.nnet.categorical_crossentropy(ex.tensor("p", shape=(None, 3)), ex.matrix("y", "int64"))
    with pytest.raises(ValueError, match="batch_normalization_train: axes must be"):
        ex.nnet.batch_normalization_train(ex.matrix("x"), 1.0, 0.0, axes="all")
    with pytest.raises(ValueError, match="give both running_mean and running_var"):
        ex.nnet.batch_normalization_train(ex.matrix("x"), 1.0, 0.0, running_mean=ex.vector("m"))


def test_dropout_keeps_entries_scaled_and_its_gradient_uses_the_same_mask():
    if current_backend() == "cuda" and _oracle._stand_in() is not None:
        pytest.skip("the stand-in GPU drivers do not run ex.random's draw kernels")
    x = ex.matrix("x", dtype="float32")
    y = ex.nnet.dropout(x, 0.3, ex.random.RandomStream(seed=1))
    assert y.dtype == "float32" and ex.nnet.dropout(x, 0.0, None) is x
    f = ex.function([x], [y, ex.grad(y.sum(), x)], backend=current_backend())
    out, grad = (np.asarray(v) for v in f(np.ones((200, 50), "float32")))
    kept = out != 0
    np.testing.assert_allclose(out[kept], np.float32(1 / 0.7), rtol=1e-6)
    assert abs(kept.mean() - 0.7) < 0.03
    np.testing.assert_array_equal(grad, out)  # x is all ones: the gradient is the mask, scaled
    again = np.asarray(f(np.ones((200, 50), "float32"))[0])
    assert (again != out).any()  # a new mask on every call


@pytest.mark.backend_independent
def test_dropout_errors():
    stream = ex.random.RandomStream(seed=0)
    with pytest.raises(ValueError, match=r"dropout: the probability of dropping must be a number in \[0, 1\), got 1"):
        ex.nnet.dropout(ex.vector("x"), 1, stream)
    with pytest.raises(TypeError, match="dropout: x is int64; expected a floating-point tensor"):
        ex.nnet.dropout(ex.vector("x", "int64"), 0.5, stream)
