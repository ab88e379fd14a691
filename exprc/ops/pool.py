"""Pooling over the last N axes with Theano's semantics, and its gradients.

``Pool`` computes max, sum or average over windows; ``MaxPoolGrad`` routes the output
gradient to the first maximum of each window; ``AveragePoolGrad`` spreads it over the window
(sum and average modes, whose pooling is linear); ``MaxPoolGradGrad`` is the gradient of
``MaxPoolGrad`` with respect to its output gradient. Each NumPy reference loops over the
window positions (not the pixels): one strided slice of the padded input per position.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..dtypes import is_float
from ..graph import Apply, Op
from ..printing import ATOM, call_text
from ..shapes import ShapeError, fmt_shape
from ..tensor import TensorConstant, TensorType
from .shape import zeros_like

MODES = ("max", "sum", "average_inc_pad", "average_exc_pad")


def pool_output_length(length, ws, stride, pad, ignore_border):
    """Theano's length of one pooled axis, or None where unknown."""
    if length is None:
        return None
    if ignore_border:
        return (length + 2 * pad - ws) // stride + 1
    if stride >= ws:
        return (length - 1) // stride + 1
    return max(0, (length - 1 - ws + stride) // stride) + 1


def _static(var):
    return int(var.value) if isinstance(var, TensorConstant) else None


@dataclass(frozen=True)
class _PoolBase:
    """Window, stride and padding per pooled axis, Theano's ``ignore_border`` and the mode."""

    ws: tuple[int, ...]
    stride: tuple[int, ...]
    pad: tuple[int, ...]
    ignore_border: bool
    mode: str

    @property
    def nd(self) -> int:
        return len(self.ws)

    def _out_shape(self, what, shape):
        """The pooled shape of ``shape`` (entries may be None); errors name ``what``."""
        nd = self.nd
        if self.mode not in MODES:
            raise ValueError(f"{what}: mode {self.mode!r} is not one of {MODES}")
        if not len(self.stride) == len(self.pad) == nd or nd < 1:
            raise ValueError(f"{what}: ws, stride and pad must have one entry per pooled axis")
        if min(self.ws) < 1 or min(self.stride) < 1 or min(self.pad) < 0:
            raise ValueError(
                f"{what}: ws {self.ws} and stride {self.stride} must be positive, pad {self.pad} not negative"
            )
        if any(p >= w for p, w in zip(self.pad, self.ws)) or (any(self.pad) and not self.ignore_border):
            raise ValueError(f"{what}: pad {self.pad} must be below ws {self.ws}, and needs ignore_border=True")
        if len(shape) < nd:
            raise ValueError(f"{what}: input of shape {fmt_shape(shape)} has fewer than {nd} axes to pool")
        spatial = shape[-nd:]
        if self.ignore_border:
            for n, w, p in zip(spatial, self.ws, self.pad):
                if n is not None and n + 2 * p < w:
                    raise ShapeError(
                        f"{what}: window {self.ws} is larger than the input of shape {fmt_shape(shape)} "
                        f"padded by {self.pad} (ignore_border=True)"
                    )
        out = tuple(
            pool_output_length(n, w, s, p, self.ignore_border)
            for n, w, s, p in zip(spatial, self.ws, self.stride, self.pad)
        )
        return tuple(shape[:-nd]) + out

    def _bounds(self, lengths, out):
        """Per axis: the padded array's length, and the start and end of each window's region
        (Theano's: clipped to the padded input, and to the real input unless average_inc_pad)."""
        regions, sizes = [], []
        for n, o, w, s, p in zip(lengths, out, self.ws, self.stride, self.pad):
            padded = n + 2 * p
            start = np.arange(o) * s
            end = np.minimum(start + w, padded)
            if self.mode != "average_inc_pad":
                start, end = np.maximum(start, p), np.minimum(end, padded - p)
            regions.append((start, end))
            sizes.append(max(padded, (o - 1) * s + w if o else padded))
        return regions, sizes

    def _padded(self, x, out, fill):
        """``x`` padded by ``pad`` and to the end of the last window, with ``fill``."""
        nd = self.nd
        lengths = x.shape[-nd:]
        _, sizes = self._bounds(lengths, out)
        widths = [(0, 0)] * (x.ndim - nd) + [(p, size - n - p) for n, p, size in zip(lengths, self.pad, sizes)]
        return np.pad(x, widths, constant_values=fill) if any(a or b for a, b in widths) else x

    def _at(self, k, out):
        """The index of window position ``k`` in every window: one strided slice per axis."""
        return (Ellipsis,) + tuple(slice(k[i], k[i] + o * s, s) for i, (o, s) in enumerate(zip(out, self.stride)))

    def _first_max(self, xp, out):
        """Each window's first maximum in the padded ``xp``: its value and its flat position in
        the window. One vectorized pass per window position, not a reduction over tiny axes."""
        best, where = None, None
        # NaN wins as in np.max (the first one); checking for it costs passes, so only if there is one.
        nan = bool(np.isnan(xp).any())
        for flat, k in enumerate(np.ndindex(*self.ws)):
            values = xp[self._at(k, out)]
            if best is None:
                best, where = values.copy(), np.zeros(values.shape, dtype=np.intp)
                continue
            # Strictly greater keeps the first maximum.
            better = values > best
            if nan:
                better = (better | np.isnan(values)) & ~np.isnan(best)
                np.copyto(best, values, where=better)
            else:
                np.maximum(best, values, out=best)
            # Positions only grow, so a maximum records the later, better one (faster than a masked write).
            np.maximum(where, better * flat, out=where)
        return best, where

    def _divisor(self, lengths, out, dtype):
        """The number each window's sum is divided by, broadcast to (*out,)."""
        regions, _ = self._bounds(lengths, out)
        count = np.ones((), dtype=dtype)
        for i, (start, end) in enumerate(regions):
            shape = [1] * self.nd
            shape[i] = len(start)
            count = count * (end - start).astype(dtype).reshape(shape)
        return count

    def _params(self):
        return {"ws": self.ws, "stride": self.stride, "pad": self.pad, "ignore_border": self.ignore_border}


def _check_float(what, x):
    if not is_float(x.dtype):
        raise TypeError(f"{what}: {x} is {x.dtype}; expected a floating-point tensor")


@dataclass(frozen=True)
class Pool(_PoolBase, Op):
    """Pooling of the last ``len(ws)`` axes of ``x`` in ``mode`` (Theano's ``Pool``)."""

    def make_node(self, x):
        _check_float(f"pool ({self.mode})", x)
        return Apply(self, [x], [TensorType(x.dtype, self._out_shape(f"pool ({self.mode})", x.type.shape))])

    def perform(self, node, inputs):
        (x,) = inputs
        out = self._out_shape(f"pool ({self.mode})", x.shape)[-self.nd :]
        if self.mode == "max":
            xp = self._padded(x, out, -np.inf)
            result = xp[self._at((0,) * self.nd, out)].copy()
            for k in np.ndindex(*self.ws):
                np.maximum(result, xp[self._at(k, out)], out=result)  # NaN propagates, as in np.max
        else:
            xp = self._padded(x, out, 0)
            result = np.zeros(x.shape[: -self.nd] + tuple(out), dtype=x.dtype)
            for k in np.ndindex(*self.ws):
                result += xp[self._at(k, out)]
            if self.mode != "sum":
                result = result / self._divisor(x.shape[-self.nd :], out, x.dtype)
        return [np.asarray(result, dtype=x.dtype)]

    def grad(self, node, output_grads):
        (x,) = node.inputs
        (gz,) = output_grads
        params = (self.ws, self.stride, self.pad, self.ignore_border, self.mode)
        if self.mode == "max":
            return [MaxPoolGrad(*params)(x, gz)]
        return [AveragePoolGrad(*params)(gz, *x.shape[-self.nd :])]

    def infix(self, node, show):
        return call_text(f"pool_{self.mode}", show(node.inputs[0]), **self._params()), ATOM


@dataclass(frozen=True)
class MaxPoolGrad(_PoolBase, Op):
    """The gradient of max pooling: ``gz`` of each window added at the window's first maximum
    in ``x``; zero elsewhere."""

    def make_node(self, x, gz):
        _check_float("max pool gradient", x)
        out = self._out_shape("max pool gradient", x.type.shape)
        if len(out) != gz.ndim:
            raise ValueError(f"max pool gradient: {gz} is {gz.ndim}-d; expected {len(out)}-d")
        return Apply(self, [x, gz], [TensorType(x.dtype, x.type.shape)])

    def perform(self, node, inputs):
        x, gz = inputs
        nd = self.nd
        out = self._out_shape("max pool gradient", x.shape)[-nd:]
        xp = self._padded(x, out, -np.inf)
        where = self._first_max(xp, out)[1]
        gx = np.zeros(xp.shape, dtype=x.dtype)
        for flat, k in enumerate(np.ndindex(*self.ws)):
            gx[self._at(k, out)] += gz * (where == flat)
        crop = (Ellipsis,) + tuple(slice(p, p + n) for p, n in zip(self.pad, x.shape[-nd:]))
        return [np.ascontiguousarray(gx[crop])]

    def grad(self, node, output_grads):
        x, gz = node.inputs
        (g,) = output_grads
        params = (self.ws, self.stride, self.pad, self.ignore_border, self.mode)
        # The routing is piecewise constant in x: no gradient flows to it.
        return [zeros_like(x), MaxPoolGradGrad(*params)(x, g)]

    def infix(self, node, show):
        x, gz = node.inputs
        return call_text("max_pool_grad", show(x), show(gz), **self._params()), ATOM


@dataclass(frozen=True)
class MaxPoolGradGrad(_PoolBase, Op):
    """``g`` read at each window's first maximum in ``x``: the gradient of :class:`MaxPoolGrad`
    with respect to its output gradient."""

    def make_node(self, x, g):
        _check_float("max pool gradient", x)
        out = self._out_shape("max pool gradient", x.type.shape)
        return Apply(self, [x, g], [TensorType(g.dtype, out)])

    def perform(self, node, inputs):
        x, g = inputs
        nd = self.nd
        out = self._out_shape("max pool gradient", x.shape)[-nd:]
        xp = self._padded(x, out, -np.inf)
        gp = self._padded(g, out, 0)
        where = self._first_max(xp, out)[1]
        result = np.zeros(where.shape, dtype=g.dtype)
        for flat, k in enumerate(np.ndindex(*self.ws)):
            np.copyto(result, gp[self._at(k, out)], where=where == flat)
        return [result]

    def grad(self, node, output_grads):
        x, g = node.inputs
        (gz,) = output_grads
        params = (self.ws, self.stride, self.pad, self.ignore_border, self.mode)
        return [zeros_like(x), MaxPoolGrad(*params)(x, gz)]

    def infix(self, node, show):
        x, g = node.inputs
        return call_text("max_pool_grad_grad", show(x), show(g), **self._params()), ATOM


@dataclass(frozen=True)
class AveragePoolGrad(_PoolBase, Op):
    """The gradient of sum and average pooling: each window's ``gz`` (divided as the mode
    divides) added over the window; the last inputs are the input's pooled lengths."""

    def make_node(self, gz, *lengths):
        _check_float(f"pool ({self.mode}) gradient", gz)
        spatial = tuple(_static(n) for n in lengths)
        shape = tuple(gz.type.shape[: -self.nd]) + spatial
        self._out_shape(f"pool ({self.mode}) gradient", shape)
        return Apply(self, [gz, *lengths], [TensorType(gz.dtype, shape)])

    def perform(self, node, inputs):
        gz, *lengths = inputs
        nd = self.nd
        lengths = tuple(int(n) for n in lengths)
        out = gz.shape[-nd:]
        expected = self._out_shape(f"pool ({self.mode}) gradient", gz.shape[:-nd] + lengths)[-nd:]
        if tuple(expected) != tuple(out):
            raise ShapeError(f"pool ({self.mode}) gradient: gradient of shape {gz.shape} does not pool {lengths}")
        if self.mode != "sum":
            gz = gz / self._divisor(lengths, out, gz.dtype)
        _, sizes = self._bounds(lengths, out)
        gx = np.zeros(gz.shape[:-nd] + tuple(sizes), dtype=gz.dtype)
        for k in np.ndindex(*self.ws):
            gx[self._at(k, out)] += gz
        crop = (Ellipsis,) + tuple(slice(p, p + n) for p, n in zip(self.pad, lengths))
        return [np.ascontiguousarray(gx[crop], dtype=gz.dtype)]

    def grad(self, node, output_grads):
        gz, *lengths = node.inputs
        (g,) = output_grads
        params = (self.ws, self.stride, self.pad, self.ignore_border, self.mode)
        return [Pool(*params)(g)] + [None] * len(lengths)

    def infix(self, node, show):
        return call_text(f"pool_{self.mode}_grad", show(node.inputs[0]), **self._params()), ATOM


def params_problem(op: _PoolBase, inputs: list) -> str | None:
    """What is wrong with a pooling op's parameters for ``inputs`` (for graph files), or None."""
    nd = len(op.ws)
    if op.mode not in MODES or nd < 1 or not len(op.stride) == len(op.pad) == nd:
        return "an unknown mode, or ws, stride and pad that differ in length"
    if min(op.ws) < 1 or min(op.stride) < 1 or min(op.pad) < 0 or any(p >= w for p, w in zip(op.pad, op.ws)):
        return "a window or stride below 1, or a pad that is negative or not below the window"
    if inputs[0].ndim < nd:
        return f"an input with fewer than {nd} axes"
    expected = 1 + nd if isinstance(op, AveragePoolGrad) else (1 if isinstance(op, Pool) else 2)
    return None if len(inputs) == expected else f"{len(inputs)} inputs; expected {expected}"
