"""ex.linalg against numpy.linalg on every back end: batched and 0-size batches, dtypes,
gradients by finite differences on well-conditioned random matrices, and bad input."""

import numpy as np
import pytest

import exprc as ex
from exprc import linalg as L

from ._oracle import check, checks_in_one_program, current_backend, declare

BATCHES = [(), (2, 1), (0,)]


def _random(shape, seed, dtype="float64"):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _general(batch, n, seed, dtype="float64"):
    """Well-conditioned square matrices: random plus n on the diagonal."""
    return (_random(batch + (n, n), seed) + n * np.eye(n)).astype(dtype)


def _spd(batch, n, seed, dtype="float64"):
    a = _random(batch + (n, n), seed)
    return (a @ np.swapaxes(a, -1, -2) + n * np.eye(n)).astype(dtype)


def _sym(x):
    """The symmetric part: the gradients of cholesky and eigh are those for a symmetric input."""
    return (x + _t(x)) * 0.5


def _t(x):
    return x.dimshuffle(*range(x.ndim - 2), x.ndim - 1, x.ndim - 2)


#: name -> (inputs for a batch shape, exprc function, NumPy function, the outputs' tolerance).
CASES = {
    "solve": (lambda b: [_general(b, 3, 1), _random(b + (3, 2), 2)], L.solve, np.linalg.solve, None),
    "solve_vector": (lambda b: [_general(b, 3, 1), _random((3,), 2)], L.solve, np.linalg.solve, None),
    "inv": (lambda b: [_general(b, 3, 3)], L.inv, np.linalg.inv, None),
    "det": (lambda b: [_general(b, 3, 4)], L.det, np.linalg.det, None),
    "slogdet": (lambda b: [_general(b, 3, 5) - 4 * np.eye(3)], L.slogdet, np.linalg.slogdet, None),
    "cholesky": (lambda b: [_spd(b, 3, 6)], L.cholesky, np.linalg.cholesky, None),
    "cholesky_upper": (
        lambda b: [_spd(b, 3, 6)],
        lambda a: L.cholesky(a, upper=True),
        lambda a: np.linalg.cholesky(a, upper=True),
        None,
    ),
    "solve_triangular": (
        lambda b: [_general(b, 3, 7), _random(b + (3, 2), 8)],
        lambda a, y: L.solve_triangular(a, y, lower=True),
        lambda a, y: np.linalg.solve(np.tril(a), y),
        1e-9,
    ),
    "solve_triangular_trans_unit": (
        lambda b: [_general(b, 3, 7), _random(b + (3, 2), 8)],
        lambda a, y: L.solve_triangular(a, y, trans="T", unit_diagonal=True),
        lambda a, y: np.linalg.solve(np.swapaxes(np.triu(a, 1) + np.eye(3), -1, -2), y),
        1e-9,
    ),
    "cho_solve": (
        lambda b: [_spd(b, 3, 9), _random(b + (3, 2), 10)],
        lambda a, y: L.cho_solve((L.cholesky(a), True), y),
        np.linalg.solve,
        1e-9,
    ),
    "cho_solve_upper": (
        lambda b: [_spd(b, 3, 9), _random(b + (3, 2), 10)],
        lambda a, y: L.cho_solve((L.cholesky(a, upper=True), False), y),
        np.linalg.solve,
        1e-9,
    ),
    "eigh": (lambda b: [_spd(b, 3, 11)], L.eigh, np.linalg.eigh, None),
    "eigh_upper": (lambda b: [_spd(b, 3, 11)], lambda a: L.eigh(a, "U"), lambda a: np.linalg.eigh(a, "U"), None),
    "svd": (lambda b: [_random(b + (4, 3), 12)], L.svd, np.linalg.svd, None),
    "svd_reduced": (
        lambda b: [_random(b + (3, 4), 12)],
        lambda a: L.svd(a, full_matrices=False),
        lambda a: np.linalg.svd(a, full_matrices=False),
        None,
    ),
    "svd_values": (
        lambda b: [_random(b + (4, 3), 12)],
        lambda a: L.svd(a, compute_uv=False),
        lambda a: np.linalg.svd(a, compute_uv=False),
        None,
    ),
    "qr": (lambda b: [_random(b + (4, 3), 13)], L.qr, np.linalg.qr, None),
    "qr_complete": (
        lambda b: [_random(b + (4, 3), 13)],
        lambda a: L.qr(a, "complete"),
        lambda a: np.linalg.qr(a, "complete"),
        None,
    ),
    "qr_r": (lambda b: [_random(b + (3, 4), 13)], lambda a: L.qr(a, "r"), lambda a: np.linalg.qr(a, "r"), None),
    "norm_fro": (lambda b: [_random(b + (3, 4), 14)], lambda a: L.norm(a, axis=(-2, -1)), None, 1e-9),
    "norm_nuc": (lambda b: [_random(b + (3, 4), 14)], lambda a: L.norm(a, "nuc", axis=(-2, -1)), None, 1e-9),
    "norm_2": (lambda b: [_random(b + (3, 4), 14)], lambda a: L.norm(a, 2, axis=(-2, -1)), None, 1e-9),
    "norm_-2": (lambda b: [_random(b + (3, 4), 14)], lambda a: L.norm(a, -2, axis=(-1, -2)), None, 1e-9),
    "norm_1": (lambda b: [_random(b + (3, 4), 14)], lambda a: L.norm(a, 1, axis=(-2, -1)), None, 1e-9),
    "norm_-1": (lambda b: [_random(b + (3, 4), 14)], lambda a: L.norm(a, -1, axis=(-2, -1)), None, 1e-9),
    "norm_inf": (lambda b: [_random(b + (3, 4), 14)], lambda a: L.norm(a, np.inf, axis=(-1, -2)), None, 1e-9),
    "norm_-inf": (
        lambda b: [_random(b + (3, 4), 14)],
        lambda a: L.norm(a, -np.inf, axis=(-2, -1), keepdims=True),
        None,
        1e-9,
    ),
    "norm_vector_3": (lambda b: [_random(b + (4,), 15)], lambda a: L.norm(a, 3, axis=-1), None, 1e-9),
    "norm_vector_0": (lambda b: [_random(b + (4,), 15)], lambda a: L.norm(a, 0, axis=-1), None, 1e-9),
    "norm_vector_1": (lambda b: [_random(b + (4,), 15)], lambda a: L.norm(a, 1, axis=-1, keepdims=True), None, 1e-9),
    "norm_vector_-inf": (lambda b: [_random(b + (4,), 15)], lambda a: L.norm(a, -np.inf, axis=-1), None, 1e-9),
    "matrix_power_5": (lambda b: [_random(b + (3, 3), 16)], lambda a: L.matrix_power(a, 5), None, 1e-9),
    "matrix_power_0": (lambda b: [_random(b + (3, 3), 16)], lambda a: L.matrix_power(a, 0), None, None),
    "matrix_power_-2": (lambda b: [_general(b, 3, 16)], lambda a: L.matrix_power(a, -2), None, 1e-9),
}

#: The NumPy functions of the cases built on the ones of numpy.linalg of the same name.
_NUMPY_OF = {
    "norm": lambda case: lambda a: _numpy_norm(case, a),
    "matrix_power": lambda case: lambda a: np.linalg.matrix_power(a, int(case.rsplit("_", 1)[1])),
}


def _numpy_norm(case, a):
    ord_text = case.rsplit("_", 1)[1]
    ord_ = {"fro": "fro", "nuc": "nuc", "inf": np.inf, "-inf": -np.inf}.get(ord_text)
    ord_ = float(ord_text) if ord_ is None else ord_
    if "vector" in case:
        return np.linalg.norm(a, ord_, axis=-1, keepdims=ord_text == "1")
    axis = (-1, -2) if ord_text in ("-2", "inf") else (-2, -1)
    return np.linalg.norm(a, ord_, axis=axis, keepdims=ord_text == "-inf")


def _numpy_function(name):
    fn = CASES[name][2]
    return fn if fn is not None else _NUMPY_OF[name.split("_")[0] if name.startswith("norm") else "matrix_power"](name)


@pytest.mark.parametrize("part", range(2))
@pytest.mark.parametrize("batch", BATCHES, ids=lambda b: "x".join(map(str, b)) or "single")
def test_against_numpy(batch, part):
    with checks_in_one_program():
        for name in sorted(CASES)[part::2]:
            make, build, _, tol = CASES[name]
            arrays = make(batch)
            if name == "solve_vector" and batch:
                continue  # a 1-d right-hand side is one vector against every matrix of the stack: below
            expected = _numpy_function(name)(*arrays)
            expected = list(expected) if isinstance(expected, tuple) else [expected]
            for static in ("static", "dynamic"):
                xs = [declare(f"x{k}", a, static) for k, a in enumerate(arrays)]
                out = build(*xs)
                out = list(out) if isinstance(out, tuple) else [out]
                assert len(out) == len(expected), name
                for o, e in zip(out, expected):
                    check(o, dict(zip(xs, arrays)), np.asarray(e), rtol=tol, atol=tol)


def test_vector_right_hand_side_against_a_stack():
    a, b = _general((2,), 3, 1), _random((3,), 2)
    x, y = declare("a", a), declare("b", b)
    check(L.solve(x, y), {x: a, y: b}, np.linalg.solve(a, b))


@pytest.mark.parametrize("dtype", ["float32", "int32", "int64"])
def test_dtypes_follow_numpy(dtype):
    a = np.array([[4, 1], [1, 3]], dtype=dtype)
    b = np.array([1, 2], dtype=dtype)
    x, y = declare("a", a), declare("b", b)
    with checks_in_one_program():
        for got, expected in [
            (L.solve(x, y), np.linalg.solve(a, b)),
            (L.inv(x), np.linalg.inv(a)),
            (L.det(x), np.asarray(np.linalg.det(a))),
            (L.cholesky(x), np.linalg.cholesky(a)),
            (L.eigh(x)[0], np.linalg.eigh(a)[0]),
            (L.norm(x), np.asarray(np.linalg.norm(a))),
            (L.matrix_power(x, 3), np.linalg.matrix_power(a, 3)),
        ]:
            check(got, {x: a, y: b}, expected, rtol=1e-5, atol=1e-6)


def test_lstsq_matches_numpy():
    rng = np.random.default_rng(17)
    cases = [
        (rng.standard_normal((5, 3)), rng.standard_normal((5, 2))),
        (rng.standard_normal((2, 4)), rng.standard_normal(2)),
    ]
    cases.append((np.array([[1.0, 2.0], [2.0, 4.0], [0.0, 0.0]]), np.array([1.0, 2.0, 3.0])))  # rank 1
    for a, b in cases:
        x, y = declare("a", a), declare("b", b)
        expected = np.linalg.lstsq(a, b)
        with checks_in_one_program():
            for got, e in zip(L.lstsq(x, y), expected):
                check(got, {x: a, y: b}, np.asarray(e), rtol=1e-9, atol=1e-12)


def _grad_check(fn, points, seed):
    """verify_grad on the back end under test (on CUDA: its gradient against the reference's)."""
    if current_backend() != "cuda":
        ex.verify_grad(fn, points, rng=seed, backend=current_backend())
        return
    xs = [declare(f"p{k}", p) for k, p in enumerate(points)]
    cost = (fn(*xs) ** 2).sum()
    feeds = dict(zip(xs, points))
    for g in ex.grad(cost, xs):
        check(g, feeds, g.eval(feeds), rtol=1e-8, atol=1e-10)


def _squared(out):
    """A cost that a column's sign does not change (eigenvectors and singular vectors)."""
    return out * out


GRADIENTS = {
    "solve": (lambda: [_general((2,), 3, 1), _random((2, 3, 2), 2)], L.solve),
    "solve_vector": (lambda: [_general((), 3, 1), _random((3,), 2)], L.solve),
    "solve_batch_broadcast": (lambda: [_general((2,), 3, 1), _random((1, 3, 2), 2)], L.solve),
    "inv": (lambda: [_general((), 3, 3)], L.inv),
    "det": (lambda: [_general((2,), 3, 4)], L.det),
    "slogdet": (lambda: [_general((), 3, 5)], lambda a: L.slogdet(a)[1]),
    "cholesky": (lambda: [_spd((2,), 3, 6)], lambda a: L.cholesky(_sym(a))),
    "cholesky_upper": (lambda: [_spd((), 3, 6)], lambda a: L.cholesky(_sym(a), upper=True)),
    "solve_triangular": (
        lambda: [_general((), 3, 7), _random((3, 2), 8)],
        lambda a, y: L.solve_triangular(a, y, lower=True),
    ),
    "solve_triangular_unit_trans": (
        lambda: [_general((), 3, 7), _random((3,), 8)],
        lambda a, y: L.solve_triangular(a, y, trans=1, unit_diagonal=True),
    ),
    "cho_solve": (
        lambda: [_spd((), 3, 9), _random((3,), 10)],
        lambda a, y: L.cho_solve((L.cholesky(_sym(a)), True), y),
    ),
    "eigh_values": (lambda: [_spd((), 3, 11)], lambda a: L.eigh(_sym(a))[0]),
    "eigh_vectors": (lambda: [_spd((2,), 3, 11)], lambda a: _squared(L.eigh(_sym(a))[1])),
    "svd_values": (lambda: [_random((4, 3), 12)], lambda a: L.svd(a, compute_uv=False)),
    "svd_tall": (lambda: [_random((4, 3), 12)], lambda a: [_squared(o) for o in L.svd(a, False)][0]),
    "svd_wide_vh": (lambda: [_random((3, 4), 12)], lambda a: _squared(L.svd(a, False)[2])),
    "svd_square_full": (lambda: [_random((3, 3), 12)], lambda a: _squared(L.svd(a)[0]) + _squared(L.svd(a)[2])),
    "qr_q": (lambda: [_random((4, 3), 13)], lambda a: L.qr(a)[0]),
    "qr_r": (lambda: [_random((2, 3, 3), 13)], lambda a: L.qr(a)[1]),
    "qr_r_mode": (lambda: [_random((4, 3), 13)], lambda a: L.qr(a, "r")),
    "lstsq_tall": (lambda: [_random((5, 3), 17), _random((5, 2), 18)], lambda a, y: L.lstsq(a, y)[0]),
    "lstsq_wide": (lambda: [_random((2, 4), 17), _random((2,), 18)], lambda a, y: L.lstsq(a, y)[0]),
    "norm_nuc": (lambda: [_random((3, 4), 14)], lambda a: L.norm(a, "nuc")),
    "norm_2": (lambda: [_random((3, 4), 14)], lambda a: L.norm(a, 2)),
    "norm_inf": (lambda: [_random((3, 4), 14)], lambda a: L.norm(a, np.inf)),
    "norm_vector_3": (lambda: [_random((4,), 15)], lambda a: L.norm(a, 3)),
    "matrix_power": (lambda: [_random((3, 3), 16)], lambda a: L.matrix_power(a, 3)),
    "matrix_power_negative": (lambda: [_general((), 3, 16)], lambda a: L.matrix_power(a, -2)),
}


@pytest.mark.parametrize("name", sorted(GRADIENTS))
def test_gradients(name):
    points, fn = GRADIENTS[name]
    _grad_check(fn, points(), seed=sorted(GRADIENTS).index(name))


def test_singular_matrix_raises_numpy_error():
    a = np.array([[1.0, 2.0], [2.0, 4.0]])
    x = declare("a", a)
    for build in (L.inv, lambda m: L.solve(m, m), L.cholesky):
        f = ex.function([x], build(x), backend=current_backend())
        with pytest.raises(np.linalg.LinAlgError):
            f(a)
    # the determinant of a singular matrix is 0, its log -inf, as NumPy gives
    check(L.slogdet(x)[1], {x: a}, np.asarray(np.linalg.slogdet(a)[1]))


@pytest.mark.parametrize(
    "build, error, message",
    [
        (lambda: L.det(ex.tensor("a", shape=(2, 3))), np.linalg.LinAlgError, "det: .* must be square"),
        (lambda: L.inv(ex.vector("v")), np.linalg.LinAlgError, "inv: v has 1 dimension"),
        (lambda: L.solve(ex.tensor("a", shape=(3, 3)), ex.tensor("b", shape=(4,))), ValueError, "solve: .* 3 != 4"),
        (lambda: L.cholesky(ex.tensor("h", shape=(2, 2), dtype="float16")), TypeError, "cholesky: h is float16"),
        (lambda: L.qr(ex.matrix("a"), "raw"), ValueError, "qr: mode"),
        (lambda: L.eigh(ex.matrix("a"), "X"), ValueError, "eigh: UPLO"),
        (lambda: L.norm(ex.tensor3("t"), 1), ValueError, "norm: .* give an axis"),
        (lambda: L.norm(ex.vector("v"), "fro", axis=0), ValueError, "norm: ord 'fro' is a matrix norm"),
        (lambda: L.norm(ex.matrix("m"), 3), ValueError, "norm: invalid norm order 3"),
        (lambda: L.matrix_power(ex.matrix("m"), 1.5), TypeError, "matrix_power: the exponent"),
        (lambda: L.lstsq(ex.tensor3("a"), ex.vector("b")), np.linalg.LinAlgError, "lstsq"),
        (lambda: L.solve_triangular(ex.matrix("a"), ex.vector("b"), trans=3), ValueError, "solve_triangular: trans"),
        (lambda: L.cho_solve(ex.matrix("c"), ex.vector("b")), TypeError, "cho_solve: expected a pair"),
        (lambda: _qr_grad_of_wide_matrix(), NotImplementedError, "qr: the gradient needs"),
    ],
)
@pytest.mark.backend_independent
def test_bad_input(build, error, message):
    with pytest.raises(error, match=message):
        build()


def _qr_grad_of_wide_matrix():
    a = ex.tensor("a", shape=(2, 3))
    return ex.grad(L.qr(a)[1].sum(), a)


@pytest.mark.backend_independent
def test_static_shapes():
    a = ex.tensor("a", shape=(5, None, 3, 3))
    assert L.solve(a, ex.tensor("b", shape=(3, 2))).type.shape == (5, None, 3, 2)
    assert L.det(a).type.shape == (5, None)
    u, s, vh = L.svd(ex.tensor("m", shape=(4, 2)))
    assert (u.type.shape, s.type.shape, vh.type.shape) == ((4, 4), (2,), (2, 2))
    assert L.lstsq(ex.tensor("m", shape=(4, 2)), ex.tensor("b", shape=(4, 3)))[0].type.shape == (2, 3)
