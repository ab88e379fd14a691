"""Solves and factorizations (``exprc.linalg``): each op's NumPy reference is ``numpy.linalg``'s
own function, batched over leading axes as NumPy batches it.

No back end has a form for these yet: the C and CUDA back ends run them as host steps
through NumPy's LAPACK. Their gradients are the standard results (Giles, "Collected matrix
derivative results"; Murray for the Cholesky factor; Townsend for the SVD), written with
these same ops, so they can be differentiated again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..dtypes import is_float
from ..graph import Apply, Op
from ..printing import ATOM, call_text
from ..shapes import broadcast_shapes, fmt_shape
from ..tensor import TensorType, TensorVariable
from . import elemwise as E
from .linalg import matmul
from .shape import dimshuffle, ones_like, sum_to

LinAlgError = np.linalg.LinAlgError


def linalg_dtype(x: TensorVariable, what: str) -> str:
    """The dtype ``numpy.linalg`` computes ``x`` in: float32 stays, other numbers become float64."""
    if x.dtype == "float16":
        raise TypeError(f"{what}: {x} is float16, which numpy.linalg does not support; cast it to float32")
    return "float32" if x.dtype == "float32" else "float64"


def check_matrices(x: TensorVariable, what: str, square: bool = True) -> None:
    """``x`` is a stack of matrices (square ones if ``square``), as far as its static shape says."""
    if x.ndim < 2:
        raise LinAlgError(f"{what}: {x} has {x.ndim} dimension(s); expected a matrix or a stack of matrices")
    m, n = x.type.shape[-2:]
    if square and m is not None and n is not None and m != n:
        raise LinAlgError(f"{what}: {x} has shape {fmt_shape(x.type.shape)}; its last two axes must be square")


def _t(x: TensorVariable) -> TensorVariable:
    """``x`` with its last two axes swapped."""
    return dimshuffle(x, list(range(x.ndim - 2)) + [x.ndim - 1, x.ndim - 2])


def _col(v: TensorVariable) -> TensorVariable:
    """A stack of vectors as a stack of one-column matrices."""
    return dimshuffle(v, list(range(v.ndim)) + ["x"])


def _row(v: TensorVariable) -> TensorVariable:
    return dimshuffle(v, list(range(v.ndim - 1)) + ["x", v.ndim - 1])


def _sym(g: TensorVariable) -> TensorVariable:
    return (g + _t(g)) * 0.5


def _as(values, var) -> np.ndarray:
    return np.asarray(values).astype(var.dtype, copy=False)


def _square_len(*lengths):
    known = [n for n in lengths if n is not None]
    return known[0] if known else None


# --- a triangle of a stack of matrices, for the gradients ------------------------------------


@dataclass(frozen=True)
class Triangle(Op):
    """The lower (``np.tril(x, k)``) or upper (``np.triu(x, k)``) triangle of the last two axes."""

    k: int = 0
    lower: bool = True

    def make_node(self, x):
        check_matrices(x, "triangle", square=False)
        return Apply(self, [x], [TensorType(x.dtype, x.type.shape)])

    def perform(self, node, inputs):
        return [(np.tril if self.lower else np.triu)(inputs[0], self.k)]

    def grad(self, node, output_grads):
        return [Triangle(self.k, self.lower)(output_grads[0]) if is_float(node.inputs[0].dtype) else None]

    def infix(self, node, show):
        return call_text("tril" if self.lower else "triu", show(node.inputs[0]), k=self.k), ATOM


def tril(x: TensorVariable, k: int = 0) -> TensorVariable:
    return Triangle(k, True)(x)


def triu(x: TensorVariable, k: int = 0) -> TensorVariable:
    return Triangle(k, False)(x)


# --- solves and inverses ----------------------------------------------------------------------


def _solve_shape(a, b, what):
    """The output shape of solving ``a x = b`` (NumPy 2: a 1-d ``b`` is one vector, else a stack
    of matrices), checking the lengths that are known."""
    n = _square_len(*a.type.shape[-2:])
    rows = b.type.shape[0] if b.ndim == 1 else b.type.shape[-2]
    if n is not None and rows is not None and n != rows:
        raise ValueError(
            f"{what}: {a} of shape {fmt_shape(a.type.shape)} and {b} of shape {fmt_shape(b.type.shape)} "
            f"do not line up: {n} != {rows}"
        )
    if b.ndim == 1:
        return a.type.shape[:-2] + (n if n is not None else rows,)
    batch = broadcast_shapes([a.type.shape[:-2], b.type.shape[:-2]], [a, b], what=f"{what} batch axes")
    return batch + (n if n is not None else rows, b.type.shape[-1])


def _solve_grads(node, gx, solve_transposed, restrict=None):
    """Gradients of ``x = a^-1 b``: ``gb = a^-T gx`` and ``ga = -gb x^T`` (restricted to a's
    triangle for a triangular solve), each summed over the batch axes it was broadcast along."""
    a, b = node.inputs
    x = node.outputs[0]
    gb = solve_transposed(gx)
    if b.ndim == 1:
        ga = -(_col(gb) * _row(x))
    else:
        ga = -matmul(gb, _t(x))
    if restrict is not None:
        ga = restrict(ga)
    ga = sum_to(ga, a, axes=range(ga.ndim - 2)) if ga.ndim > a.ndim or ga.type.shape != a.type.shape else ga
    if b.ndim > 1:
        gb = sum_to(gb, b, axes=range(gb.ndim - 2))
    return [ga if is_float(a.dtype) else None, gb if is_float(b.dtype) else None]


@dataclass(frozen=True)
class Solve(Op):
    """``numpy.linalg.solve(a, b)``: x with ``a @ x = b``."""

    def make_node(self, a, b):
        check_matrices(a, "solve")
        if b.ndim == 0:
            raise ValueError(f"solve: {b} is 0-d; expected a vector or a stack of matrices")
        dtype = np.result_type(linalg_dtype(a, "solve"), linalg_dtype(b, "solve")).name
        return Apply(self, [a, b], [TensorType(dtype, _solve_shape(a, b, "solve"))])

    def perform(self, node, inputs):
        return [_as(np.linalg.solve(*inputs), node.outputs[0])]

    def grad(self, node, output_grads):
        a = node.inputs[0]
        return _solve_grads(node, output_grads[0], lambda g: solve(_t(a), g))

    def infix(self, node, show):
        return call_text("solve", *map(show, node.inputs)), ATOM


def solve(a: TensorVariable, b: TensorVariable) -> TensorVariable:
    return Solve()(a, b)


@dataclass(frozen=True)
class SolveTriangular(Op):
    """x with ``a @ x = b`` for a triangular ``a``, whose other triangle is not read (SciPy's
    ``solve_triangular``, batched as ``numpy.linalg.solve``)."""

    lower: bool = False
    unit_diagonal: bool = False

    def make_node(self, a, b):
        check_matrices(a, "solve_triangular")
        if b.ndim == 0:
            raise ValueError(f"solve_triangular: {b} is 0-d; expected a vector or a stack of matrices")
        dtype = np.result_type(linalg_dtype(a, "solve_triangular"), linalg_dtype(b, "solve_triangular")).name
        return Apply(self, [a, b], [TensorType(dtype, _solve_shape(a, b, "solve_triangular"))])

    def perform(self, node, inputs):
        a, b = inputs
        a = np.tril(a) if self.lower else np.triu(a)
        if self.unit_diagonal:
            a = a.copy()
            idx = np.arange(a.shape[-1])
            a[..., idx, idx] = 1
        return [_as(np.linalg.solve(a, b), node.outputs[0])]

    def grad(self, node, output_grads):
        a = node.inputs[0]
        k = -1 if self.unit_diagonal else 0

        def restrict(g):
            return Triangle(k if self.lower else -k, self.lower)(g)

        def solve_t(g):
            return SolveTriangular(not self.lower, self.unit_diagonal)(_t(a), g)

        return _solve_grads(node, output_grads[0], solve_t, restrict)

    def infix(self, node, show):
        return call_text("solve_triangular", *map(show, node.inputs), lower=self.lower), ATOM


@dataclass(frozen=True)
class Inv(Op):
    """``numpy.linalg.inv``."""

    def make_node(self, a):
        check_matrices(a, "inv")
        return Apply(self, [a], [TensorType(linalg_dtype(a, "inv"), a.type.shape)])

    def perform(self, node, inputs):
        return [_as(np.linalg.inv(inputs[0]), node.outputs[0])]

    def grad(self, node, output_grads):
        """``-inv^T gz inv^T``."""
        inv_t = _t(node.outputs[0])
        return [-matmul(matmul(inv_t, output_grads[0]), inv_t) if is_float(node.inputs[0].dtype) else None]

    def infix(self, node, show):
        return call_text("inv", show(node.inputs[0])), ATOM


# --- determinants -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Det(Op):
    """``numpy.linalg.det``."""

    def make_node(self, a):
        check_matrices(a, "det")
        return Apply(self, [a], [TensorType(linalg_dtype(a, "det"), a.type.shape[:-2])])

    def perform(self, node, inputs):
        return [_as(np.linalg.det(inputs[0]), node.outputs[0])]

    def grad(self, node, output_grads):
        """``gz det(a) inv(a)^T`` (NaN for a singular ``a``)."""
        a = node.inputs[0]
        if not is_float(a.dtype):
            return [None]
        scale = output_grads[0] * node.outputs[0]
        return [_col(_col(scale)) * _t(Inv()(a))]

    def infix(self, node, show):
        return call_text("det", show(node.inputs[0])), ATOM


@dataclass(frozen=True)
class SlogDet(Op):
    """``numpy.linalg.slogdet``: the sign and the log of the absolute value of the determinant."""

    def make_node(self, a):
        check_matrices(a, "slogdet")
        t = TensorType(linalg_dtype(a, "slogdet"), a.type.shape[:-2])
        return Apply(self, [a], [t, t])

    def perform(self, node, inputs):
        sign, logdet = np.linalg.slogdet(inputs[0])
        return [_as(sign, node.outputs[0]), _as(logdet, node.outputs[1])]

    def grad(self, node, output_grads):
        """``g_logdet inv(a)^T``; the sign is piecewise constant."""
        a = node.inputs[0]
        if not is_float(a.dtype):
            return [None]
        return [_col(_col(output_grads[1])) * _t(Inv()(a))]

    def infix(self, node, show):
        return call_text("slogdet", show(node.inputs[0])), ATOM


# --- factorizations ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Cholesky(Op):
    """``numpy.linalg.cholesky``: the lower (or ``upper``) factor of a symmetric positive
    definite matrix, of which only that triangle is read."""

    upper: bool = False

    def make_node(self, a):
        check_matrices(a, "cholesky")
        return Apply(self, [a], [TensorType(linalg_dtype(a, "cholesky"), a.type.shape)])

    def perform(self, node, inputs):
        return [_as(np.linalg.cholesky(inputs[0], upper=self.upper), node.outputs[0])]

    def grad(self, node, output_grads):
        """Murray (2016): ``S = L^-T Phi(L^T gL) L^-1``, with Phi the lower triangle with its
        diagonal halved; symmetrized, the gradient for a symmetric ``a``."""
        a = node.inputs[0]
        if not is_float(a.dtype):
            return [None]
        lower, g = node.outputs[0], output_grads[0]
        if self.upper:
            lower, g = _t(lower), _t(g)
        p = matmul(_t(lower), g)
        phi = (tril(p) + tril(p, -1)) * 0.5
        # L^-T phi L^-1: two triangular solves
        s = SolveTriangular(lower=False)(_t(lower), phi)
        s = _t(SolveTriangular(lower=False)(_t(lower), _t(s)))
        return [_sym(s)]

    def infix(self, node, show):
        return call_text("cholesky", show(node.inputs[0]), upper=self.upper), ATOM


def _off_diagonal_inverse(w: TensorVariable) -> TensorVariable:
    """``F[i, j] = 1 / (w[j] - w[i])`` off the diagonal, 0 on it (distinct ``w`` assumed: a
    repeated value gives 0 too, the gradient's documented limit)."""
    diff = _row(w) - _col(w)
    zero = E.eq(diff, 0)
    return E.where(zero, 0.0, 1.0 / E.where(zero, 1.0, diff))


@dataclass(frozen=True)
class Eigh(Op):
    """``numpy.linalg.eigh``: eigenvalues (ascending) and eigenvectors of a symmetric matrix,
    of which only the lower (or upper) triangle is read."""

    lower: bool = True

    def make_node(self, a):
        check_matrices(a, "eigh")
        dtype = linalg_dtype(a, "eigh")
        n = _square_len(*a.type.shape[-2:])
        batch = a.type.shape[:-2]
        return Apply(self, [a], [TensorType(dtype, batch + (n,)), TensorType(dtype, batch + (n, n))])

    def perform(self, node, inputs):
        w, v = np.linalg.eigh(inputs[0], UPLO="L" if self.lower else "U")
        return [_as(w, node.outputs[0]), _as(v, node.outputs[1])]

    def grad(self, node, output_grads):
        """``V (diag(gw) + F * (V^T gV)) V^T``, symmetrized (distinct eigenvalues)."""
        a = node.inputs[0]
        if not is_float(a.dtype):
            return [None]
        w, v = node.outputs
        gw, gv = output_grads
        inner = _off_diagonal_inverse(w) * matmul(_t(v), gv)
        g = matmul(v * _row(gw) + matmul(v, inner), _t(v))
        return [_sym(g)]

    def infix(self, node, show):
        return call_text("eigh", show(node.inputs[0]), UPLO="L" if self.lower else "U"), ATOM


@dataclass(frozen=True)
class SVD(Op):
    """``numpy.linalg.svd``: ``u, s, vh`` with ``a = u @ diag(s) @ vh`` (``s`` alone without
    ``compute_uv``)."""

    full_matrices: bool = True
    compute_uv: bool = True

    def make_node(self, a):
        check_matrices(a, "svd", square=False)
        dtype = linalg_dtype(a, "svd")
        batch, (m, n) = a.type.shape[:-2], a.type.shape[-2:]
        k = min(m, n) if m is not None and n is not None else (0 if 0 in (m, n) else None)
        s = TensorType(dtype, batch + (k,))
        if not self.compute_uv:
            return Apply(self, [a], [s])
        cu, cv = (m, n) if self.full_matrices else (k, k)
        return Apply(self, [a], [TensorType(dtype, batch + (m, cu)), s, TensorType(dtype, batch + (cv, n))])

    def perform(self, node, inputs):
        out = np.linalg.svd(inputs[0], full_matrices=self.full_matrices, compute_uv=self.compute_uv)
        out = out if self.compute_uv else [out]
        return [_as(o, var) for o, var in zip(out, node.outputs)]

    def grad(self, node, output_grads):
        """Townsend, "Differentiating the singular value decomposition" (distinct nonzero
        singular values); ``full_matrices`` only where ``a`` is square."""
        a = node.inputs[0]
        if not is_float(a.dtype):
            return [None]
        if not self.compute_uv:
            u, _, vh = SVD(False, True)(a)
            return [matmul(u * _row(output_grads[0]), vh)]
        m, n = a.type.shape[-2:]
        # Known lengths are checked here; otherwise u * s fails to broadcast at run time.
        if self.full_matrices and m is not None and n is not None and m != n:
            raise NotImplementedError(
                f"svd: the gradient with full_matrices=True needs {a} to be square; use full_matrices=False"
            )
        u, s, vh = node.outputs
        gu, gs, gvh = output_grads
        f = _off_diagonal_inverse(s * s)  # 1 / (s_j^2 - s_i^2)
        ut_gu = matmul(_t(u), gu)
        v_gv = matmul(vh, _t(gvh))  # V^T gV, with gV = gvh^T
        j = f * (ut_gu - _t(ut_gu))
        k = f * (v_gv - _t(v_gv))
        core = j * _row(s) + _col(s) * k
        inner = matmul(u * _row(gs) + matmul(u, core), vh)
        # the parts outside the spans of u and v (a non-square a)
        extra_u = matmul((gu - matmul(u, ut_gu)) / _row(s), vh)
        extra_v = matmul(u / _row(s), gvh - matmul(matmul(gvh, _t(vh)), vh))
        return [inner + extra_u + extra_v]

    def infix(self, node, show):
        return call_text("svd", show(node.inputs[0]), full_matrices=self.full_matrices), ATOM


@dataclass(frozen=True)
class QR(Op):
    """``numpy.linalg.qr`` in mode ``"reduced"``, ``"complete"`` or ``"r"`` (``compute_q`` False)."""

    complete: bool = False
    compute_q: bool = True

    def make_node(self, a):
        check_matrices(a, "qr", square=False)
        dtype = linalg_dtype(a, "qr")
        batch, (m, n) = a.type.shape[:-2], a.type.shape[-2:]
        k = min(m, n) if m is not None and n is not None else (0 if 0 in (m, n) else None)
        rows = m if self.complete else k
        r = TensorType(dtype, batch + (rows, n))
        if not self.compute_q:
            return Apply(self, [a], [r])
        return Apply(self, [a], [TensorType(dtype, batch + (m, rows)), r])

    def perform(self, node, inputs):
        mode = "r" if not self.compute_q else "complete" if self.complete else "reduced"
        out = np.linalg.qr(inputs[0], mode=mode)
        out = [out] if mode == "r" else list(out)
        return [_as(o, var) for o, var in zip(out, node.outputs)]

    def grad(self, node, output_grads):
        """For ``m >= n``: ``(gQ + Q copyltu(M)) R^-T`` with ``M = R gR^T - gQ^T Q``
        (Walter and Lehmann; Seeger et al.)."""
        a = node.inputs[0]
        if not is_float(a.dtype):
            return [None]
        m, n = a.type.shape[-2:]
        # Known lengths are checked here; otherwise R is not square and the solve below
        # raises numpy.linalg.LinAlgError at run time.
        if m is not None and n is not None and (m < n or (self.complete and m != n)):
            raise NotImplementedError(
                f"qr: the gradient needs {a} to have at least as many rows as columns "
                "(and to be square in mode 'complete')"
            )
        if self.compute_q:
            q, r = node.outputs
            gq, gr = output_grads
        else:
            q, r = QR()(a)
            gq, gr = E.multiply(q, 0.0), output_grads[0]
        mm = matmul(r, _t(gr)) - matmul(_t(gq), q)
        copyltu = tril(mm) + _t(tril(mm, -1))
        b = gq + matmul(q, copyltu)
        # b R^-T = (R^-1 b^T)^T
        return [_t(SolveTriangular(lower=False)(r, _t(b)))]

    def infix(self, node, show):
        mode = "r" if not self.compute_q else "complete" if self.complete else "reduced"
        return call_text("qr", show(node.inputs[0]), mode=mode), ATOM


@dataclass(frozen=True)
class Lstsq(Op):
    """``numpy.linalg.lstsq(a, b, rcond)``: the least-squares solution, the residual sums of
    squares (empty unless ``a`` has full column rank and more rows than columns), the rank
    and the singular values of ``a``."""

    rcond: float | None = None

    def make_node(self, a, b):
        if a.ndim != 2 or b.ndim not in (1, 2):
            raise LinAlgError(
                f"lstsq: expected a matrix and a vector or matrix, got {a} and {b} ({a.ndim}-d, {b.ndim}-d)"
            )
        m, n = a.type.shape
        rows = b.type.shape[0]
        if m is not None and rows is not None and m != rows:
            raise LinAlgError(f"lstsq: {a} has {m} rows but {b} has {rows}; they must have as many")
        dtype = np.result_type(linalg_dtype(a, "lstsq"), linalg_dtype(b, "lstsq")).name
        k = min(m, n) if m is not None and n is not None else None
        x = TensorType(dtype, (n,) + b.type.shape[1:])
        return Apply(self, [a, b], [x, TensorType(dtype, (None,)), TensorType("int32", ()), TensorType(dtype, (k,))])

    def perform(self, node, inputs):
        out = np.linalg.lstsq(*inputs, rcond=self.rcond)
        return [_as(o, var) for o, var in zip(out, node.outputs)]

    def grad(self, node, output_grads):
        """Of ``x = pinv(a) b`` at constant rank (Golub and Pereyra), each ``pinv`` product
        itself a least-squares solve: ``gb = pinv(a)^T gx`` and ``ga = -gb x^T + r u^T +
        q p^T`` with ``r = b - a x``, ``u = pinv(a) gb``, ``q = pinv(a)^T x``,
        ``p = gx - pinv(a) a gx``."""
        a, b = node.inputs
        x = node.outputs[0]
        gx = output_grads[0]
        at = _t(a)

        def pinv_times(m, v):
            return Lstsq(self.rcond)(m, v)[0]

        gb = pinv_times(at, gx)
        r = b - matmul(a, x)
        u = pinv_times(a, gb)
        q = pinv_times(at, x)
        p = gx - pinv_times(a, matmul(a, gx))
        if b.ndim == 1:
            ga = -(_col(gb) * _row(x)) + _col(r) * _row(u) + _col(q) * _row(p)
        else:
            ga = -matmul(gb, _t(x)) + matmul(r, _t(u)) + matmul(q, _t(p))
        return [ga if is_float(a.dtype) else None, gb if is_float(b.dtype) else None]

    def infix(self, node, show):
        return call_text("lstsq", *map(show, node.inputs), rcond=self.rcond), ATOM


def identity_like(a: TensorVariable) -> TensorVariable:
    """Identity matrices of ``a``'s (square) shape and dtype."""
    return tril(triu(ones_like(a)))
