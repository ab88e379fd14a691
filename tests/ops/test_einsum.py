"""einsum, kron, inner and vdot against NumPy on every back end, their gradients by finite
differences, and the errors for subscripts that do not fit the operands."""

import numpy as np
import pytest

import exprc as ex

from ._oracle import check, checks_in_one_program, current_backend, declare, make, numpy_result

#: (subscripts, operand shapes): every form of subscripts NumPy accepts.
PATTERNS = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ij,jk", [(2, 3), (3, 4)]),
    ("ij->ji", [(2, 3)]),
    ("ij", [(2, 3)]),
    ("ji", [(2, 3)]),
    ("ii", [(3, 3)]),
    ("ii->i", [(3, 3)]),
    ("iij->ji", [(3, 3, 2)]),
    ("iii->i", [(2, 2, 2)]),
    ("ij->", [(2, 3)]),
    ("ij->i", [(2, 3)]),
    ("i,i", [(4,), (4,)]),
    ("i,i->i", [(4,), (4,)]),
    ("i,j->ij", [(2,), (3,)]),
    ("i,j", [(2,), (3,)]),
    ("ij,j->i", [(2, 3), (3,)]),
    ("ij,ij->ij", [(2, 3), (2, 3)]),
    ("ij,ij->", [(2, 3), (2, 3)]),
    ("ij,ji->", [(2, 3), (3, 2)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("bij,bkj->bik", [(2, 3, 4), (2, 5, 4)]),
    ("bhqd,bhkd->bhqk", [(2, 2, 3, 4), (2, 2, 5, 4)]),
    ("abc,cd,de->abe", [(2, 3, 4), (4, 5), (5, 2)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("ab,bc,ca->", [(2, 3), (3, 4), (4, 2)]),
    ("ijk,jl->ikl", [(2, 3, 4), (3, 5)]),
    ("abcd,cdef->abef", [(2, 3, 4, 2), (4, 2, 3, 2)]),
    ("abc,abd->cd", [(2, 3, 4), (2, 3, 5)]),
    ("...ij,...jk", [(2, 3, 4), (4, 5)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (3, 4, 2)]),
    ("...ii->...i", [(2, 3, 3)]),
    ("i...->...", [(3, 2, 4)]),
    ("...", [(2, 3)]),
    ("bA", [(2, 3)]),
    ("iJ,Jk->ki", [(2, 3), (3, 4)]),
    ("ij,jk", [(2, 1), (3, 2)]),
    ("ij,ij->ij", [(1, 3), (2, 3)]),
    ("i,i->", [(0,), (0,)]),
    ("ij,jk->ik", [(0, 3), (3, 2)]),
    (" ij , jk -> ik ", [(2, 3), (3, 4)]),
]

DTYPES = [("float64", "float64"), ("float32", "float64"), ("int32", "int32"), ("bool", "bool"), ("float32", "float32")]


def _operands(shapes, dtypes, seed):
    rng = np.random.default_rng(seed)
    return [make(s, dtypes[k % len(dtypes)], "contiguous", rng) for k, s in enumerate(shapes)]


def _check_pattern(subscripts, arrays, static):
    xs = [declare(f"x{k}", a, static) for k, a in enumerate(arrays)]
    expected = numpy_result(np.einsum, subscripts, *arrays)
    tol = 1e-5 if expected.dtype == np.float32 else None
    check(ex.einsum(subscripts, *xs), dict(zip(xs, arrays)), expected, rtol=tol, atol=tol)


# Length-1 axes broadcast against a label's other length only where the lengths are static.
_STATIC_ONLY = {("ij,jk", ((2, 1), (3, 2))), ("ij,ij->ij", ((1, 3), (2, 3)))}


@pytest.mark.parametrize("part", range(4))
def test_patterns_match_numpy(part):
    with checks_in_one_program():
        for k, (subscripts, shapes) in enumerate(PATTERNS[part::4]):
            arrays = _operands(shapes, ["float64"], 30 + k)
            for static in ("static", "dynamic"):
                if static == "dynamic" and (subscripts, tuple(shapes)) in _STATIC_ONLY:
                    continue
                _check_pattern(subscripts, arrays, static)


def test_at_least_thirty_patterns():
    assert len({p for p, _ in PATTERNS}) >= 30


@pytest.mark.parametrize("dtypes", DTYPES, ids="-".join)
def test_dtypes_match_numpy(dtypes):
    with checks_in_one_program():
        for subscripts, shapes in [
            ("ij,jk->ik", [(2, 3), (3, 4)]),
            ("ii", [(3, 3)]),
            ("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)]),
        ]:
            if len(shapes) == 1 and len(set(dtypes)) > 1:
                continue
            _check_pattern(subscripts, _operands(shapes, list(dtypes), 7), "partial")


def test_interleaved_form_matches_numpy():
    a, b = _operands([(2, 3), (3, 4)], ["float64"], 3)
    x, y = declare("x", a), declare("y", b)
    check(ex.einsum(x, [0, 1], y, [1, 2], [2, 0]), {x: a, y: b}, np.einsum(a, [0, 1], b, [1, 2], [2, 0]))
    check(ex.einsum(x, [Ellipsis, 1], [Ellipsis]), {x: a}, np.einsum(a, [Ellipsis, 1], [Ellipsis]))


@pytest.mark.backend_independent
def test_contraction_order_is_greedy():
    """A chain contracts the pair with the smallest result first: (a @ b) is 2x2, (b @ c) 50x50."""
    a, b, c = ex.tensor("a", shape=(2, 50)), ex.tensor("b", shape=(50, 2)), ex.tensor("c", shape=(2, 50))
    out = ex.einsum("ij,jk,kl->il", a, b, c)
    products = [node for node in ex.toposort([out]) if isinstance(node.op, ex.TensorDot)]
    assert len(products) == 2
    assert set(products[0].inputs) == {a, b}


@pytest.mark.backend_independent
def test_static_shapes():
    a, b = ex.tensor("a", shape=(2, None, 4)), ex.tensor("b", shape=(2, 4, 5))
    assert ex.einsum("bij,bjk->bik", a, b).type.shape == (2, None, 5)
    assert ex.einsum("ii->i", ex.tensor("m", shape=(3, 3))).type.shape == (3,)


@pytest.mark.parametrize(
    "subscripts, shapes, message",
    [
        ("ij,jk", [(2, 3)], "name 2 operand"),
        ("ijk", [(2, 3)], "subscripts 'ijk' name 3"),
        ("ij->k", [(2, 3)], "output label 'k'"),
        ("ij->ii", [(2, 3)], "appears more than once"),
        ("i1", [(2, 3)], "subscripts are letters"),
        ("ij,jk", [(2, 3), (4, 5)], "label 'j'"),
        ("...i->i", [(2, 3)], "no '...'"),
        ("i->->i", [(2,)], "at most one '->'"),
        ("......", [(2,)], "more than one ellipsis"),
    ],
)
@pytest.mark.backend_independent
def test_bad_subscripts(subscripts, shapes, message):
    xs = [ex.tensor(f"x{k}", shape=s) for k, s in enumerate(shapes)]
    with pytest.raises(ValueError, match="einsum") as info:
        ex.einsum(subscripts, *xs)
    assert message in str(info.value)


@pytest.mark.backend_independent
def test_no_operands():
    with pytest.raises(ValueError, match="einsum: no operands"):
        ex.einsum("i")


def _grad_check(fn, points, seed):
    """verify_grad on the back end under test (the CUDA one: its gradient against the reference's)."""
    if current_backend() != "cuda":
        ex.verify_grad(fn, points, rng=seed, backend=current_backend())
        return
    xs = [declare(f"p{k}", p) for k, p in enumerate(points)]
    cost = (fn(*xs) ** 2).sum()
    grads = ex.grad(cost, xs)
    feeds = dict(zip(xs, points))
    for g in grads:
        check(g, feeds, g.eval(feeds), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize(
    "subscripts, shapes",
    [
        ("ij,jk->ik", [(2, 3), (3, 4)]),
        ("bij,bkj->bik", [(2, 3, 4), (2, 2, 4)]),
        ("ii->i", [(3, 3)]),
        ("abc,cd,de->abe", [(2, 3, 2), (2, 3), (3, 2)]),
        ("...ij,...jk", [(2, 3, 2), (2, 2)]),
    ],
)
def test_gradients(subscripts, shapes):
    rng = np.random.default_rng(11)
    points = [rng.standard_normal(s) for s in shapes]
    _grad_check(lambda *xs: ex.einsum(subscripts, *xs), points, 5)


@pytest.mark.parametrize(
    "shapes", [((2, 3), (4, 5)), ((3,), (2, 2)), ((), (3,)), ((2, 1, 3), (2, 2)), ((0, 2), (3,))], ids=str
)
def test_kron_inner_vdot(shapes):
    rng = np.random.default_rng(2)
    a, b = (make(s, "float64", "contiguous", rng) for s in shapes)
    x, y = declare("x", a), declare("y", b)
    with checks_in_one_program():
        check(ex.kron(x, y), {x: a, y: b}, np.kron(a, b))
        if a.ndim and b.ndim:
            bb = b.reshape(b.shape[:-1] + (-1,))[..., : a.shape[-1]] if b.shape[-1] >= a.shape[-1] else None
            if bb is not None and bb.shape[-1] == a.shape[-1]:
                z = declare("z", bb)
                check(ex.inner(x, z), {x: a, z: bb}, np.inner(a, bb))
        same = b.ravel()[: a.size] if b.size >= a.size else None
        if same is not None:
            w = declare("w", same)
            check(ex.vdot(x, w), {x: a, w: same}, np.asarray(np.vdot(a, same)))


def test_kron_inner_vdot_gradients():
    rng = np.random.default_rng(4)
    a, b, c = rng.standard_normal((2, 3)), rng.standard_normal((2, 2)), rng.standard_normal((4, 3))
    _grad_check(ex.kron, [a, b], 1)
    _grad_check(ex.inner, [a, c], 2)
    _grad_check(ex.vdot, [a, c[:2]], 3)


@pytest.mark.backend_independent
def test_vdot_sizes_must_match():
    with pytest.raises(ValueError, match="vdot"):
        ex.vdot(ex.tensor("a", shape=(2, 3)), ex.tensor("b", shape=(5,)))
