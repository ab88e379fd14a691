"""``ex.linalg``: solves, factorizations and norms, named and batched as ``numpy.linalg``.

Every function takes stacks of matrices (leading axes are batch axes) and has a gradient.
The ops run through NumPy's LAPACK on every back end for now (host steps between the C or
CUDA kernels); norms and ``matrix_power`` are graphs of other ops and compile as they do.

>>> import numpy as np, exprc as ex
>>> a, b = ex.matrix("a"), ex.vector("b")
>>> x = ex.linalg.solve(a, b)
>>> f = ex.function([a, b], [x, ex.grad(x.sum(), b)])
>>> f(np.array([[2.0, 0.0], [0.0, 4.0]]), np.array([1.0, 1.0]))
[array([0.5 , 0.25]), array([0.5 , 0.25])]
"""

from __future__ import annotations

import numpy as np

from .ops import elemwise as E
from .ops.decompositions import (
    QR,
    SVD,
    Cholesky,
    Det,
    Eigh,
    Inv,
    LinAlgError,
    Lstsq,
    SlogDet,
    Solve,
    SolveTriangular,
    check_matrices,
    identity_like,
    linalg_dtype,
)
from .ops.linalg import matmul
from .ops.reduction import max as _max
from .ops.reduction import min as _min
from .ops.reduction import sum as _sum
from .ops.shape import dimshuffle, squeeze
from .tensor import TensorLike, TensorVariable, as_tensor

__all__ = [
    "LinAlgError",
    "cho_solve",
    "cholesky",
    "det",
    "eigh",
    "inv",
    "lstsq",
    "matrix_power",
    "norm",
    "qr",
    "slogdet",
    "solve",
    "solve_triangular",
    "svd",
]


def solve(a: TensorLike, b: TensorLike) -> TensorVariable:
    """``x`` with ``a @ x == b`` (``numpy.linalg.solve``: a 1-d ``b`` is one vector, else a stack
    of matrices broadcast against ``a``'s batch axes). A singular ``a`` raises ``LinAlgError``.

    >>> import exprc as ex
    >>> ex.linalg.solve(ex.tensor3("a"), ex.matrix("b")).ndim
    3
    """
    return Solve()(as_tensor(a), as_tensor(b))


def solve_triangular(
    a: TensorLike, b: TensorLike, trans: int | str = 0, lower: bool = False, unit_diagonal: bool = False
) -> TensorVariable:
    """Solve ``a @ x == b`` (or ``a.T @ x == b`` with ``trans=1`` or ``"T"``) for a triangular
    ``a``, reading only its lower or upper triangle (SciPy's ``solve_triangular``, batched).

    >>> import exprc as ex
    >>> ex.linalg.solve_triangular(ex.matrix("l"), ex.vector("b"), lower=True).ndim
    1
    """
    a, b = as_tensor(a), as_tensor(b)
    if trans in (1, "T", "C"):
        check_matrices(a, "solve_triangular")
        a, lower = _swap(a), not lower
    elif trans not in (0, "N"):
        raise ValueError(f"solve_triangular: trans must be 0, 1, 'N', 'T' or 'C', got {trans!r}")
    return SolveTriangular(bool(lower), bool(unit_diagonal))(a, b)


def _swap(a: TensorVariable) -> TensorVariable:
    return dimshuffle(a, [*range(a.ndim - 2), a.ndim - 1, a.ndim - 2])


def cho_solve(c_and_lower: tuple[TensorLike, bool], b: TensorLike) -> TensorVariable:
    """Solve ``a @ x == b`` given the Cholesky factor of ``a``, as SciPy's ``cho_solve``:
    ``c_and_lower`` is ``(c, lower)``, ``c`` lower (``a = c @ c.T``) or upper
    (``a = c.T @ c``). Two triangular solves.

    >>> import numpy as np, exprc as ex
    >>> a, b = ex.matrix("a"), ex.vector("b")
    >>> x = ex.linalg.cho_solve((ex.linalg.cholesky(a), True), b)
    >>> x.eval({a: np.array([[4.0, 2.0], [2.0, 5.0]]), b: np.array([2.0, 3.0])})
    array([0.25, 0.5 ])
    """
    try:
        c, lower = c_and_lower
    except (TypeError, ValueError):
        raise TypeError(f"cho_solve: expected a pair (c, lower), got {c_and_lower!r}") from None
    c, b = as_tensor(c), as_tensor(b)
    if lower:
        return solve_triangular(c, solve_triangular(c, b, lower=True), trans="T", lower=True)
    return solve_triangular(c, solve_triangular(c, b, trans="T", lower=False), lower=False)


def inv(a: TensorLike) -> TensorVariable:
    """The inverse of each matrix (``numpy.linalg.inv``); a singular one raises ``LinAlgError``.

    >>> import exprc as ex
    >>> ex.linalg.inv(ex.matrix("a")).ndim
    2
    """
    return Inv()(as_tensor(a))


def det(a: TensorLike) -> TensorVariable:
    """The determinant of each matrix (``numpy.linalg.det``).

    >>> import numpy as np, exprc as ex
    >>> ex.linalg.det(ex.constant(np.array([[1.0, 2.0], [3.0, 4.0]]))).eval()
    array(-2.)
    """
    return Det()(as_tensor(a))


def slogdet(a: TensorLike) -> tuple[TensorVariable, TensorVariable]:
    """``(sign, logabsdet)`` of each matrix's determinant (``numpy.linalg.slogdet``).

    >>> import exprc as ex
    >>> sign, logdet = ex.linalg.slogdet(ex.tensor3("a"))
    >>> logdet.ndim
    1
    """
    sign, logdet = SlogDet()(as_tensor(a))
    return sign, logdet


def cholesky(a: TensorLike, upper: bool = False) -> TensorVariable:
    """The Cholesky factor of each symmetric positive definite matrix (``numpy.linalg.cholesky``):
    lower, ``a = l @ l.T``, or ``upper``; a matrix that is not positive definite raises
    ``LinAlgError``. Only that triangle of ``a`` is read; the gradient is the symmetric one
    (the gradient for a symmetric ``a``, as JAX and PyTorch give).

    >>> import exprc as ex
    >>> ex.linalg.cholesky(ex.matrix("a")).ndim
    2
    """
    return Cholesky(bool(upper))(as_tensor(a))


def eigh(a: TensorLike, UPLO: str = "L") -> tuple[TensorVariable, TensorVariable]:  # noqa: N803 - NumPy's name
    """Eigenvalues (ascending) and eigenvectors of each symmetric matrix (``numpy.linalg.eigh``),
    reading its lower (``UPLO="L"``) or upper triangle. The gradient is the symmetric one and
    assumes distinct eigenvalues (where two are equal it leaves out the term between them).

    >>> import exprc as ex
    >>> w, v = ex.linalg.eigh(ex.matrix("a"))
    >>> w.ndim, v.ndim
    (1, 2)
    """
    if UPLO not in ("L", "U"):
        raise ValueError(f"eigh: UPLO must be 'L' or 'U', got {UPLO!r}")
    w, v = Eigh(UPLO == "L")(as_tensor(a))
    return w, v


def svd(
    a: TensorLike, full_matrices: bool = True, compute_uv: bool = True
) -> tuple[TensorVariable, TensorVariable, TensorVariable] | TensorVariable:
    """``u, s, vh`` with ``a = u @ diag(s) @ vh`` (``numpy.linalg.svd``), or ``s`` alone without
    ``compute_uv``. The gradient assumes distinct nonzero singular values; with
    ``full_matrices=True`` it needs a square ``a``.

    >>> import exprc as ex
    >>> u, s, vh = ex.linalg.svd(ex.tensor("a", shape=(5, 3)), full_matrices=False)
    >>> u.type.shape, s.type.shape, vh.type.shape
    ((5, 3), (3,), (3, 3))
    """
    out = SVD(bool(full_matrices), bool(compute_uv))(as_tensor(a))
    return tuple(out) if compute_uv else out


def qr(a: TensorLike, mode: str = "reduced") -> tuple[TensorVariable, TensorVariable] | TensorVariable:
    """The QR factorization (``numpy.linalg.qr``) in mode ``"reduced"``, ``"complete"`` or ``"r"``.
    The gradient needs at least as many rows as columns.

    >>> import exprc as ex
    >>> q, r = ex.linalg.qr(ex.tensor("a", shape=(5, 3)))
    >>> q.type.shape, r.type.shape
    ((5, 3), (3, 3))
    """
    if mode not in ("reduced", "complete", "r"):
        raise ValueError(f"qr: mode must be 'reduced', 'complete' or 'r', got {mode!r}")
    out = QR(mode == "complete", mode != "r")(as_tensor(a))
    return out if mode == "r" else tuple(out)


def lstsq(
    a: TensorLike, b: TensorLike, rcond: float | None = None
) -> tuple[TensorVariable, TensorVariable, TensorVariable, TensorVariable]:
    """``x, residuals, rank, s`` of the least-squares problem ``a @ x ~ b`` (``numpy.linalg.lstsq``;
    a matrix ``a``, a vector or matrix ``b``). The gradient flows through ``x``, at constant rank.

    >>> import numpy as np, exprc as ex
    >>> a, b = ex.matrix("a"), ex.vector("b")
    >>> x, residuals, rank, s = ex.linalg.lstsq(a, b)
    >>> x.eval({a: np.array([[1.0], [1.0]]), b: np.array([1.0, 3.0])})
    array([2.])
    """
    out = Lstsq(None if rcond is None else float(rcond))(as_tensor(a), as_tensor(b))
    return tuple(out)


def _vector_norm(x: TensorVariable, ord, axis, keepdims) -> TensorVariable:
    a = E.absolute(x)
    if ord is None or ord == 2:
        return E.sqrt(_sum(x * x, axis=axis, keepdims=keepdims))
    if ord == np.inf:
        return _max(a, axis=axis, keepdims=keepdims)
    if ord == -np.inf:
        return _min(a, axis=axis, keepdims=keepdims)
    if ord == 0:
        return E.astype(_sum(E.neq(x, 0), axis=axis, keepdims=keepdims), x.dtype)
    if ord == 1:
        return _sum(a, axis=axis, keepdims=keepdims)
    if isinstance(ord, str):
        raise ValueError(f"norm: ord {ord!r} is a matrix norm; a vector norm takes a number")
    return _sum(a ** float(ord), axis=axis, keepdims=keepdims) ** (1.0 / float(ord))


def _matrix_norm(x: TensorVariable, ord, axes, keepdims) -> TensorVariable:
    row, col = axes
    a = E.absolute(x)

    def two_step(inner, outer, fn):
        # a sum over one axis, then fn over the other, each keeping its axis until the end
        y = fn(_sum(a, axis=inner, keepdims=True), axis=outer, keepdims=True)
        return y if keepdims else squeeze(y, axis=axes)

    if ord is None or ord == "fro":
        return E.sqrt(_sum(x * x, axis=axes, keepdims=keepdims))
    if ord in (1, -1):
        return two_step(row, col, _max if ord == 1 else _min)
    if ord in (np.inf, -np.inf):
        return two_step(col, row, _max if ord == np.inf else _min)
    if ord in (2, -2, "nuc"):
        moved = dimshuffle(x, [i for i in range(x.ndim) if i not in (row, col)] + [row, col])
        s = SVD(False, False)(moved)
        out = _sum(s, axis=-1) if ord == "nuc" else (_max if ord == 2 else _min)(s, axis=-1)
        if keepdims:
            order = [i for i in range(x.ndim) if i not in (row, col)]
            out = dimshuffle(out, [order.index(i) if i in order else "x" for i in range(x.ndim)])
        return out
    raise ValueError(f"norm: invalid norm order {ord!r} for matrices")


def norm(
    x: TensorLike, ord: float | str | None = None, axis: int | tuple[int, int] | None = None, keepdims: bool = False
) -> TensorVariable:
    """Vector and matrix norms as ``numpy.linalg.norm``: ``ord`` None, ``inf``, ``-inf``, 0, 1,
    any number for vectors; None, ``"fro"``, ``"nuc"``, 1, -1, 2, -2, ``inf``, ``-inf`` for
    matrices (an ``axis`` pair, or a 2-d ``x`` with ``axis=None``). Built from reductions
    (the SVD for 2, -2 and ``"nuc"``).

    >>> import numpy as np, exprc as ex
    >>> ex.linalg.norm(ex.constant(np.array([3.0, -4.0]))).eval()
    array(5.)
    """
    x = as_tensor(x)
    x = x if x.dtype == linalg_dtype(x, "norm") else E.astype(x, linalg_dtype(x, "norm"))
    if axis is None:
        if ord is None:
            out = E.sqrt(_sum(x * x))
            return dimshuffle(out, ["x"] * x.ndim) if keepdims else out
        if x.ndim == 1:
            axis = (0,)
        elif x.ndim == 2:
            axis = (0, 1)
        else:
            raise ValueError(f"norm: {x} is {x.ndim}-d; give an axis (or a pair of them) for ord={ord!r}")
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    axes = tuple(int(i) + x.ndim if i < 0 else int(i) for i in axes)
    if any(not 0 <= i < x.ndim for i in axes) or len(set(axes)) != len(axes):
        raise ValueError(f"norm: invalid axis {axis!r} for {x} of {x.ndim} dimensions")
    if len(axes) == 1:
        return _vector_norm(x, ord, axes, keepdims)
    if len(axes) == 2:
        return _matrix_norm(x, ord, axes, keepdims)
    raise ValueError(f"norm: axis must be an int or a pair of ints, got {axis!r}")


def matrix_power(a: TensorLike, n: int) -> TensorVariable:
    """``a`` multiplied by itself ``n`` times (``numpy.linalg.matrix_power``, by repeated
    squaring): the identity for 0, powers of ``inv(a)`` for negative ``n``.

    >>> import numpy as np, exprc as ex
    >>> ex.linalg.matrix_power(ex.constant(np.array([[1, 1], [0, 1]])), 3).eval()
    array([[1, 3],
           [0, 1]])
    """
    a = as_tensor(a)
    check_matrices(a, "matrix_power")
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
        raise TypeError(f"matrix_power: the exponent must be an integer, got {n!r}")
    if n == 0:
        return identity_like(a)
    if n < 0:
        a, n = inv(a), -n
    result, square = None, a
    while n:
        if n & 1:
            result = square if result is None else matmul(result, square)
        n >>= 1
        if n:
            square = matmul(square, square)
    return result
