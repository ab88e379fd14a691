"""Shape ops: lengths, axis shuffles, reshape, broadcast_to, concatenate, and the
constructors built on them (zeros, ones, full, ..._like, stack).

Views (DimShuffle, Reshape of contiguous data, BroadcastTo) copy nothing in
the NumPy reference, as in NumPy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np

from ..config import config
from ..dtypes import as_dtype, is_float, is_integer, probe_dtype
from ..graph import Apply, Op
from ..printing import ATOM, call_text, lazy
from ..shapes import ShapeError, fmt_shape, normalize_axis
from ..tensor import Axis, DType, TensorConstant, TensorLike, TensorType, TensorVariable, as_tensor, constant

#: A target shape: an int, a tuple of ints or int scalars, or a vector of lengths.
ShapeLike: TypeAlias = TensorLike | Sequence[TensorLike]
_LENGTH = TensorType("int64", (), weak=True)


@dataclass(frozen=True)
class ShapeI(Op):
    """The length of axis ``axis`` of its input, a weak int64 scalar (a Python int in NumPy)."""

    axis: int

    def make_node(self, x):
        if not 0 <= self.axis < x.ndim:
            raise np.exceptions.AxisError(f"shape_i: axis {self.axis} of {x}, which has {x.ndim} dimensions")
        return Apply(self, [x], [_LENGTH])

    def perform(self, node, inputs):
        return [np.asarray(inputs[0].shape[self.axis], dtype=np.int64)]

    def infix(self, node, show):
        return f"{show(node.inputs[0], ATOM)}.shape[{self.axis}]", ATOM

    def grad(self, node, output_grads):
        return [None]  # a length has no gradient


def shape_i(x: TensorLike, axis: int) -> TensorVariable:
    """The length of ``axis`` of ``x``: a constant when it is static, else computed at run time.

    >>> import exprc as ex
    >>> ex.shape_i(ex.tensor("t", shape=(None, 3)), 1).value
    array(3)
    """
    x = as_tensor(x)
    axis = normalize_axis(axis, x.ndim, lazy("shape of {}", x))[0]
    if x.type.shape[axis] is not None:
        return constant(int(x.type.shape[axis]))
    return ShapeI(axis)(x)


def size(x: TensorLike) -> TensorVariable:
    """The number of elements of ``x`` as a weak int64 scalar.

    >>> import exprc as ex
    >>> ex.size(ex.tensor("t", shape=(2, 3))).value
    array(6)
    """
    x = as_tensor(x)
    if None not in x.type.shape:
        return constant(int(np.prod(x.type.shape, dtype=np.int64)))
    result: TensorVariable = constant(1)
    for length in x.shape:
        result = result * length
    return result


@dataclass(frozen=True)
class DimShuffle(Op):
    """Reorder axes, drop length-1 axes and insert new ones, as a view.

    ``new_order`` lists, for each output axis, the input axis it shows or
    ``'x'`` for a new axis of length 1. Input axes not listed are dropped and
    must have length 1.
    """

    new_order: tuple

    def make_node(self, x):
        kept = [a for a in self.new_order if a != "x"]
        if sorted(set(kept)) != sorted(kept) or any(not 0 <= a < x.ndim for a in kept):
            raise ValueError(f"dimshuffle{self.new_order} is not valid for {x}, which has {x.ndim} dimensions")
        for a in range(x.ndim):
            if a not in kept and x.type.shape[a] not in (1, None):
                raise ShapeError(f"cannot drop axis {a} of {x} (shape {fmt_shape(x.type.shape)}): its length is not 1")
        shape = tuple(1 if a == "x" else x.type.shape[a] for a in self.new_order)
        return Apply(self, [x], [TensorType(x.dtype, shape)])

    def perform(self, node, inputs):
        x = np.asarray(inputs[0])  # a weak input (x.shape[0], a Python scalar) arrives as a Python number
        kept = [a for a in self.new_order if a != "x"]
        dropped = tuple(a for a in range(x.ndim) if a not in kept)
        for a in dropped:
            if x.shape[a] != 1:
                raise ShapeError(f"cannot drop axis {a} of an array of shape {x.shape}: its length is not 1")
        # One transpose (kept axes in order, dropped ones last) and one indexing (None for a
        # new axis, 0 for a dropped one): both views, and far cheaper than squeeze,
        # transpose and expand_dims, which a program runs on every call.
        order = kept + list(dropped)
        y = x if order == list(range(x.ndim)) else x.transpose(order)
        index = tuple(None if a == "x" else slice(None) for a in self.new_order) + (0,) * len(dropped)
        return [y[index]]

    def grad(self, node, output_grads):
        """The inverse shuffle: new axes dropped, dropped axes put back, the order undone."""
        (x,), (gz,) = node.inputs, output_grads
        if not is_float(x.dtype):
            return [None]
        position = {a: i for i, a in enumerate(self.new_order) if a != "x"}
        return [dimshuffle(gz, [position.get(a, "x") for a in range(x.ndim)])]

    def infix(self, node, show):
        (x,) = node.inputs
        order = self.new_order
        kept = [a for a in order if a != "x"]
        if kept == list(range(x.ndim)):  # only new axes: NumPy's x[None, :]
            parts = ["None" if a == "x" else ":" for a in order]
            while parts[-1] == ":":
                parts.pop()
            return f"{show(x, ATOM)}[{', '.join(parts)}]", ATOM
        if order == tuple(reversed(range(x.ndim))):
            return f"{show(x, ATOM)}.T", ATOM
        if len(kept) == x.ndim and "x" not in order:
            return f"{show(x, ATOM)}.transpose{order}", ATOM
        if kept == sorted(kept) and "x" not in order:
            dropped = tuple(a for a in range(x.ndim) if a not in kept)
            return call_text("squeeze", show(x), axis=dropped[0] if len(dropped) == 1 else dropped), ATOM
        return f"{show(x, ATOM)}.dimshuffle{order}", ATOM


def dimshuffle(x: TensorLike, pattern: Sequence[int | str]) -> TensorVariable:
    """Theano's axis shuffle; see :class:`DimShuffle`.

    >>> import exprc as ex
    >>> ex.dimshuffle(ex.matrix("m"), (1, "x", 0)).type.shape
    (None, 1, None)
    """
    x = as_tensor(x)
    pattern = tuple(a if a == "x" else int(a) for a in pattern)
    if pattern == tuple(range(x.ndim)):
        return x
    return DimShuffle(pattern)(x)


def expand_left(x: TensorVariable, ndim: int) -> TensorVariable:
    """``x`` with leading length-1 axes added up to ``ndim`` dimensions (NumPy's implicit broadcast)."""
    return dimshuffle(x, ("x",) * (ndim - x.ndim) + tuple(range(x.ndim)))


def transpose(x: TensorLike, axes: Sequence[int] | None = None) -> TensorVariable:
    """Permute the axes of ``x``; reverse them when ``axes`` is None (``x.T``).

    >>> import exprc as ex
    >>> ex.transpose(ex.tensor("t", shape=(2, 3, 4)), (1, 0, 2)).type.shape
    (3, 2, 4)
    """
    x = as_tensor(x)
    if axes is None:
        axes = tuple(reversed(range(x.ndim)))
    if len(axes) != x.ndim:
        raise ValueError(f"transpose of {x}: axes {tuple(axes)} must list each of its {x.ndim} axes once")
    axes = tuple(int(a) % x.ndim if -x.ndim <= a < x.ndim else a for a in axes)
    if sorted(axes) != list(range(x.ndim)):
        raise ValueError(f"transpose of {x}: axes {tuple(axes)} must list each of its {x.ndim} axes once")
    return dimshuffle(x, axes)


def expand_dims(x: TensorLike, axis: int | Sequence[int]) -> TensorVariable:
    """Insert length-1 axes at the positions ``axis`` of the result (NumPy's ``expand_dims``).

    >>> import exprc as ex
    >>> ex.expand_dims(ex.vector("v"), 0).type.shape
    (1, None)
    """
    x = as_tensor(x)
    out_ndim = x.ndim + (len(axis) if isinstance(axis, (tuple, list)) else 1)
    new = normalize_axis(axis, out_ndim, lazy("expand_dims of {}", x))
    rest = iter(range(x.ndim))
    return dimshuffle(x, tuple("x" if i in new else next(rest) for i in range(out_ndim)))


def squeeze(x: TensorLike, axis: Axis = None) -> TensorVariable:
    """Remove length-1 axes: those named in ``axis``, or with ``axis=None`` every axis statically 1.

    An axis whose length is unknown until run time is removed only when named;
    it must then have length 1.

    >>> import exprc as ex
    >>> ex.squeeze(ex.tensor("t", shape=(1, None, 1))).type.shape
    (None,)
    """
    x = as_tensor(x)
    if axis is None:
        drop = tuple(i for i, d in enumerate(x.type.shape) if d == 1)
    else:
        drop = normalize_axis(axis, x.ndim, lazy("squeeze of {}", x))
    return dimshuffle(x, tuple(i for i in range(x.ndim) if i not in drop))


def _length_inputs(shape, what):
    """A target shape (ints, int scalars, or a mix) as int64 0-d variables."""
    if isinstance(shape, (int, np.integer)) or (hasattr(shape, "ndim") and shape.ndim == 0):
        shape = (shape,)
    if hasattr(shape, "ndim") and shape.ndim == 1 and shape.type.shape[0] is not None:
        shape = tuple(shape[i] for i in range(shape.type.shape[0]))
    if not isinstance(shape, (tuple, list)):
        raise TypeError(f"{what}: shape must be an int or a tuple of ints or int scalars, got {shape!r}")
    out = []
    for d in shape:
        d = as_tensor(d)
        if d.ndim != 0 or not (is_integer(d.dtype) or d.dtype == "bool"):
            raise TypeError(f"{what}: each length must be an int or an integer scalar, got {d} ({d.type})")
        out.append(d if d.dtype == "int64" else d.astype("int64"))
    return out


def _static_length(var):
    return int(var.value) if isinstance(var, TensorConstant) else None


@dataclass(frozen=True)
class Reshape(Op):
    """NumPy's reshape; input 0 is the tensor, the others are the new lengths (one may be -1)."""

    def make_node(self, x, *lengths):
        shape = [_static_length(d) for d in lengths]
        target = tuple("?" if d is None else d for d in shape)
        if sum(d == -1 for d in shape) > 1 or any(d is not None and d < -1 for d in shape):
            raise ValueError(f"reshape of {x} to {target}: only one length may be -1 and none may be below it")
        if -1 in shape:
            known = [d for d in shape if d not in (None, -1)]
            if None not in x.type.shape and None not in shape:
                total, rest = int(np.prod(x.type.shape)), int(np.prod(known))
                if rest == 0 or total % rest:
                    raise ShapeError(f"cannot reshape {x} of shape {fmt_shape(x.type.shape)} to {target}")
                shape[shape.index(-1)] = total // rest
            else:
                shape[shape.index(-1)] = None
        elif None not in x.type.shape and None not in shape and int(np.prod(x.type.shape)) != int(np.prod(shape)):
            raise ShapeError(f"cannot reshape {x} of shape {fmt_shape(x.type.shape)} to {target}")
        return Apply(self, [x, *lengths], [TensorType(x.dtype, shape)])

    def perform(self, node, inputs):
        x, *lengths = inputs
        return [np.reshape(x, tuple(int(d) for d in lengths))]

    def grad(self, node, output_grads):
        x, *lengths = node.inputs
        g = reshape(output_grads[0], x.shape) if is_float(x.dtype) else None
        return [g] + [None] * len(lengths)

    def infix(self, node, show):
        x, *lengths = node.inputs
        return f"{show(x, ATOM)}.reshape({_tuple_text(lengths, show)})", ATOM


def _tuple_text(items, show):
    texts = [show(v) for v in items]
    return f"({texts[0]},)" if len(texts) == 1 else f"({', '.join(texts)})"


def reshape(x: TensorLike, shape: ShapeLike) -> TensorVariable:
    """``x`` with a new shape of the same size; one length may be -1 (NumPy's ``reshape``).

    Lengths may be symbolic, for example ``x.reshape((x.shape[0], -1))``.

    >>> import exprc as ex
    >>> ex.reshape(ex.tensor("t", shape=(2, 3)), (3, -1)).type.shape
    (3, 2)
    """
    x = as_tensor(x)
    lengths = _length_inputs(shape, lazy("reshape of {}", x))
    static = [_static_length(d) for d in lengths]
    if tuple(static) == x.type.shape and None not in static:
        return x
    return Reshape()(x, *lengths)


def flatten(x: TensorLike, ndim: int = 1) -> TensorVariable:
    """``x`` as a vector (NumPy's ``ravel``); with ``ndim``, as an ``ndim``-d tensor that keeps
    the first ``ndim - 1`` axes and joins the rest (Theano's and PyTensor's ``flatten``).

    >>> import exprc as ex
    >>> ex.flatten(ex.tensor("t", shape=(2, 3))).type.shape
    (6,)
    >>> ex.flatten(ex.tensor("t", shape=(2, 3, 4)), 2).type.shape
    (2, 12)
    """
    x = as_tensor(x)
    if not isinstance(ndim, (int, np.integer)) or not 1 <= ndim <= max(x.ndim, 1):
        raise ValueError(f"flatten({x}, ndim={ndim!r}): ndim must be an int from 1 to {max(x.ndim, 1)}")
    if x.ndim == ndim:
        return x
    # The joined length as a product, not -1: a zero-length axis leaves -1 undetermined.
    trailing = x.type.shape[ndim - 1 :]
    if None not in trailing:
        joined = int(np.prod(trailing))
    else:
        joined = x.shape[ndim - 1]
        for i in range(ndim, x.ndim):
            joined = joined * x.shape[i]
    return reshape(x, tuple(x.shape[i] for i in range(ndim - 1)) + (joined,))


@dataclass(frozen=True)
class BroadcastTo(Op):
    """NumPy's ``broadcast_to``; input 0 is the tensor, the others the target lengths."""

    def make_node(self, x, *lengths):
        target = [_static_length(d) for d in lengths]
        if x.ndim > len(target):
            raise ShapeError(f"cannot broadcast {x} ({x.ndim} dimensions) to {len(target)} dimensions")
        padded = (1,) * (len(target) - x.ndim) + x.type.shape
        shape = []
        for have, want in zip(padded, target):
            if have not in (1, None) and want is not None and have != want:
                raise ShapeError(f"cannot broadcast {x} of shape {fmt_shape(x.type.shape)} to {fmt_shape(target)}")
            shape.append(want if want is not None else (have if have != 1 else None))
        return Apply(self, [x, *lengths], [TensorType(x.dtype, shape)])

    def perform(self, node, inputs):
        x, *lengths = inputs
        return [np.broadcast_to(x, tuple(int(d) for d in lengths))]

    def grad(self, node, output_grads):
        x, *lengths = node.inputs
        g = sum_to(output_grads[0], x) if is_float(x.dtype) else None
        return [g] + [None] * len(lengths)

    def infix(self, node, show):
        x, *lengths = node.inputs
        return call_text("broadcast_to", show(x), _tuple_text(lengths, show)), ATOM


def broadcast_to(x: TensorLike, shape: ShapeLike) -> TensorVariable:
    """``x`` broadcast to ``shape``, as a view (NumPy's ``broadcast_to``).

    >>> import exprc as ex
    >>> ex.broadcast_to(ex.vector("v"), (4, 3)).type.shape
    (4, 3)
    """
    x = as_tensor(x)
    lengths = _length_inputs(shape, lazy("broadcast_to of {}", x))
    if tuple(_static_length(d) for d in lengths) == x.type.shape:
        return x
    return BroadcastTo()(x, *lengths)


# --- undoing broadcasting --------------------------------------------------------


@dataclass(frozen=True)
class SumToShape(Op):
    """Sum ``g`` (keeping dims) over those of the axes ``axis`` whose target length, an input
    of the node, is 1 at run time while ``g``'s is not: how a gradient undoes the broadcast
    of an input whose length was unknown when the graph was built. Inputs: ``(g, *lengths)``."""

    axis: tuple

    def make_node(self, g, *lengths):
        if len(lengths) != len(self.axis):
            raise TypeError(f"SumToShape{self.axis} takes one length per axis, got {len(lengths)}")
        shape = tuple(None if a in self.axis else d for a, d in enumerate(g.type.shape))
        return Apply(self, [g, *lengths], [TensorType(g.dtype, shape)])

    def perform(self, node, inputs):
        g, *lengths = inputs
        g = np.asarray(g)
        axes = tuple(a for a, n in zip(self.axis, lengths) if int(n) == 1 and g.shape[a] != 1)
        return [np.sum(g, axis=axes, keepdims=True) if axes else g]

    def grad(self, node, output_grads):
        g = node.inputs[0]
        return [broadcast_to(output_grads[0], g.shape)] + [None] * len(self.axis)

    def infix(self, node, show):
        g, *lengths = node.inputs
        return f"sum_to({show(g)}, axis={self.axis}, lengths=({', '.join(show(n) for n in lengths)},))", ATOM


def sum_to(g: TensorLike, x: TensorLike, axes: Sequence[int] | None = None) -> TensorVariable:
    """``g``, a value broadcast from ``x``'s shape (as in ``x + y``), summed back to ``x``'s
    shape: over the leading axes ``x`` lacks, the axes where ``x`` has length 1, and, at
    run time, the axes whose length was unknown when built and turns out to be 1.
    ``axes``, when given, lists the only axes of ``x`` that can have been broadcast.

    >>> import numpy as np, exprc as ex
    >>> g, x = ex.matrix("g"), ex.matrix("x")
    >>> sum_to(g, x).eval({g: np.ones((2, 3)), x: np.ones((1, 3))})
    array([[2., 2., 2.]])
    """
    out, x = as_tensor(g), as_tensor(x)
    lead = out.ndim - x.ndim
    if lead < 0:
        raise ValueError(f"sum_to: {out} has fewer dimensions than {x}")
    # Sum lives above this module (exprc.ops.reduction): the tensor's own .sum reaches it.
    if lead:
        out = out.sum(tuple(range(lead)))
    static, dynamic = [], []
    for a, (dx, dg) in enumerate(zip(x.type.shape, out.type.shape)):
        if dg == 1 or (dx is not None and dx == dg) or (axes is not None and a not in axes):
            continue
        if dx == 1:
            static.append(a)
        elif dx is None:
            dynamic.append(a)
    if static:
        out = out.sum(tuple(static), keepdims=True)
    if dynamic:
        out = SumToShape(tuple(dynamic))(out, *(shape_i(x, a) for a in dynamic))
    return out


def full(shape: ShapeLike, fill_value: TensorLike, dtype: DType | None = None) -> TensorVariable:
    """A tensor of ``shape`` filled with ``fill_value`` (NumPy's ``full``).

    >>> import exprc as ex
    >>> ex.full((2,), 7.0).eval()
    array([7., 7.])
    """
    value = as_tensor(fill_value)
    if dtype is not None:
        value = constant(value.value, dtype=dtype) if isinstance(value, TensorConstant) else value.astype(dtype)
    elif value.type.weak and isinstance(value, TensorConstant):
        value = constant(value.value, dtype=value.dtype)
    return broadcast_to(value, shape)


def zeros(shape: ShapeLike, dtype: DType | None = None) -> TensorVariable:
    """A tensor of zeros (NumPy's ``zeros``), of dtype ``config.floatX`` unless ``dtype`` says.

    >>> import exprc as ex
    >>> ex.zeros((2, 2), dtype="int32").dtype
    'int32'
    """
    return full(shape, 0, as_dtype(dtype or config.floatX))


def ones(shape: ShapeLike, dtype: DType | None = None) -> TensorVariable:
    """A tensor of ones (NumPy's ``ones``), of dtype ``config.floatX`` unless ``dtype`` says.

    >>> import exprc as ex
    >>> ex.ones(3).eval()
    array([1., 1., 1.])
    """
    return full(shape, 1, as_dtype(dtype or config.floatX))


def full_like(x: TensorLike, fill_value: TensorLike, dtype: DType | None = None) -> TensorVariable:
    """A tensor shaped like ``x`` filled with ``fill_value``, in ``x``'s dtype unless ``dtype`` is given.

    >>> import exprc as ex
    >>> ex.full_like(ex.fvector("v"), 2).dtype
    'float32'
    """
    x = as_tensor(x)
    return full(x.shape, fill_value, dtype or x.dtype)


def zeros_like(x: TensorLike, dtype: DType | None = None) -> TensorVariable:
    """Zeros shaped like ``x`` (NumPy's ``zeros_like``).

    >>> import exprc as ex
    >>> ex.zeros_like(ex.ivector("v")).dtype
    'int32'
    """
    return full_like(x, 0, dtype)


def ones_like(x: TensorLike, dtype: DType | None = None) -> TensorVariable:
    """Ones shaped like ``x`` (NumPy's ``ones_like``).

    >>> import exprc as ex
    >>> ex.ones_like(ex.matrix("m")).type.shape
    (None, None)
    """
    return full_like(x, 1, dtype)


def _concatenate_probe(*arrays):
    return np.concatenate([np.atleast_1d(a) for a in arrays])


@dataclass(frozen=True)
class Concatenate(Op):
    """Join tensors of equal number of dimensions along ``axis``."""

    axis: int

    def make_node(self, *tensors):
        ndim = tensors[0].ndim
        where = ", ".join(f"{t} {fmt_shape(t.type.shape)}" for t in tensors)
        if any(t.ndim != ndim for t in tensors):
            raise ValueError(f"concatenate: all inputs must have the same number of dimensions, got {where}")
        shape = []
        for a in range(ndim):
            lengths = [t.type.shape[a] for t in tensors]
            if a == self.axis:
                shape.append(None if None in lengths else sum(lengths))
                continue
            known = {d for d in lengths if d is not None}
            if len(known) > 1:
                raise ShapeError(f"concatenate along axis {self.axis}: lengths of axis {a} differ in {where}")
            shape.append(known.pop() if known else None)
        dtype = probe_dtype(_concatenate_probe, tuple(t.dtype for t in tensors))
        return Apply(self, tensors, [TensorType(dtype, shape)])

    def perform(self, node, inputs):
        return [np.concatenate(inputs, axis=self.axis).astype(node.outputs[0].dtype, copy=False)]

    def grad(self, node, output_grads):
        """Each input gets its own stretch of the gradient along the joined axis."""
        (gz,) = output_grads
        grads, start = [], 0
        for x in node.inputs:
            length = x.type.shape[self.axis]
            stop = start + (shape_i(x, self.axis) if length is None else length)
            index = (slice(None),) * self.axis + (slice(start, stop),)
            grads.append(gz[index] if is_float(x.dtype) else None)
            start = stop
        return grads

    def infix(self, node, show):
        return call_text("concatenate", f"[{', '.join(show(v) for v in node.inputs)}]", axis=self.axis), ATOM


def concatenate(tensors: Sequence[TensorLike], axis: int = 0) -> TensorVariable:
    """Join a sequence of tensors along an existing axis (NumPy's ``concatenate``).

    >>> import exprc as ex
    >>> ex.concatenate([ex.vector("a"), ex.vector("b")]).ndim
    1
    """
    ts = [as_tensor(t) for t in tensors]
    if not ts:
        raise ValueError("concatenate needs at least one tensor")
    if ts[0].ndim == 0:
        raise ValueError(f"concatenate: 0-d tensors such as {ts[0]} have no axis to join; use stack")
    axis = normalize_axis(axis, ts[0].ndim, "concatenate")[0]
    if len(ts) == 1:
        return ts[0]
    return Concatenate(axis)(*ts)


def stack(tensors: Sequence[TensorLike], axis: int = 0) -> TensorVariable:
    """Join tensors of one shape along a new axis (NumPy's ``stack``).

    >>> import exprc as ex
    >>> ex.stack([ex.vector("a"), ex.vector("b")], axis=1).type.shape
    (None, 2)
    """
    ts = [as_tensor(t) for t in tensors]
    if not ts:
        raise ValueError("stack needs at least one tensor")
    ndim = ts[0].ndim
    if any(t.ndim != ndim for t in ts):
        raise ValueError(f"stack: all inputs must have the same number of dimensions, got {[str(t) for t in ts]}")
    axis = normalize_axis(axis, ndim + 1, "stack")[0]
    expanded = [expand_dims(t, axis) for t in ts]
    return Concatenate(axis)(*expanded) if len(expanded) > 1 else expanded[0]
