"""Building arrays: arange (an op, its length may be symbolic), and linspace, eye,
identity, diag, diagonal, trace, tril, triu, meshgrid composed from it and from
comparisons, ``where`` and integer-array indexing, so that they fuse in the
compiled back ends; Theano's names ``alloc``, ``xlogx`` and ``xlogy0``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..dtypes import as_dtype, is_float, is_integer, probe_dtype
from ..graph import Apply, Op
from ..printing import ATOM, call_text
from ..shapes import normalize_axis
from ..tensor import DType, TensorConstant, TensorLike, TensorType, TensorVariable, as_tensor, constant
from . import elemwise as E
from .shape import broadcast_to, concatenate, dimshuffle, full, reshape, shape_i, transpose, zeros_like

# --- arange ------------------------------------------------------------------------


def _arange_probe(start, stop, step):
    return np.arange(start, stop, step)


def _weak_value(v):
    return v.value.item() if isinstance(v, TensorConstant) and v.type.weak else None


@dataclass(frozen=True)
class ARange(Op):
    """NumPy's ``arange(start, stop, step, dtype)``; the three bounds are 0-d inputs, so the
    length may be known only at run time (``arange(x.shape[0])``)."""

    dtype: str

    def make_node(self, start, stop, step):
        for name, v in (("start", start), ("stop", stop), ("step", step)):
            if v.ndim != 0 or not (is_integer(v.dtype) or is_float(v.dtype)):
                raise TypeError(f"arange: {name} must be an integer or float scalar, got {v} ({v.type})")
        bounds = [v.value for v in (start, stop, step) if isinstance(v, TensorConstant)]
        length = None
        if len(bounds) == 3:
            if bounds[2] == 0:
                raise ZeroDivisionError("arange: step is 0; expected a non-zero step")
            length = len(np.arange(*bounds, dtype=self.dtype))
        return Apply(self, [start, stop, step], [TensorType(self.dtype, (length,))])

    def perform(self, node, inputs):
        start, stop, step = inputs
        if step == 0:
            raise ZeroDivisionError(f"arange({node.inputs[0]}, {node.inputs[1]}, {node.inputs[2]}): step is 0")
        return [np.arange(start, stop, step, dtype=self.dtype)]

    def grad(self, node, output_grads):
        (gz,) = output_grads
        start, stop, step = node.inputs
        if not is_float(self.dtype):
            return [None, None, None]
        index = ARange(self.dtype)(constant(0), shape_i(node.outputs[0], 0), constant(1))
        g_start = gz.sum() if is_float(start.dtype) else None
        g_step = (gz * index).sum() if is_float(step.dtype) else None
        return [g_start, zeros_like(stop) if is_float(stop.dtype) else None, g_step]

    def infix(self, node, show):
        start, stop, step = (show(v) for v in node.inputs)
        return call_text("arange", start, stop, step, dtype=self.dtype), ATOM


def arange(
    start: TensorLike, stop: TensorLike | None = None, step: TensorLike = 1, dtype: DType | None = None
) -> TensorVariable:
    """Evenly spaced values in ``[start, stop)`` (NumPy's ``arange``); the bounds may be
    symbolic scalars, and then so is the length.

    >>> import exprc as ex
    >>> ex.arange(4).eval()
    array([0, 1, 2, 3])
    >>> x = ex.matrix("x")
    >>> ex.arange(x.shape[0]).type.shape
    (None,)
    """
    if stop is None:
        start, stop = 0, start
    bounds = [as_tensor(v) for v in (start, stop, step)]
    if isinstance(bounds[2], TensorConstant) and bounds[2].value == 0:
        raise ZeroDivisionError("arange: step is 0; expected a non-zero step")
    for name, v in zip(("start", "stop", "step"), bounds):
        if v.ndim != 0 or not (is_integer(v.dtype) or is_float(v.dtype)):
            raise TypeError(f"arange: {name} must be an integer or float scalar, got {v} ({v.type})")
    if dtype is None:
        weak = tuple(_weak_value(v) for v in bounds)
        # a weak step of 0 never gets here; a weak stop equal to start gives an empty probe
        dtype = probe_dtype(_arange_probe, tuple(v.dtype for v in bounds), weak)
    return ARange(as_dtype(dtype))(*bounds)


def _length(n, what):
    """A length argument (an int or an integer scalar) as a 0-d tensor."""
    if isinstance(n, (bool, np.bool_)) or isinstance(n, float):
        raise TypeError(f"{what}: expected an integer length, got {n!r}")
    v = as_tensor(n)
    if v.ndim != 0 or not is_integer(v.dtype):
        raise TypeError(f"{what}: expected an integer length, got {v} ({v.type})")
    if isinstance(v, TensorConstant) and v.value < 0:
        raise ValueError(f"{what}: length {int(v.value)} is negative")
    return v


def _linspace_probe(start, stop):
    return np.linspace(start, stop, 2)


def linspace(
    start: TensorLike, stop: TensorLike, num: TensorLike = 50, endpoint: bool = True, dtype: DType | None = None
) -> TensorVariable:
    """``num`` evenly spaced values from ``start`` to ``stop`` (NumPy's ``linspace``).

    >>> import exprc as ex
    >>> ex.linspace(0.0, 1.0, 5).eval()
    array([0.  , 0.25, 0.5 , 0.75, 1.  ])
    """
    start, stop = as_tensor(start), as_tensor(stop)
    num = _length(num, "linspace")
    weak = (_weak_value(start), _weak_value(stop))
    work = probe_dtype(_linspace_probe, (start.dtype, stop.dtype), weak)
    index = arange(num, dtype=work)
    div = num - 1 if endpoint else num
    start, stop = start.astype(work), stop.astype(work)
    delta = stop - start
    # NumPy multiplies by the step, and for a single value (div 0) by nothing
    y = E.where(div > 0, index * (delta / E.maximum(div, 1)), index * delta) + start
    if endpoint:
        y = E.where((index == div) & (div > 0), stop, y)
    if dtype is not None and not is_float(dtype):
        y = E.floor(y)  # NumPy floors towards an integer dtype
    return y if dtype is None else y.astype(as_dtype(dtype))


def _index_grid(rows, cols):
    """Row indices as a column and column indices as a row, to compare into a (rows, cols) mask."""
    i, j = arange(rows), arange(cols)
    return dimshuffle(i, (0, "x")), dimshuffle(j, ("x", 0))


def eye(N: TensorLike, M: TensorLike | None = None, k: int = 0, dtype: DType = "float64") -> TensorVariable:
    """Ones on diagonal ``k`` of an ``N`` x ``M`` matrix, zeros elsewhere (NumPy's ``eye``).

    >>> import exprc as ex
    >>> ex.eye(2, 3, k=1, dtype="int32").eval()
    array([[0, 1, 0],
           [0, 0, 1]], dtype=int32)
    """
    N = _length(N, "eye")
    M = N if M is None else _length(M, "eye")
    i, j = _index_grid(N, M)
    return E.eq(i + k, j).astype(as_dtype(dtype))


def identity(n: TensorLike, dtype: DType = "float64") -> TensorVariable:
    """The ``n`` x ``n`` identity matrix (NumPy's ``identity``).

    >>> import exprc as ex
    >>> ex.identity(2).eval()
    array([[1., 0.],
           [0., 1.]])
    """
    return eye(n, dtype=dtype)


def _zero(dtype):
    return constant(0, dtype=dtype)


def diag(v: TensorLike, k: int = 0) -> TensorVariable:
    """A 1-d ``v`` placed on diagonal ``k`` of a square matrix, or diagonal ``k`` of a 2-d
    ``v`` (NumPy's ``diag``).

    >>> import exprc as ex
    >>> v = ex.vector("v")
    >>> ex.diag(v, 1).eval({v: [1.0, 2.0]})
    array([[0., 1., 0.],
           [0., 0., 2.],
           [0., 0., 0.]])
    """
    v = as_tensor(v)
    k = _offset(k, "diag")
    if v.ndim == 2:
        return diagonal(v, k)
    if v.ndim != 1:
        raise ValueError(f"diag: expected a 1-d or 2-d input, got {v} with {v.ndim} dimensions")
    if k:
        v = concatenate([v, full((abs(k),), _zero(v.dtype))])
    n = shape_i(v, 0)
    i, j = _index_grid(n, n)
    # row i holds v[i] above the main diagonal, column j holds v[j] below it
    values = dimshuffle(v, (0, "x")) if k >= 0 else dimshuffle(v, ("x", 0))
    return E.where(E.eq(i + k, j), values, _zero(v.dtype))


def _offset(k, what):
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"{what}: the diagonal offset must be an int, got {k!r}")
    return int(k)


def _diagonal_length(n1, n2, offset):
    """max(0, min(n1, n2 - offset)) for offset >= 0, max(0, min(n1 + offset, n2)) else."""
    a, b = (n1, n2 - offset) if offset >= 0 else (n1 + offset, n2)
    if isinstance(a, int) and isinstance(b, int):
        return max(0, min(a, b))
    return E.maximum(E.minimum(a, b), 0)


def diagonal(x: TensorLike, offset: int = 0, axis1: int = 0, axis2: int = 1) -> TensorVariable:
    """The diagonal ``offset`` of the planes ``(axis1, axis2)``, as the last axis (NumPy's
    ``diagonal``).

    >>> import exprc as ex
    >>> m = ex.matrix("m")
    >>> ex.diagonal(m, 1).eval({m: [[1.0, 2.0], [3.0, 4.0]]})
    array([2.])
    """
    x = as_tensor(x)
    offset = _offset(offset, "diagonal")
    if x.ndim < 2:
        raise ValueError(f"diagonal: expected at least 2 dimensions, got {x} with {x.ndim}")
    a1, a2 = (normalize_axis(a, x.ndim, "diagonal")[0] for a in (axis1, axis2))
    if a1 == a2:
        raise ValueError(f"diagonal: axis1 and axis2 are both axis {a1} of {x}; expected two different axes")
    xt = transpose(x, [a for a in range(x.ndim) if a not in (a1, a2)] + [a1, a2])
    n1, n2 = (d if d is not None else shape_i(xt, a) for a, d in ((-2, xt.type.shape[-2]), (-1, xt.type.shape[-1])))
    i = arange(_diagonal_length(n1, n2, offset))
    rows, cols = (i, i + offset) if offset >= 0 else (i - offset, i)
    return xt[..., rows, cols]


def trace(x: TensorLike, offset: int = 0, axis1: int = 0, axis2: int = 1, dtype: DType | None = None) -> TensorVariable:
    """The sum of a diagonal (NumPy's ``trace``).

    >>> import exprc as ex
    >>> m = ex.matrix("m")
    >>> ex.trace(m).eval({m: [[1.0, 2.0], [3.0, 4.0]]})
    array(5.)
    """
    return diagonal(x, offset, axis1, axis2).sum(axis=-1, dtype=dtype)


def _triangle(x, k, lower, what):
    x = as_tensor(x)
    k = _offset(k, what)
    if x.ndim == 0:
        raise ValueError(f"{what}: expected at least 1 dimension, got the 0-d {x}")
    rows = shape_i(x, -2) if x.ndim >= 2 else shape_i(x, -1)
    i, j = _index_grid(rows, shape_i(x, -1))
    keep = E.greater_equal(i + k, j) if lower else E.less_equal(i + k, j)
    return E.where(keep, x, _zero(x.dtype))


def tril(x: TensorLike, k: int = 0) -> TensorVariable:
    """``x`` with the elements above diagonal ``k`` of its last two axes zeroed (NumPy's ``tril``).

    >>> import exprc as ex
    >>> m = ex.matrix("m")
    >>> ex.tril(m).eval({m: [[1.0, 2.0], [3.0, 4.0]]})
    array([[1., 0.],
           [3., 4.]])
    """
    return _triangle(x, k, True, "tril")


def triu(x: TensorLike, k: int = 0) -> TensorVariable:
    """``x`` with the elements below diagonal ``k`` of its last two axes zeroed (NumPy's ``triu``).

    >>> import exprc as ex
    >>> m = ex.matrix("m")
    >>> ex.triu(m).eval({m: [[1.0, 2.0], [3.0, 4.0]]})
    array([[1., 2.],
           [0., 4.]])
    """
    return _triangle(x, k, False, "triu")


def meshgrid(*xs: TensorLike, indexing: str = "xy", sparse: bool = False) -> list[TensorVariable]:
    """Coordinate matrices from coordinate vectors (NumPy's ``meshgrid``).

    >>> import exprc as ex
    >>> a, b = ex.meshgrid(ex.arange(3), ex.arange(2))
    >>> a.eval()
    array([[0, 1, 2],
           [0, 1, 2]])
    """
    if indexing not in ("xy", "ij"):
        raise ValueError(f"meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}")
    vectors = [as_tensor(x) for x in xs]
    vectors = [v if v.ndim == 1 else reshape(v, (-1,)) for v in vectors]
    n = len(vectors)
    # 'xy' indexing (Cartesian) swaps the first two output axes
    axis_of = list(range(n))
    if indexing == "xy" and n > 1:
        axis_of[0], axis_of[1] = 1, 0
    lengths = [None] * n
    for v, a in zip(vectors, axis_of):
        lengths[a] = shape_i(v, 0)
    out = []
    for v, a in zip(vectors, axis_of):
        y = dimshuffle(v, tuple(0 if b == a else "x" for b in range(n)))
        out.append(y if sparse else broadcast_to(y, lengths))
    return out


# --- Theano's names -----------------------------------------------------------------


def alloc(value: TensorLike, *shape: TensorLike) -> TensorVariable:
    """``value`` broadcast to ``shape`` (Theano's ``alloc``, NumPy's ``full``).

    >>> import exprc as ex
    >>> ex.alloc(0.5, 2, 2).eval()
    array([[0.5, 0.5],
           [0.5, 0.5]])
    """
    return full(tuple(shape), value)


def xlogx(x: TensorLike) -> TensorVariable:
    """``x * log(x)``, and 0 where ``x`` is 0 (Theano's ``xlogx``).

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> ex.xlogx(x).eval({x: [0.0, 1.0]})
    array([0., 0.])
    """
    x = as_tensor(x)
    # log of 1 where x is 0 keeps inf * 0 out of both the value and its gradient
    return x * E.log(E.where(E.eq(x, 0), 1, x))


def xlogy0(x: TensorLike, y: TensorLike) -> TensorVariable:
    """``x * log(y)``, and 0 where ``x`` is 0 (Theano's ``xlogy0``).

    >>> import exprc as ex
    >>> x, y = ex.vector("x"), ex.vector("y")
    >>> ex.xlogy0(x, y).eval({x: [0.0, 2.0], y: [0.0, 1.0]})
    array([0., 0.])
    """
    x, y = as_tensor(x), as_tensor(y)
    return x * E.log(E.where(E.eq(x, 0), 1, y))


__all__: Sequence[str] = (
    "ARange",
    "alloc",
    "arange",
    "diag",
    "diagonal",
    "eye",
    "identity",
    "linspace",
    "meshgrid",
    "trace",
    "tril",
    "triu",
    "xlogx",
    "xlogy0",
)
