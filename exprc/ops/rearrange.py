"""Rearranging elements: tile, repeat, pad, roll, flip, moveaxis, swapaxes, split, take,
take_along_axis and put_along_axis, and Theano's specify_shape, specify_broadcastable,
shape_padleft and shape_padright.

All but specify_shape are compositions: views (slices with negative steps, dimshuffles),
broadcast-and-reshape, and integer-array indexing with computed indices, so that they
fuse and differentiate through the ops they are made of.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..dtypes import is_float, is_integer
from ..graph import Apply, Op
from ..printing import ATOM, call_text
from ..shapes import ShapeError, fmt_shape, normalize_axis
from ..tensor import Axis, TensorConstant, TensorLike, TensorType, TensorVariable, as_tensor, constant
from . import elemwise as E
from .construct import arange
from .indexing import inc_subtensor, set_subtensor
from .shape import broadcast_to, concatenate, dimshuffle, full, reshape, shape_i, transpose


def _one_axis(axis, ndim, what):
    if isinstance(axis, (tuple, list)):
        raise TypeError(f"{what}: axis must be an int, got {axis!r}")
    return normalize_axis(axis, ndim, what)[0]


def _count(value, what, name):
    """A non-negative Python int, or a 0-d integer tensor, for a count such as a repeat."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what}: {name} must be integers, got {value!r}")
    if isinstance(value, (int, np.integer)):
        if value < 0:
            raise ValueError(f"{what}: {name} must be non-negative, got {value}")
        return int(value)
    v = as_tensor(value)
    if not is_integer(v.dtype):
        raise TypeError(f"{what}: {name} must be integers, got {v} ({v.type})")
    if isinstance(v, TensorConstant) and v.ndim == 0:
        return _count(int(v.value), what, name)
    return v


def _lengths(x):
    return [d if d is not None else shape_i(x, a) for a, d in enumerate(x.type.shape)]


# --- views ------------------------------------------------------------------------


def flip(x: TensorLike, axis: Axis = None) -> TensorVariable:
    """``x`` with the order of its elements reversed along ``axis`` (all axes when None), a view
    (NumPy's ``flip``).

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> ex.flip(x).eval({x: [1.0, 2.0, 3.0]})
    array([3., 2., 1.])
    """
    x = as_tensor(x)
    axes = normalize_axis(axis, x.ndim, "flip")
    if not axes:
        return x
    return x[tuple(slice(None, None, -1) if a in axes else slice(None) for a in range(x.ndim))]


def moveaxis(x: TensorLike, source: int | Sequence[int], destination: int | Sequence[int]) -> TensorVariable:
    """``x`` with axes ``source`` moved to positions ``destination`` (NumPy's ``moveaxis``).

    >>> import exprc as ex
    >>> ex.moveaxis(ex.tensor("t", shape=(2, 3, 4)), 0, -1).type.shape
    (3, 4, 2)
    """
    x = as_tensor(x)
    src = source if isinstance(source, (tuple, list)) else [source]
    dst = destination if isinstance(destination, (tuple, list)) else [destination]
    if len(src) != len(dst):
        raise ValueError(f"moveaxis: source {source!r} and destination {destination!r} differ in length")
    src = [_one_axis(a, x.ndim, "moveaxis") for a in src]
    dst = [_one_axis(a, x.ndim, "moveaxis") for a in dst]
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise ValueError(f"moveaxis: repeated axis in source {source!r} or destination {destination!r}")
    order = [a for a in range(x.ndim) if a not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(x, order)


def swapaxes(x: TensorLike, axis1: int, axis2: int) -> TensorVariable:
    """``x`` with two axes interchanged (NumPy's ``swapaxes``).

    >>> import exprc as ex
    >>> ex.swapaxes(ex.tensor("t", shape=(2, 3, 4)), 0, 2).type.shape
    (4, 3, 2)
    """
    x = as_tensor(x)
    a1, a2 = _one_axis(axis1, x.ndim, "swapaxes"), _one_axis(axis2, x.ndim, "swapaxes")
    order = list(range(x.ndim))
    order[a1], order[a2] = a2, a1
    return transpose(x, order)


def shape_padleft(x: TensorLike, n_ones: int = 1) -> TensorVariable:
    """``x`` with ``n_ones`` axes of length 1 added in front (Theano's ``shape_padleft``).

    >>> import exprc as ex
    >>> ex.shape_padleft(ex.vector("v"), 2).type.shape
    (1, 1, None)
    """
    x = as_tensor(x)
    return dimshuffle(x, ("x",) * _count(n_ones, "shape_padleft", "n_ones") + tuple(range(x.ndim)))


def shape_padright(x: TensorLike, n_ones: int = 1) -> TensorVariable:
    """``x`` with ``n_ones`` axes of length 1 added at the end (Theano's ``shape_padright``).

    >>> import exprc as ex
    >>> ex.shape_padright(ex.vector("v")).type.shape
    (None, 1)
    """
    x = as_tensor(x)
    return dimshuffle(x, tuple(range(x.ndim)) + ("x",) * _count(n_ones, "shape_padright", "n_ones"))


def split(x: TensorLike, indices_or_sections: int | Sequence[int], axis: int = 0) -> list[TensorVariable]:
    """``x`` cut along ``axis`` into ``sections`` equal parts, or at the given indices, as a
    list of views (NumPy's ``split``). An axis whose length is unknown until run time is cut
    at ``i * length // sections``.

    >>> import exprc as ex
    >>> [p.type.shape for p in ex.split(ex.tensor("t", shape=(6, 2)), 3)]
    [(2, 2), (2, 2), (2, 2)]
    """
    x = as_tensor(x)
    axis = _one_axis(axis, x.ndim, "split")
    before = (slice(None),) * axis
    if isinstance(indices_or_sections, (int, np.integer)) and not isinstance(indices_or_sections, bool):
        sections = int(indices_or_sections)
        if sections <= 0:
            raise ValueError(f"split: the number of sections must be positive, got {sections}")
        n = x.type.shape[axis]
        if n is not None and n % sections:
            raise ValueError(f"split: axis {axis} of {x} has length {n}, which {sections} sections do not divide")
        length = n if n is not None else shape_i(x, axis)
        bounds = [i * length // sections for i in range(sections + 1)]
        return [x[before + (slice(a, b),)] for a, b in zip(bounds[:-1], bounds[1:])]
    points = list(indices_or_sections)
    if not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in points):
        raise TypeError(f"split: expected an int or a list of ints, got {indices_or_sections!r}")
    bounds = [None, *points, None]
    return [x[before + (slice(a, b),)] for a, b in zip(bounds[:-1], bounds[1:])]


# --- broadcast and reshape ------------------------------------------------------------


def tile(x: TensorLike, reps: int | Sequence[int]) -> TensorVariable:
    """``x`` repeated ``reps`` times along each axis (NumPy's ``tile``).

    >>> import exprc as ex
    >>> v = ex.vector("v")
    >>> ex.tile(v, (2, 2)).eval({v: [1.0, 2.0]})
    array([[1., 2., 1., 2.],
           [1., 2., 1., 2.]])
    """
    x = as_tensor(x)
    reps = tuple(reps) if isinstance(reps, (tuple, list)) else (reps,)
    reps = tuple(_count(r, "tile", "reps") for r in reps)
    ndim = max(x.ndim, len(reps))
    x = dimshuffle(x, ("x",) * (ndim - x.ndim) + tuple(range(x.ndim))) if ndim > x.ndim else x
    reps = (1,) * (ndim - len(reps)) + reps
    if all(isinstance(r, int) and r == 1 for r in reps):
        return x
    # each axis n becomes (reps, n), broadcast, then merged: the copies come one after another
    pattern, target, merged = [], [], []
    for a, (r, n) in enumerate(zip(reps, _lengths(x))):
        pattern += ["x", a]
        target += [r, n]
        merged.append(r * n)
    return reshape(broadcast_to(dimshuffle(x, pattern), target), merged)


def repeat(x: TensorLike, repeats: TensorLike | Sequence[int], axis: int | None = None) -> TensorVariable:
    """Each element of ``x`` repeated ``repeats`` times along ``axis`` (of the flattened ``x``
    when None), NumPy's ``repeat``. ``repeats`` is an int, an integer scalar, or a list of
    ints, one per element along an axis whose length is static.

    >>> import exprc as ex
    >>> v = ex.vector("v")
    >>> ex.repeat(v, 2).eval({v: [1.0, 2.0]})
    array([1., 1., 2., 2.])
    """
    x = as_tensor(x)
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    axis = _one_axis(axis, x.ndim, "repeat")
    if isinstance(repeats, (list, tuple, np.ndarray)) or (isinstance(repeats, TensorConstant) and repeats.ndim):
        counts = np.asarray(repeats.value if isinstance(repeats, TensorConstant) else repeats)
        if counts.dtype.kind not in "iu" and not (counts.size == 0 and counts.dtype.kind == "f"):
            raise TypeError(f"repeat: repeats must be integers, got {repeats!r}")
        if counts.ndim > 1:
            raise ValueError(f"repeat: repeats must be an int or a 1-d list of ints, got shape {counts.shape}")
        if (counts < 0).any():
            raise ValueError(f"repeat: repeats must be non-negative, got {counts.tolist()}")
        if counts.size != 1:
            n = x.type.shape[axis]
            if n is None:
                raise ShapeError(f"repeat: one count per element needs axis {axis} of {x} to have a static length")
            if n != counts.size:
                raise ValueError(f"repeat: {counts.size} repeats for axis {axis} of {x}, which has length {n}")
            index = np.repeat(np.arange(n, dtype=np.int64), counts.astype(np.int64))
            return take(x, constant(index), axis=axis)
        repeats = int(counts.reshape(()))
    r = _count(repeats, "repeat", "repeats")
    if isinstance(r, TensorVariable) and r.ndim:
        raise ShapeError(f"repeat: symbolic per-element repeats {r} give a shape that depends on the data")
    lengths = _lengths(x)
    pattern = list(range(axis + 1)) + ["x"] + list(range(axis + 1, x.ndim))
    target = lengths[: axis + 1] + [r] + lengths[axis + 1 :]
    merged = lengths[:axis] + [lengths[axis] * r] + lengths[axis + 1 :]
    return reshape(broadcast_to(dimshuffle(x, pattern), target), merged)


# --- gathers -----------------------------------------------------------------------


def take(a: TensorLike, indices: TensorLike, axis: int | None = None) -> TensorVariable:
    """Elements of ``a`` at ``indices`` along ``axis`` (of the flattened ``a`` when None),
    NumPy's ``take``; negative indices count from the end.

    >>> import exprc as ex
    >>> v = ex.vector("v")
    >>> ex.take(v, [2, 0]).eval({v: [1.0, 2.0, 3.0]})
    array([3., 1.])
    """
    a = as_tensor(a)
    if axis is None:
        a, axis = reshape(a, (-1,)), 0
    axis = _one_axis(axis, a.ndim, "take")
    indices = as_tensor(indices)
    if not is_integer(indices.dtype):
        raise IndexError(f"take: indices must be integers, got {indices} ({indices.type})")
    return a[(slice(None),) * axis + (indices,)]


def _along_axis(arr, indices, axis, what):
    """The index tuple that reads ``arr`` at ``indices`` along ``axis`` and in place elsewhere."""
    indices = as_tensor(indices)
    if not is_integer(indices.dtype):
        raise IndexError(f"{what}: indices must be integers, got {indices} ({indices.type})")
    if indices.ndim != arr.ndim:
        raise ValueError(f"{what}: indices {indices} have {indices.ndim} dimensions; {arr} has {arr.ndim}")
    index = []
    for a in range(arr.ndim):
        if a == axis:
            index.append(indices)
        else:
            index.append(dimshuffle(arange(shape_i(arr, a)), tuple(0 if b == a else "x" for b in range(arr.ndim))))
    return tuple(index)


def take_along_axis(arr: TensorLike, indices: TensorLike, axis: int | None) -> TensorVariable:
    """``arr`` read at ``indices`` along ``axis``, matching the other axes (NumPy's
    ``take_along_axis``), as ``sort`` gives ``argsort``'s order.

    >>> import exprc as ex
    >>> m = ex.matrix("m")
    >>> ex.take_along_axis(m, ex.argsort(m, axis=1), axis=1).eval({m: [[3.0, 1.0, 2.0]]})
    array([[1., 2., 3.]])
    """
    arr = as_tensor(arr)
    if axis is None:
        arr, axis = reshape(arr, (-1,)), 0
    axis = _one_axis(axis, arr.ndim, "take_along_axis")
    return arr[_along_axis(arr, indices, axis, "take_along_axis")]


def put_along_axis(
    arr: TensorLike, indices: TensorLike, values: TensorLike, axis: int | None, inc: bool = False
) -> TensorVariable:
    """A copy of ``arr`` with ``values`` written at ``indices`` along ``axis`` (NumPy's
    ``put_along_axis``, as a new tensor through ``set_subtensor``); ``inc=True`` adds them
    instead, accumulating at repeated indices.

    >>> import exprc as ex
    >>> m = ex.matrix("m")
    >>> ex.put_along_axis(m, [[1]], 9.0, axis=1).eval({m: [[1.0, 2.0, 3.0]]})
    array([[1., 9., 3.]])
    """
    arr = as_tensor(arr)
    shape = None
    if axis is None:
        shape, arr, axis = arr.shape, reshape(arr, (-1,)), 0
    axis = _one_axis(axis, arr.ndim, "put_along_axis")
    read = arr[_along_axis(arr, indices, axis, "put_along_axis")]
    out = inc_subtensor(read, values) if inc else set_subtensor(read, values)
    return out if shape is None else reshape(out, shape)


def roll(x: TensorLike, shift: TensorLike | Sequence[int], axis: Axis = None) -> TensorVariable:
    """``x`` with its elements shifted by ``shift`` along ``axis``, wrapping around (NumPy's
    ``roll``; the flattened ``x`` when ``axis`` is None).

    >>> import exprc as ex
    >>> v = ex.vector("v")
    >>> ex.roll(v, 1).eval({v: [1.0, 2.0, 3.0]})
    array([3., 1., 2.])
    """
    x = as_tensor(x)
    if axis is None:
        return reshape(roll(reshape(x, (-1,)), shift, 0), x.shape)
    shifts = list(shift) if isinstance(shift, (tuple, list)) else [shift]
    axes = list(axis) if isinstance(axis, (tuple, list)) else [axis]
    if len(shifts) == 1:
        shifts *= len(axes)
    if len(axes) == 1:
        axes *= len(shifts)
    if len(shifts) != len(axes):
        raise ValueError(f"roll: shift {shift!r} and axis {axis!r} differ in length")
    total: dict[int, Any] = {}
    for s, a in zip(shifts, axes):
        s = as_tensor(s)
        if s.ndim or not is_integer(s.dtype):
            raise TypeError(f"roll: shift must be an int or an integer scalar, got {s} ({s.type})")
        a = _one_axis(a, x.ndim, "roll")
        total[a] = total[a] + s if a in total else s
    for a, s in total.items():
        # NumPy's way: two slices joined; max(n, 1) keeps an empty axis from a modulo by zero
        n = shape_i(x, a)
        cut = n - E.mod(s, E.maximum(n, 1))
        before = (slice(None),) * a
        x = concatenate([x[before + (slice(cut, None),)], x[before + (slice(None, cut),)]], axis=a)
    return x


# --- padding ----------------------------------------------------------------------

_PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap")


def _pad_widths(pad_width, ndim):
    try:
        widths = np.broadcast_to(np.asarray(pad_width), (ndim, 2))
    except ValueError:
        raise ValueError(f"pad: pad_width {pad_width!r} does not fit a tensor of {ndim} dimensions") from None
    if widths.dtype.kind not in "iu":
        raise TypeError(f"pad: pad_width must hold integers, got {pad_width!r}")
    if (widths < 0).any():
        raise ValueError(f"pad: pad widths must be non-negative, got {pad_width!r}")
    return [(int(b), int(a)) for b, a in widths]


def _pad_index(i, n, mode):
    """The indices of ``x`` that padding an axis of length ``n`` reads at positions ``i``
    (negative before the axis, ``n`` and up after it)."""
    if mode == "edge":
        return E.clip(i, 0, n - 1)
    if mode == "wrap":
        return E.mod(i, n)
    if mode == "symmetric":
        m = E.mod(i, 2 * n)
        return E.where(m >= n, 2 * n - 1 - m, m)
    period = E.maximum(2 * (n - 1), 1)  # a single element reflects onto itself
    m = E.mod(i, period)
    return E.where(m >= n, period - m, m)


def pad(x: TensorLike, pad_width: Any, mode: str = "constant", constant_values: TensorLike = 0) -> TensorVariable:
    """``x`` padded with ``pad_width`` elements before and after each axis (NumPy's ``pad``):
    ``mode`` is ``"constant"`` (``constant_values``, a scalar), ``"edge"``, ``"reflect"``,
    ``"symmetric"`` or ``"wrap"``; ``pad_width`` is an int, a pair or a pair per axis.

    >>> import exprc as ex
    >>> v = ex.vector("v")
    >>> ex.pad(v, (1, 2), mode="reflect").eval({v: [1.0, 2.0, 3.0]})
    array([2., 1., 2., 3., 2., 1.])
    """
    x = as_tensor(x)
    if mode not in _PAD_MODES:
        raise ValueError(f"pad: mode {mode!r} is not one of {', '.join(_PAD_MODES)}")
    widths = _pad_widths(pad_width, x.ndim)
    if mode == "constant":
        value = as_tensor(constant_values)
        if value.ndim:
            raise TypeError(f"pad: constant_values must be a scalar, got {value} ({value.type})")
        value = constant(value.value, dtype=x.dtype) if isinstance(value, TensorConstant) else value.astype(x.dtype)
        for a, (before, after) in enumerate(widths):
            if before or after:
                lengths = _lengths(x)
                parts = [full(lengths[:a] + [w] + lengths[a + 1 :], value) for w in (before, after)]
                x = concatenate([p for p, w in zip([parts[0], x, parts[1]], (before, 1, after)) if w], axis=a)
        return x
    for a, (before, after) in enumerate(widths):
        if not (before or after):
            continue
        if x.type.shape[a] == 0:
            raise ValueError(f"pad: cannot pad the empty axis {a} of {x} in mode {mode!r}")
        # only the borders are gathered; the middle is x itself
        n = shape_i(x, a)
        parts = [take(x, _pad_index(arange(-before, 0), n, mode), axis=a)] if before else []
        parts.append(x)
        if after:
            parts.append(take(x, _pad_index(arange(n, n + after), n, mode), axis=a))
        x = concatenate(parts, axis=a)
    return x


# --- shape assertions --------------------------------------------------------------


@dataclass(frozen=True)
class SpecifyShape(Op):
    """``x`` unchanged, with the lengths given as inputs (``-1`` for any) checked when it runs
    and made static where they are constants (Theano's ``specify_shape``)."""

    def make_node(self, x, *lengths):
        if len(lengths) != x.ndim:
            raise ValueError(f"specify_shape: {len(lengths)} lengths for {x}, which has {x.ndim} dimensions")
        shape = []
        for a, (have, want) in enumerate(zip(x.type.shape, lengths)):
            want = int(want.value) if isinstance(want, TensorConstant) else None
            if want is not None and want >= 0 and have is not None and have != want:
                raise ShapeError(f"specify_shape: axis {a} of {x} has length {have}, not {want}")
            shape.append(want if want is not None and want >= 0 else have)
        return Apply(self, [x, *lengths], [TensorType(x.dtype, shape)])

    def perform(self, node, inputs):
        x, *lengths = inputs
        want = tuple(int(n) for n in lengths)
        if any(w >= 0 and w != n for w, n in zip(want, x.shape)):
            expected = fmt_shape(tuple(w if w >= 0 else None for w in want))
            raise ShapeError(f"specify_shape: {node.inputs[0]} has shape {x.shape}, expected {expected}")
        return [x]

    def grad(self, node, output_grads):
        x, *lengths = node.inputs
        return [output_grads[0] if is_float(x.dtype) else None] + [None] * len(lengths)

    def infix(self, node, show):
        x, *lengths = node.inputs
        return call_text("specify_shape", show(x), f"({', '.join(show(n) for n in lengths)})"), ATOM


def specify_shape(x: TensorLike, shape: Sequence[TensorLike | None]) -> TensorVariable:
    """``x``, stating its shape (None for a length left free): lengths become static, and a
    call whose ``x`` has another shape raises ``ShapeError`` (Theano's ``specify_shape``).

    >>> import exprc as ex
    >>> ex.specify_shape(ex.matrix("m"), (None, 3)).type.shape
    (None, 3)
    """
    x = as_tensor(x)
    shape = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
    lengths = []
    for n in shape:
        n = constant(-1) if n is None else as_tensor(n)
        if n.ndim or not is_integer(n.dtype):
            raise TypeError(f"specify_shape: each length must be an int or None, got {n} ({n.type})")
        lengths.append(n if n.dtype == "int64" else n.astype("int64"))
    return SpecifyShape()(x, *lengths)


def specify_broadcastable(x: TensorLike, *axes: int) -> TensorVariable:
    """``x``, stating that ``axes`` have length 1 (Theano's ``specify_broadcastable`` and
    ``patternbroadcast``), so that they broadcast.

    >>> import exprc as ex
    >>> ex.specify_broadcastable(ex.matrix("m"), 0).type.shape
    (1, None)
    """
    x = as_tensor(x)
    chosen = normalize_axis(tuple(axes), x.ndim, "specify_broadcastable") if axes else ()
    return specify_shape(x, [1 if a in chosen else None for a in range(x.ndim)])


__all__: Sequence[str] = (
    "SpecifyShape",
    "flip",
    "moveaxis",
    "pad",
    "put_along_axis",
    "repeat",
    "roll",
    "shape_padleft",
    "shape_padright",
    "specify_broadcastable",
    "specify_shape",
    "split",
    "swapaxes",
    "take",
    "take_along_axis",
    "tile",
)
