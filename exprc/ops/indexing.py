"""Indexing: basic slicing (views), integer-array indexing (gathers), and writing
through an index with ``set_subtensor`` / ``inc_subtensor``.

An index is stored in the op as a *pattern*, one entry per indexed axis:

- ``("int", i)``: take position ``i`` and drop the axis (basic indexing only);
- ``("slice", start, stop, step)``: keep a slice of the axis;
- ``("array",)``: an integer index array (advanced indexing only).

Each ``i``, ``start``, ``stop`` and ``step`` is an int, None (absent, in a
slice), or :data:`DYNAMIC`, meaning "the next extra input of the node"; so
``x[i:i + 2]`` with a symbolic ``i`` is one node with inputs ``(x, i, i + 2)``.
Index arrays are always extra inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..dtypes import is_float, is_integer
from ..graph import Apply, Op, Variable
from ..printing import ATOM, lazy
from ..shapes import ShapeError, broadcast_shapes, fmt_shape
from ..tensor import TensorConstant, TensorLike, TensorType, TensorVariable, as_tensor, constant
from .shape import dimshuffle, sum_to, zeros_like

DYNAMIC = "$"


# --- reading an index --------------------------------------------------------


def _is_array_index(entry):
    if isinstance(entry, Variable):
        return entry.ndim > 0
    return isinstance(entry, (list, np.ndarray)) and np.ndim(entry) > 0


def _scalar_part(value, x, what, dynamic):
    """A slice bound or integer index: a Python int, None, or DYNAMIC (appending the variable)."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        raise IndexError(f"index of {x}: {what} {value!r} is a bool; expected an integer")
    if isinstance(value, (int, np.integer)):
        return int(value)
    var = as_tensor(value)
    if var.ndim != 0 or not is_integer(var.dtype):
        raise IndexError(f"index of {x}: {what} must be an integer scalar, got {var} ({var.type})")
    if isinstance(var, TensorConstant):
        return int(var.value)
    dynamic.append(var if var.dtype == "int64" else var.astype("int64"))
    return DYNAMIC


def _expand_ellipsis(x, index):
    consumed = sum(1 for e in index if e is not None and e is not Ellipsis)
    if sum(e is Ellipsis for e in index) > 1:
        raise IndexError(f"index of {x}: an index can only have a single ellipsis ('...')")
    if consumed > x.ndim:
        raise IndexError(f"too many indices for {x}: it has {x.ndim} dimensions but {consumed} were indexed")
    fill = (slice(None),) * (x.ndim - consumed)
    at = next((i for i, e in enumerate(index) if e is Ellipsis), None)
    return index + fill if at is None else index[:at] + fill + index[at + 1 :]


def _slice_length(length, start, stop, step):
    if step == 0:
        raise ValueError("slice step cannot be zero")
    if length is None or DYNAMIC in (start, stop, step):
        return None
    return len(range(*slice(start, stop, step).indices(length)))


def _check_int(x, axis, i):
    length = x.type.shape[axis]
    if i != DYNAMIC and length is not None and not -length <= i < length:
        raise IndexError(f"index {i} is out of bounds for axis {axis} of {x}, which has length {length}")


def _pattern_shape(x, pattern, arrays):
    """The static shape of ``x[pattern]``, the index arrays having static ``arrays`` shapes."""
    array_axes = [a for a, e in enumerate(pattern) if e[0] == "array"]
    sliced = []  # (axis, length) of each axis kept by a slice
    for axis, entry in enumerate(pattern):
        if entry[0] == "slice":
            sliced.append((axis, _slice_length(x.type.shape[axis], *entry[1:])))
    rest = list(x.type.shape[len(pattern) :])
    if not array_axes:
        return tuple(length for _, length in sliced) + tuple(rest)
    indexed = broadcast_shapes(arrays, [f"index array {i}" for i in range(len(arrays))], what=lazy("index of {}", x))
    adjacent = array_axes == list(range(array_axes[0], array_axes[-1] + 1))
    if adjacent:  # NumPy puts the indexed axes where the arrays were
        before = [n for a, n in sliced if a < array_axes[0]]
        after = [n for a, n in sliced if a > array_axes[0]]
        return tuple(before) + indexed + tuple(after) + tuple(rest)
    return indexed + tuple(n for _, n in sliced) + tuple(rest)


def _build_index(pattern, dynamic):
    """The NumPy index tuple for ``pattern`` with the run-time values of its extra inputs."""
    values = iter(dynamic)
    take = lambda v: int(next(values)) if v == DYNAMIC else v  # noqa: E731
    index = []
    for entry in pattern:
        if entry[0] == "int":
            index.append(take(entry[1]))
        elif entry[0] == "slice":
            index.append(slice(*(take(v) for v in entry[1:])))
        else:
            index.append(next(values))
    return tuple(index)


def _index_text(pattern, extra, show):
    """``pattern`` as Python index syntax, e.g. ``1:, ::-2`` or ``idx, 0:3``."""
    values = iter(extra)
    part = lambda v: "" if v is None else show(next(values)) if v == DYNAMIC else str(v)  # noqa: E731
    texts = []
    for entry in pattern:
        if entry[0] == "int":
            texts.append(part(entry[1]))
        elif entry[0] == "slice":
            start, stop, step = (part(v) for v in entry[1:])
            texts.append(f"{start}:{stop}" + (f":{step}" if step else ""))
        else:
            texts.append(show(next(values)))
    return ", ".join(texts)


def _indexed_infix(node, show):
    x, *extra = node.inputs
    return f"{show(x, ATOM)}[{_index_text(node.op.pattern, extra, show)}]", ATOM


def _write_infix(node, show):
    x, y, *extra = node.inputs
    what = "set_subtensor" if node.op.set_instead_of_inc else "inc_subtensor"
    return f"{what}({show(x, ATOM)}[{_index_text(node.op.pattern, extra, show)}], {show(y)})", ATOM


# --- the ops ----------------------------------------------------------------


@dataclass(frozen=True)
class Subtensor(Op):
    """Basic indexing with ints and slices: a view of the input."""

    infix = staticmethod(_indexed_infix)

    pattern: tuple

    def make_node(self, x, *dynamic):
        shape = _pattern_shape(x, self.pattern, [])
        return Apply(self, [x, *dynamic], [TensorType(x.dtype, shape)])

    def perform(self, node, inputs):
        x, *dynamic = inputs
        return [x[_build_index(self.pattern, dynamic)]]

    def grad(self, node, output_grads):
        """The gradient written into zeros at the indexed places."""
        x, *dynamic = node.inputs
        return [_scatter(IncSubtensor, self.pattern, x, output_grads[0], dynamic)] + [None] * len(dynamic)


@dataclass(frozen=True)
class AdvancedSubtensor(Op):
    """Integer-array indexing (a gather), possibly mixed with static slices, as in NumPy."""

    infix = staticmethod(_indexed_infix)

    pattern: tuple

    def make_node(self, x, *arrays):
        shape = _pattern_shape(x, self.pattern, [a.type.shape for a in arrays])
        return Apply(self, [x, *arrays], [TensorType(x.dtype, shape)])

    def perform(self, node, inputs):
        x, *arrays = inputs
        return [x[_build_index(self.pattern, arrays)]]

    def grad(self, node, output_grads):
        """The gradient added into zeros at the indexed places; repeated indices accumulate."""
        x, *arrays = node.inputs
        return [_scatter(AdvancedIncSubtensor, self.pattern, x, output_grads[0], arrays)] + [None] * len(arrays)


_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2}


def _check_update(x, pattern, y, index_shapes, what):
    target = _pattern_shape(x, pattern, index_shapes)
    if y.ndim > len(target):
        raise ShapeError(f"{what}: the value {y} has {y.ndim} dimensions, more than the {len(target)} of {x}[...]")
    try:
        broadcast_shapes([target, y.type.shape], [lazy("{}[...]", x), y], what=what)
    except ShapeError:
        raise ShapeError(
            f"{what}: the value {y} of shape {fmt_shape(y.type.shape)} does not broadcast "
            f"to the indexed shape {fmt_shape(target)}"
        ) from None
    if y.type.weak:  # a Python scalar fits any dtype of its kind or a higher one
        fits = _KIND_RANK[np.dtype(y.dtype).kind] <= _KIND_RANK[np.dtype(x.dtype).kind]
    else:
        fits = np.can_cast(y.dtype, x.dtype, "same_kind")
    if not fits:
        raise TypeError(f"{what}: cannot write {y} ({y.dtype}) into {x} ({x.dtype}) without a lossy cast")


@dataclass(frozen=True)
class _Write(Op):
    """A copy of ``x`` with ``x[index]`` set to, or incremented by, ``y``; the two
    subclasses differ in the index they take and in how increments accumulate."""

    infix = staticmethod(_write_infix)

    pattern: tuple
    set_instead_of_inc: bool

    reads: ClassVar[type[Op] | None] = None  # the op reading x[index]: the gradient of y goes through it

    def make_node(self, x, y, *extra):
        what = "set_subtensor" if self.set_instead_of_inc else "inc_subtensor"
        _check_update(x, self.pattern, y, self.index_shapes(extra), what)
        return Apply(self, [x, y, *extra], [x.type])

    def perform(self, node, inputs):
        x, y, *extra = inputs
        out = x.copy()
        index = _build_index(self.pattern, extra)
        if self.set_instead_of_inc:
            out[index] = y
        else:
            self.increment(out, index, y)
        return [out]

    def grad(self, node, output_grads):
        return _write_grad(self, type(self).reads, node, output_grads)


@dataclass(frozen=True)
class IncSubtensor(_Write):
    """``set_subtensor`` / ``inc_subtensor`` through a basic index (ints and slices)."""

    reads = Subtensor

    @staticmethod
    def index_shapes(extra):
        return []

    @staticmethod
    def increment(out, index, y):
        out[index] += y


@dataclass(frozen=True)
class AdvancedIncSubtensor(_Write):
    """``set_subtensor`` / ``inc_subtensor`` through an integer-array index.

    Incrementing accumulates at repeated indices (NumPy's ``np.add.at``);
    setting keeps the last value written, as NumPy's assignment does.
    """

    reads = AdvancedSubtensor

    @staticmethod
    def index_shapes(arrays):
        return [a.type.shape for a in arrays]

    @staticmethod
    def increment(out, index, y):
        np.add.at(out, index, y)


def _scatter(op_class, pattern, x, gz, extra):
    """Zeros shaped like ``x`` with ``gz`` added at ``x[pattern]``; None for a non-float ``x``."""
    if not is_float(x.dtype):
        return None
    return op_class(pattern, False)(zeros_like(x, dtype=gz.dtype), gz, *extra)


def _write_grad(op, read_class, node, output_grads):
    """The gradient of ``set_subtensor`` / ``inc_subtensor``: ``x`` gets ``gz`` (zeroed at
    the written places when setting); ``y`` gets ``gz`` read at those places, summed over
    the axes along which ``y`` was broadcast. With repeated integer indices, setting gives
    every copy of a place the gradient of that place."""
    x, y, *extra = node.inputs
    (gz,) = output_grads
    gx = gy = None
    if is_float(x.dtype):
        gx = type(op)(op.pattern, True)(gz, constant(0, dtype=gz.dtype), *extra) if op.set_instead_of_inc else gz
    if is_float(y.dtype):
        gy = sum_to(read_class(op.pattern)(gz, *extra), y)
    return [gx, gy] + [None] * len(extra)


# --- the public functions ----------------------------------------------------


def _array_index(x, axis, entry):
    if isinstance(entry, list) and np.size(entry) == 0:
        entry = np.asarray(entry, dtype=np.int64)  # NumPy reads [] as an empty integer index
    var = as_tensor(entry)
    if var.dtype == "bool":
        raise IndexError(
            f"index of {x}: boolean mask indexing is not supported, because its result's shape "
            "depends on the data; use ex.where(mask, x, fill) or integer indices"
        )
    if not is_integer(var.dtype):
        raise IndexError(f"index of {x}: index arrays must be integers, got {var} ({var.dtype})")
    if isinstance(var, TensorConstant) and var.value.size and x.type.shape[axis] is not None:
        length = x.type.shape[axis]
        bad = var.value[(var.value < -length) | (var.value >= length)]
        if bad.size:
            raise IndexError(f"index {bad.flat[0]} is out of bounds for axis {axis} of {x}, which has length {length}")
    return var


def getitem(x: TensorLike, index: Any) -> TensorVariable:
    """``x[index]`` with NumPy's semantics: ints, slices (steps, negatives), ``None``,
    ``...`` and integer arrays. Used by ``TensorVariable.__getitem__``.

    >>> import exprc as ex
    >>> x = ex.tensor("x", shape=(5, 4))
    >>> x[1:, ::-2].type.shape
    (4, 2)
    >>> x[[0, 2, 2]].type.shape
    (3, 4)
    """
    x = as_tensor(x)
    index = index if isinstance(index, tuple) else (index,)
    if any(_is_array_index(e) for e in index):
        return _advanced(x, index)
    index = _expand_ellipsis(x, index)
    entries: list[tuple] = []
    dynamic: list[Variable] = []
    order: list[int | str] = []
    axis, out_axis = 0, 0
    for entry in index:
        if entry is None:
            order.append("x")
        elif isinstance(entry, slice):
            parts = [_scalar_part(p, x, "slice bound", dynamic) for p in (entry.start, entry.stop, entry.step)]
            if parts[2] == 0:
                raise ValueError(f"index of {x}: slice step cannot be zero")
            entries.append(("slice", *parts))
            order.append(out_axis)
            axis, out_axis = axis + 1, out_axis + 1
        else:
            i = _scalar_part(entry, x, "index", dynamic)
            _check_int(x, axis, i)
            entries.append(("int", i))
            axis += 1
    pattern = tuple(entries)
    if "x" in order and all(e == ("slice", None, None, None) for e in pattern):
        result = x
    else:
        # x[:] and x[...] are nodes too: set_subtensor(x[:], y) writes into x, which may
        # itself be x = a[1:], and must not write into a.
        result = Subtensor(pattern)(x, *dynamic)
    return dimshuffle(result, order + list(range(out_axis, result.ndim))) if "x" in order else result


def _advanced(x, index):
    index = _expand_ellipsis(x, index)
    pattern, arrays = [], []
    for axis, entry in enumerate(index):
        if entry is None:
            raise IndexError(f"index of {x}: np.newaxis cannot be mixed with index arrays; add the axis afterwards")
        if isinstance(entry, slice):
            parts = [_scalar_part(p, x, "slice bound", []) for p in (entry.start, entry.stop, entry.step)]
            if DYNAMIC in parts or any(isinstance(p, Variable) for p in (entry.start, entry.stop, entry.step)):
                raise IndexError(f"index of {x}: slices mixed with index arrays must have constant bounds")
            if parts[2] == 0:
                raise ValueError(f"index of {x}: slice step cannot be zero")
            pattern.append(("slice", *parts))
        else:
            pattern.append(("array",))
            arrays.append(_array_index(x, axis, entry))
    return AdvancedSubtensor(tuple(pattern))(x, *arrays)


def _write(sub, y, set_instead_of_inc):
    what = "set_subtensor" if set_instead_of_inc else "inc_subtensor"
    sub = as_tensor(sub)
    node = sub.owner
    if node is None or not isinstance(node.op, (Subtensor, AdvancedSubtensor)):
        raise TypeError(f"{what} expects an indexed tensor such as x[1:3] or x[idx], got {sub}")
    x, *extra = node.inputs
    op = IncSubtensor if isinstance(node.op, Subtensor) else AdvancedIncSubtensor
    return op(node.op.pattern, set_instead_of_inc)(x, as_tensor(y), *extra)


def set_subtensor(sub: TensorVariable, y: TensorLike) -> TensorVariable:
    """A copy of ``x`` with ``x[index]`` replaced by ``y``, where ``sub`` is ``x[index]``.

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> ex.set_subtensor(x[1:], 0.0).eval({x: [1.0, 2.0, 3.0]})
    array([1., 0., 0.])
    """
    return _write(sub, y, True)


def inc_subtensor(sub: TensorVariable, y: TensorLike) -> TensorVariable:
    """A copy of ``x`` with ``y`` added to ``x[index]``, where ``sub`` is ``x[index]``.
    Repeated integer indices accumulate (a scatter-add).

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> ex.inc_subtensor(x[[0, 0]], 1.0).eval({x: [1.0, 2.0]})
    array([3., 2.])
    """
    return _write(sub, y, False)
