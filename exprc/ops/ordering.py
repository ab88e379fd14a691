"""Ordering and searching: sort, argsort (stable), searchsorted as ops (the back ends run
their NumPy references), and topk, partition, argpartition composed from them. ``unique``
is refused: the length of its result depends on the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np

from ..dtypes import is_float, is_integer
from ..graph import Apply, Op
from ..printing import ATOM, call_text
from ..shapes import normalize_axis
from ..tensor import TensorConstant, TensorLike, TensorType, TensorVariable, as_tensor
from . import elemwise as E
from .rearrange import flip, take, take_along_axis
from .shape import reshape, shape_i


def _axis_of(x, axis, what):
    """``(x, axis)``: the flattened ``x`` and 0 when ``axis`` is None, else ``axis`` normalized."""
    x = as_tensor(x)
    if axis is None:
        return reshape(x, (-1,)), 0
    if isinstance(axis, (tuple, list)):
        raise TypeError(f"{what}: axis must be an int or None, got {axis!r}")
    return x, normalize_axis(axis, x.ndim, what)[0]


def _check_axis(op, x, what):
    if not 0 <= op.axis < x.ndim:
        raise np.exceptions.AxisError(f"{what}: axis {op.axis} is out of bounds for {x} of {x.ndim} dimensions")


@dataclass(frozen=True)
class Sort(Op):
    """The elements of ``x`` in ascending order along ``axis`` (NumPy's stable ``sort``; NaN last)."""

    axis: int

    def make_node(self, x):
        _check_axis(self, x, "sort")
        return Apply(self, [x], [TensorType(x.dtype, x.type.shape)])

    def perform(self, node, inputs):
        return [np.sort(inputs[0], axis=self.axis, kind="stable")]

    def grad(self, node, output_grads):
        (x,) = node.inputs
        if not is_float(x.dtype):
            return [None]
        # output j came from input argsort[j]: input i gets the gradient at its rank
        rank = ArgSort(self.axis)(ArgSort(self.axis)(x))
        return [take_along_axis(output_grads[0], rank, self.axis)]

    def infix(self, node, show):
        return call_text("sort", show(node.inputs[0]), axis=self.axis), ATOM


@dataclass(frozen=True)
class ArgSort(Op):
    """The indices that sort ``x`` along ``axis``, equal elements in their order (NumPy's
    ``argsort(kind="stable")``)."""

    axis: int

    def make_node(self, x):
        _check_axis(self, x, "argsort")
        return Apply(self, [x], [TensorType("int64", x.type.shape)])

    def perform(self, node, inputs):
        return [np.argsort(inputs[0], axis=self.axis, kind="stable").astype(np.int64, copy=False)]

    def grad(self, node, output_grads):
        return [None]  # an index has no gradient

    def infix(self, node, show):
        return call_text("argsort", show(node.inputs[0]), axis=self.axis), ATOM


def sort(x: TensorLike, axis: int | None = -1) -> TensorVariable:
    """``x`` sorted along ``axis`` (the flattened ``x`` when None), NumPy's ``sort``.

    >>> import exprc as ex
    >>> v = ex.vector("v")
    >>> ex.sort(v).eval({v: [3.0, 1.0, 2.0]})
    array([1., 2., 3.])
    """
    x, axis = _axis_of(x, axis, "sort")
    return Sort(axis)(x)


def argsort(x: TensorLike, axis: int | None = -1) -> TensorVariable:
    """The indices that sort ``x`` along ``axis``; stable: equal elements keep their order
    (NumPy's ``argsort(kind="stable")``).

    >>> import exprc as ex
    >>> v = ex.vector("v")
    >>> ex.argsort(v).eval({v: [3.0, 1.0, 1.0]})
    array([1, 2, 0])
    """
    x, axis = _axis_of(x, axis, "argsort")
    return ArgSort(axis)(x)


def topk(x: TensorLike, k: TensorLike, axis: int = -1, largest: bool = True) -> tuple[TensorVariable, TensorVariable]:
    """The ``k`` largest (or smallest) elements along ``axis`` and their indices, in order
    (largest first, or smallest first).

    >>> import exprc as ex
    >>> v = ex.vector("v")
    >>> values, indices = ex.topk(v, 2)
    >>> values.eval({v: [1.0, 5.0, 3.0]}), indices.eval({v: [1.0, 5.0, 3.0]})
    (array([5., 3.]), array([1, 2]))
    """
    x, axis = _axis_of(x, axis, "topk")
    k = as_tensor(k)
    if k.ndim or not is_integer(k.dtype):
        raise TypeError(f"topk: k must be an int, got {k} ({k.type})")
    if isinstance(k, TensorConstant):
        n = x.type.shape[axis]
        if k.value < 0 or (n is not None and k.value > n):
            raise ValueError(f"topk: k = {int(k.value)} is not within the length {n} of axis {axis} of {x}")
    order = argsort(x, axis)
    before = (slice(None),) * axis
    if largest:
        # a k past the length takes the whole axis rather than counting from the end
        start = E.maximum(shape_i(x, axis) - k, 0)
        indices = flip(order[before + (slice(start, None),)], axis)
    else:
        indices = order[before + (slice(None, k),)]
    return take_along_axis(x, indices, axis), indices


def partition(x: TensorLike, kth: int | Sequence[int], axis: int | None = -1) -> TensorVariable:
    """``x`` with the elements at positions ``kth`` where sorting puts them, the smaller
    before and the larger after (NumPy's ``partition``); exprc sorts, one valid answer.

    >>> import exprc as ex
    >>> v = ex.vector("v")
    >>> ex.partition(v, 1).eval({v: [3.0, 1.0, 2.0]})[1]
    np.float64(2.0)
    """
    x, axis = _axis_of(x, axis, "partition")
    _check_kth(x, kth, axis, "partition")
    return sort(x, axis)


def argpartition(x: TensorLike, kth: int | Sequence[int], axis: int | None = -1) -> TensorVariable:
    """Indices that partition ``x`` at ``kth`` (NumPy's ``argpartition``); exprc gives the
    stable sorting order, one valid answer.

    >>> import exprc as ex
    >>> v = ex.vector("v")
    >>> ex.argpartition(v, 0).eval({v: [3.0, 1.0, 2.0]})[0]
    np.int64(1)
    """
    x, axis = _axis_of(x, axis, "argpartition")
    _check_kth(x, kth, axis, "argpartition")
    return argsort(x, axis)


def _check_kth(x, kth, axis, what):
    n = x.type.shape[axis]
    for k in np.atleast_1d(kth):
        if not isinstance(k, (int, np.integer)) or isinstance(k, (bool, np.bool_)):
            raise TypeError(f"{what}: kth must be an int or ints, got {kth!r}")
        if n is not None and not -n <= k < n:
            raise ValueError(f"{what}: kth {int(k)} is out of bounds for axis {axis} of {x}, of length {n}")


@dataclass(frozen=True)
class SearchSorted(Op):
    """Where the values ``v`` go in the sorted 1-d ``a`` to keep it sorted (NumPy's ``searchsorted``)."""

    side: str

    def make_node(self, a, v):
        if a.ndim != 1:
            raise ValueError(f"searchsorted: a must be 1-d, got {a} with {a.ndim} dimensions")
        if self.side not in ("left", "right"):
            raise ValueError(f"searchsorted: side must be 'left' or 'right', got {self.side!r}")
        return Apply(self, [a, v], [TensorType("int64", v.type.shape)])

    def perform(self, node, inputs):
        a, v = inputs
        return [np.asarray(np.searchsorted(a, v, side=self.side), dtype=np.int64)]

    def grad(self, node, output_grads):
        return [None, None]  # an index has no gradient

    def infix(self, node, show):
        a, v = node.inputs
        return call_text("searchsorted", show(a), show(v), side=self.side), ATOM


def searchsorted(a: TensorLike, v: TensorLike, side: str = "left", sorter: TensorLike | None = None) -> TensorVariable:
    """Indices where the elements of ``v`` would go in the sorted 1-d ``a`` (NumPy's
    ``searchsorted``); ``sorter`` holds the indices that sort ``a``, if it is not sorted.

    >>> import exprc as ex
    >>> a = ex.vector("a")
    >>> ex.searchsorted(a, [0.5, 2.0]).eval({a: [0.0, 1.0, 2.0]})
    array([1, 2])
    """
    a, v = as_tensor(a), as_tensor(v)
    if sorter is not None:
        a = take(a, sorter)
    return SearchSorted(side)(a, v)


def unique(x: TensorLike, *args: Any, **kwargs: Any) -> NoReturn:
    """Not available: the length of ``unique``'s result depends on the values of ``x``.

    >>> import exprc as ex
    >>> ex.unique(ex.vector("v"))
    Traceback (most recent call last):
    ...
    NotImplementedError: unique of v: the length of its result depends on the values in the data, ...
    """
    raise NotImplementedError(
        f"unique of {as_tensor(x)}: the length of its result depends on the values in the data, and exprc "
        "needs every shape to follow from the input shapes; sort the data (ex.sort) and compare neighbours, "
        "or call np.unique on the result"
    )


__all__: Sequence[str] = (
    "ArgSort",
    "SearchSorted",
    "Sort",
    "argpartition",
    "argsort",
    "partition",
    "searchsorted",
    "sort",
    "topk",
    "unique",
)
