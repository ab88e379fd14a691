"""Cumulative ops along an axis: cumsum, cumprod, cummax and cummin as ops (the back ends
run their NumPy references), and diff composed from slices. ``axis=None`` flattens, as
in NumPy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..dtypes import as_dtype, is_float, probe_dtype
from ..graph import Apply, Op
from ..printing import ATOM, call_text
from ..shapes import normalize_axis
from ..tensor import DType, TensorLike, TensorType, TensorVariable, as_tensor
from . import elemwise as E
from .construct import arange
from .rearrange import flip, put_along_axis
from .shape import broadcast_to, concatenate, dimshuffle, reshape, shape_i, zeros_like


@dataclass(frozen=True)
class Cumulative(Op):
    """The base class of the cumulative ops: ``numpy`` applied along ``axis``."""

    axis: int

    name: ClassVar[str] = ""
    numpy: ClassVar[Callable[..., Any]]

    def make_node(self, x):
        if not 0 <= self.axis < x.ndim:
            raise np.exceptions.AxisError(
                f"{self.name}: axis {self.axis} is out of bounds for {x} of {x.ndim} dimensions"
            )
        dtype = probe_dtype(_on_a_vector(type(self).numpy), (x.dtype,))
        return Apply(self, [x], [TensorType(dtype, x.type.shape)])

    def perform(self, node, inputs):
        out = type(self).numpy(inputs[0], axis=self.axis)
        return [np.asarray(out).astype(node.outputs[0].dtype, copy=False)]

    def infix(self, node, show):
        return call_text(self.name, show(node.inputs[0]), axis=self.axis), ATOM


def _on_a_vector(fn):
    return _PROBES.setdefault(fn, lambda value: fn(np.reshape(value, (1,)), axis=0))


_PROBES: dict = {}


def _reversed_cumsum(g, axis):
    return flip(CumSum(axis)(flip(g, axis)), axis)


@dataclass(frozen=True)
class CumSum(Cumulative):
    """NumPy's ``cumsum`` along ``axis``."""

    name = "cumsum"
    numpy = staticmethod(np.cumsum)

    def grad(self, node, output_grads):
        (x,) = node.inputs
        return [_reversed_cumsum(output_grads[0], self.axis) if is_float(x.dtype) else None]


@dataclass(frozen=True)
class CumProd(Cumulative):
    """NumPy's ``cumprod`` along ``axis``."""

    name = "cumprod"
    numpy = staticmethod(np.cumprod)

    def grad(self, node, output_grads):
        (x,) = node.inputs
        if not is_float(x.dtype):
            return [None]
        # d out_j / d x_i = out_j / x_i for j >= i: exact where x has no zeros (NaN or inf at a zero)
        return [_reversed_cumsum(output_grads[0] * node.outputs[0], self.axis) / x]


def _running_extreme_grad(node, gz, axis):
    """The gradient of a running max or min: each output's gradient goes to the input it
    copies, the latest position up to it where the input equals the running value."""
    (x,) = node.inputs
    (out,) = node.outputs
    position = dimshuffle(arange(shape_i(x, axis)), tuple(0 if a == axis else "x" for a in range(x.ndim)))
    source = CumMax(axis)(E.where(E.eq(x, out), position, 0))
    return put_along_axis(zeros_like(x, gz.dtype), source, gz, axis, inc=True)


@dataclass(frozen=True)
class CumMax(Cumulative):
    """The running maximum along ``axis`` (NumPy's ``maximum.accumulate``)."""

    name = "cummax"
    numpy = staticmethod(np.maximum.accumulate)

    def grad(self, node, output_grads):
        x = node.inputs[0]
        return [_running_extreme_grad(node, output_grads[0], self.axis) if is_float(x.dtype) else None]


@dataclass(frozen=True)
class CumMin(Cumulative):
    """The running minimum along ``axis`` (NumPy's ``minimum.accumulate``)."""

    name = "cummin"
    numpy = staticmethod(np.minimum.accumulate)

    def grad(self, node, output_grads):
        x = node.inputs[0]
        return [_running_extreme_grad(node, output_grads[0], self.axis) if is_float(x.dtype) else None]


def _cumulative(cls, x, axis, dtype=None):
    x = as_tensor(x)
    if dtype is not None:
        # NumPy accumulates in ``dtype``; for narrow integers, accumulating wider and then
        # wrapping gives the same bits, as sums and products commute with wrapping
        dtype = as_dtype(dtype)
        return _cumulative(cls, x.astype(dtype), axis).astype(dtype)
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    elif isinstance(axis, (tuple, list)):
        raise TypeError(f"{cls.name}: axis must be an int or None, got {axis!r}")
    else:
        axis = normalize_axis(axis, x.ndim, cls.name)[0]
    return cls(axis)(x)


def cumsum(x: TensorLike, axis: int | None = None, dtype: DType | None = None) -> TensorVariable:
    """Running sums along ``axis`` (of the flattened ``x`` when None), in ``dtype`` if given
    (NumPy's ``cumsum``).

    >>> import exprc as ex
    >>> v = ex.vector("v")
    >>> ex.cumsum(v).eval({v: [1.0, 2.0, 3.0]})
    array([1., 3., 6.])
    """
    return _cumulative(CumSum, x, axis, dtype)


def cumprod(x: TensorLike, axis: int | None = None, dtype: DType | None = None) -> TensorVariable:
    """Running products along ``axis`` (of the flattened ``x`` when None), in ``dtype`` if
    given (NumPy's ``cumprod``).
    Its gradient divides by ``x``: NaN or infinite where ``x`` has a zero.

    >>> import exprc as ex
    >>> v = ex.vector("v")
    >>> ex.cumprod(v).eval({v: [1.0, 2.0, 3.0]})
    array([1., 2., 6.])
    """
    return _cumulative(CumProd, x, axis, dtype)


def cummax(x: TensorLike, axis: int | None = None) -> TensorVariable:
    """The running maximum along ``axis`` (NumPy's ``maximum.accumulate``; flattened when None).

    >>> import exprc as ex
    >>> v = ex.vector("v")
    >>> ex.cummax(v).eval({v: [1.0, 3.0, 2.0]})
    array([1., 3., 3.])
    """
    return _cumulative(CumMax, x, axis)


def cummin(x: TensorLike, axis: int | None = None) -> TensorVariable:
    """The running minimum along ``axis`` (NumPy's ``minimum.accumulate``; flattened when None).

    >>> import exprc as ex
    >>> v = ex.vector("v")
    >>> ex.cummin(v).eval({v: [2.0, 3.0, 1.0]})
    array([2., 2., 1.])
    """
    return _cumulative(CumMin, x, axis)


def diff(
    x: TensorLike, n: int = 1, axis: int = -1, prepend: TensorLike | None = None, append: TensorLike | None = None
) -> TensorVariable:
    """The ``n``-th difference along ``axis`` (NumPy's ``diff``; ``!=`` for booleans), of
    ``x`` with ``prepend`` and ``append`` joined to it along ``axis`` (a scalar is repeated
    across the other axes).

    >>> import exprc as ex
    >>> v = ex.vector("v")
    >>> ex.diff(v).eval({v: [1.0, 4.0, 9.0]})
    array([3., 5.])
    """
    x = as_tensor(x)
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"diff: order n must be an int, got {n!r}")
    if n < 0:
        raise ValueError(f"diff: order n must be non-negative, got {n}")
    if x.ndim == 0:
        raise ValueError(f"diff: expected at least 1 dimension, got the 0-d {x}")
    axis = normalize_axis(axis, x.ndim, "diff")[0]
    if prepend is not None or append is not None:
        edge = [1 if a == axis else shape_i(x, a) for a in range(x.ndim)]
        parts = [as_tensor(v) for v in (prepend, append) if v is not None]
        parts = [broadcast_to(v, edge) if v.ndim == 0 else v for v in parts]
        if prepend is not None:
            x = concatenate([parts[0], x], axis=axis)
        if append is not None:
            x = concatenate([x, parts[-1]], axis=axis)
    before = (slice(None),) * axis
    for _ in range(int(n)):
        upper, lower = x[before + (slice(1, None),)], x[before + (slice(None, -1),)]
        x = E.neq(upper, lower) if x.dtype == "bool" else upper - lower
    return x


__all__: Sequence[str] = (
    "CumMax",
    "CumMin",
    "CumProd",
    "CumSum",
    "Cumulative",
    "cummax",
    "cummin",
    "cumprod",
    "cumsum",
    "diff",
)
