"""Linear algebra: matmul (batched, broadcasting), tensordot, and dot and outer built on them.

These are the nodes a back end hands to a GEMM; the NumPy reference is NumPy's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..dtypes import is_float, probe_dtype
from ..graph import Apply, Op
from ..printing import ATOM, call_text, lazy
from ..shapes import ShapeError, broadcast_shapes, fmt_shape, normalize_axis
from ..tensor import TensorLike, TensorType, TensorVariable, as_tensor
from . import elemwise as E
from .shape import dimshuffle, flatten, sum_to


def _product_dtype(a, b):
    return probe_dtype(_matmul_probe, (a.dtype, b.dtype))


def _matmul_probe(a, b):
    return np.matmul(np.reshape(a, (1, 1)), np.reshape(b, (1, 1)))


def _check_inner(a, b, len_a, len_b, what):
    if len_a is not None and len_b is not None and len_a != len_b:
        raise ShapeError(
            f"{what}: shapes {fmt_shape(a.type.shape)} ({a}) and {fmt_shape(b.type.shape)} ({b}) "
            f"are not aligned: {len_a} != {len_b}"
        )


@dataclass(frozen=True)
class MatMul(Op):
    """NumPy's ``matmul``: matrix product over the last two axes, broadcasting the others;
    a 1-d operand is a row (left) or column (right) vector whose axis is dropped."""

    def make_node(self, a, b):
        for v in (a, b):
            if v.ndim == 0:
                raise ValueError(f"matmul: {v} is 0-d; use * to scale by a scalar")
        sa = (1,) + a.type.shape if a.ndim == 1 else a.type.shape
        sb = b.type.shape + (1,) if b.ndim == 1 else b.type.shape
        _check_inner(a, b, sa[-1], sb[-2], "matmul")
        batch = broadcast_shapes([sa[:-2], sb[:-2]], [a, b], what="matmul batch axes")
        shape = batch + ((sa[-2],) if a.ndim > 1 else ()) + ((sb[-1],) if b.ndim > 1 else ())
        return Apply(self, [a, b], [TensorType(_product_dtype(a, b), shape)])

    def perform(self, node, inputs):
        return [np.asarray(np.matmul(*inputs)).astype(node.outputs[0].dtype, copy=False)]

    def grad(self, node, output_grads):
        """``gz @ b.T`` and ``a.T @ gz`` on the last two axes, a vector operand taken as a
        one-row (a) or one-column (b) matrix, then summed over broadcast batch axes."""
        a, b = node.inputs
        (gz,) = output_grads
        a2 = dimshuffle(a, ("x", 0)) if a.ndim == 1 else a
        b2 = dimshuffle(b, (0, "x")) if b.ndim == 1 else b
        batch = gz.ndim - (a.ndim > 1) - (b.ndim > 1)
        gz2 = dimshuffle(
            gz, list(range(batch)) + [batch if a.ndim > 1 else "x"] + [batch + (a.ndim > 1) if b.ndim > 1 else "x"]
        )
        grads = []
        for x, x2, product in (
            (a, a2, lambda: matmul(gz2, _swap_last(b2))),
            (b, b2, lambda: matmul(_swap_last(a2), gz2)),
        ):
            if not is_float(x.dtype):
                grads.append(None)
                continue
            # Only batch axes can have been broadcast; the last two are matched, not broadcast.
            g = sum_to(product(), x2, axes=range(x2.ndim - 2))
            grads.append(dimshuffle(g, (1,) if x is a else (0,)) if x.ndim == 1 else g)
        return grads

    def infix(self, node, show):
        a, b = node.inputs
        return f"{show(a, 20)} @ {show(b, 21)}", 20


def _swap_last(x: TensorVariable) -> TensorVariable:
    """``x`` with its last two axes swapped."""
    return dimshuffle(x, list(range(x.ndim - 2)) + [x.ndim - 1, x.ndim - 2])


def matmul(a: TensorLike, b: TensorLike) -> TensorVariable:
    """Matrix product with NumPy's ``matmul`` semantics (the ``@`` operator).

    >>> import exprc as ex
    >>> (ex.tensor3("a") @ ex.matrix("b")).ndim
    3
    """
    return MatMul()(as_tensor(a), as_tensor(b))


@dataclass(frozen=True)
class TensorDot(Op):
    """NumPy's ``tensordot``: sum products over ``axes_a`` of a paired with ``axes_b`` of b."""

    axes_a: tuple
    axes_b: tuple

    def make_node(self, a, b):
        for i, j in zip(self.axes_a, self.axes_b):
            _check_inner(a, b, a.type.shape[i], b.type.shape[j], f"tensordot over axes {i} and {j}")
        free_a = tuple(d for i, d in enumerate(a.type.shape) if i not in self.axes_a)
        free_b = tuple(d for j, d in enumerate(b.type.shape) if j not in self.axes_b)
        return Apply(self, [a, b], [TensorType(_product_dtype(a, b), free_a + free_b)])

    def perform(self, node, inputs):
        out = np.tensordot(*inputs, axes=(self.axes_a, self.axes_b))
        return [np.asarray(out).astype(node.outputs[0].dtype, copy=False)]

    def grad(self, node, output_grads):
        """Contract ``gz`` with the other operand over its free axes, then put the axes
        back in the operand's order."""
        a, b = node.inputs
        (gz,) = output_grads
        free_a = [i for i in range(a.ndim) if i not in self.axes_a]
        free_b = [j for j in range(b.ndim) if j not in self.axes_b]
        ga = gb = None
        if is_float(a.dtype):
            g = tensordot(gz, b, (list(range(len(free_a), gz.ndim)), free_b))
            labels = free_a + [self.axes_a[self.axes_b.index(j)] for j in sorted(self.axes_b)]
            ga = dimshuffle(g, [labels.index(i) for i in range(a.ndim)])
        if is_float(b.dtype):
            g = tensordot(a, gz, (free_a, list(range(len(free_a)))))
            labels = [self.axes_b[self.axes_a.index(i)] for i in sorted(self.axes_a)] + free_b
            gb = dimshuffle(g, [labels.index(j) for j in range(b.ndim)])
        return [ga, gb]

    def infix(self, node, show):
        a, b = node.inputs
        return call_text("tensordot", show(a), show(b), axes=(list(self.axes_a), list(self.axes_b))), ATOM


def tensordot(a: TensorLike, b: TensorLike, axes: int | Sequence[int | Sequence[int]] = 2) -> TensorVariable:
    """Sum of products over the given axes (NumPy's ``tensordot``): ``axes`` is an int
    (the last ``axes`` of a with the first of b) or a pair of axis sequences.

    >>> import exprc as ex
    >>> ex.tensordot(ex.tensor3("a"), ex.matrix("b"), axes=([1, 2], [0, 1])).ndim
    1
    """
    a, b = as_tensor(a), as_tensor(b)
    if isinstance(axes, (int, np.integer)):
        if not 0 <= axes <= min(a.ndim, b.ndim):
            raise ValueError(f"tensordot of {a} and {b}: axes={axes} exceeds their dimensions")
        axes_a, axes_b = list(range(a.ndim - axes, a.ndim)), list(range(axes))
    else:
        try:
            given_a, given_b = axes
        except (TypeError, ValueError):
            raise TypeError(f"tensordot: axes must be an int or a pair of sequences, got {axes!r}") from None
        axes_a = [given_a] if isinstance(given_a, (int, np.integer)) else list(given_a)
        axes_b = [given_b] if isinstance(given_b, (int, np.integer)) else list(given_b)
    if len(axes_a) != len(axes_b):
        raise ValueError(f"tensordot: axes {axes_a} and {axes_b} must pair up one to one")
    axes_a = [normalize_axis(i, a.ndim, lazy("tensordot axis of {}", a))[0] for i in axes_a]
    axes_b = [normalize_axis(j, b.ndim, lazy("tensordot axis of {}", b))[0] for j in axes_b]
    if len(set(axes_a)) != len(axes_a) or len(set(axes_b)) != len(axes_b):
        raise ValueError(f"tensordot: an axis is repeated in {axes_a} or {axes_b}")
    return TensorDot(tuple(axes_a), tuple(axes_b))(a, b)


def dot(a: TensorLike, b: TensorLike) -> TensorVariable:
    """NumPy's ``dot``: a product for scalars, matmul for vectors and matrices, and for
    higher dimensions the sum over the last axis of a and the second-to-last of b.

    >>> import exprc as ex
    >>> ex.dot(ex.vector("v"), ex.matrix("m")).ndim
    1
    """
    a, b = as_tensor(a), as_tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        return E.multiply(a, b)
    if a.ndim <= 2 and b.ndim <= 2:
        return matmul(a, b)
    return tensordot(a, b, ([a.ndim - 1], [max(b.ndim - 2, 0)]))


def outer(a: TensorLike, b: TensorLike) -> TensorVariable:
    """The outer product of the flattened inputs (NumPy's ``outer``).

    >>> import exprc as ex
    >>> ex.outer(ex.vector("a"), ex.vector("b")).ndim
    2
    """
    a, b = flatten(as_tensor(a)), flatten(as_tensor(b))
    return E.multiply(dimshuffle(a, (0, "x")), dimshuffle(b, ("x", 0)))
