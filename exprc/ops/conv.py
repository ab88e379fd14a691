"""Convolution (cross-correlation) over N spatial axes, channels first, and its two gradients.

``Conv`` is the forward op; ``ConvGradInput`` and ``ConvGradFilters`` are the adjoints of
its two bilinear arguments, so each gradient of each op is one of the three (the
adjoint identities are in each ``grad``).
The NumPy references are im2col (one copy of a ``sliding_window_view``) and one matrix
product per channel group; the input gradient adds the columns back, one strided addition per
kernel position.
``exprc.nnet.conv2d`` builds these with Theano's parameters; filter flipping is a view.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..graph import Apply, Op
from ..printing import ATOM, call_text
from ..shapes import ShapeError, fmt_shape
from ..tensor import TensorConstant, TensorType


def _static(var):
    return int(var.value) if isinstance(var, TensorConstant) else None


def conv_output_length(length, kernel, pad, stride, dilation):
    """Length of one spatial axis of a convolution's output, or None where unknown."""
    if length is None or kernel is None:
        return None
    return (length + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


def _params_text(op):
    return {"pad": op.pad, "stride": op.stride, "dilation": op.dilation, "groups": op.groups}


def _conv_dtype(what, a, b):
    for v in (a, b):
        if v.dtype not in ("float32", "float64"):
            raise TypeError(f"{what}: {v} is {v.dtype}; expected float32 or float64")
    return np.result_type(a.dtype, b.dtype).name


@dataclass(frozen=True)
class _ConvBase:
    """The parameters every convolution op shares: per-axis zero padding (both sides),
    stride and dilation, and the number of channel groups."""

    pad: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int

    @property
    def nd(self) -> int:
        return len(self.pad)

    def _check_params(self, what):
        nd = self.nd
        if nd < 1 or not len(self.stride) == len(self.dilation) == nd:
            raise ValueError(f"{what}: pad, stride and dilation must have one entry per spatial axis")
        if min(self.stride) < 1 or min(self.dilation) < 1 or min(self.pad) < 0 or self.groups < 1:
            raise ValueError(
                f"{what}: stride {self.stride} and dilation {self.dilation} must be positive, pad {self.pad} "
                f"not negative, groups {self.groups} at least 1"
            )

    def _check_shapes(self, what, x_shape, w_shape, out_shape=None):
        """Check the parameters, the channels and the spatial lengths; entries may be None (unknown)."""
        self._check_params(what)
        nd, g = self.nd, self.groups
        xc, wo, wc = x_shape[1], w_shape[0], w_shape[1]
        if xc is not None and wc is not None and xc != wc * g:
            raise ShapeError(
                f"{what}: input of shape {fmt_shape(x_shape)} has {xc} channels, but filters of shape "
                f"{fmt_shape(w_shape)} with {g} group(s) take {wc * g}"
            )
        if wo is not None and wo % g:
            raise ShapeError(f"{what}: {wo} filters (shape {fmt_shape(w_shape)}) do not split into {g} groups")
        for i in range(nd):
            n = conv_output_length(x_shape[2 + i], w_shape[2 + i], self.pad[i], self.stride[i], self.dilation[i])
            if n is not None and n < 1:
                raise ShapeError(
                    f"{what}: filters of shape {fmt_shape(w_shape)} (dilation {self.dilation}) are larger than "
                    f"the input of shape {fmt_shape(x_shape)} padded by {self.pad}"
                )
            if out_shape is not None and n is not None and out_shape[2 + i] is not None and out_shape[2 + i] != n:
                raise ShapeError(
                    f"{what}: gradient of shape {fmt_shape(out_shape)} does not match a convolution of "
                    f"{fmt_shape(x_shape)} by {fmt_shape(w_shape)}"
                )

    def _windows(self, x, kernel):
        """The padded input's windows: shape (N, C, *out, *kernel), a view."""
        nd = self.nd
        xp = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in self.pad]) if any(self.pad) else x
        extent = tuple(d * (k - 1) + 1 for d, k in zip(self.dilation, kernel))
        win = sliding_window_view(xp, extent, axis=tuple(range(2, 2 + nd)))
        index = (slice(None), slice(None))
        index += tuple(slice(None, None, s) for s in self.stride)
        index += tuple(slice(None, None, d) for d in self.dilation)
        return win[index]

    def _columns(self, x, kernel, out):
        """im2col: the padded input's windows as a C-contiguous (C, *kernel, N, *out) array, so
        that each group's convolution is one matrix product over its (C / groups) * kernel rows."""
        nd = self.nd
        win = self._windows(x, kernel)[(slice(None), slice(None)) + tuple(slice(0, n) for n in out)]
        order = (1,) + tuple(range(2 + nd, 2 + 2 * nd)) + (0,) + tuple(range(2, 2 + nd))
        return np.ascontiguousarray(win.transpose(order))

    def _slice(self, array, g, axis=0):
        """Group ``g``'s part of ``array`` along ``axis``."""
        n = array.shape[axis] // self.groups
        return array[(slice(None),) * axis + (slice(g * n, (g + 1) * n),)]


@dataclass(frozen=True)
class Conv(_ConvBase, Op):
    """Cross-correlation of ``x`` (N, C, *spatial) with ``w`` (O, C // groups, *kernel):
    ``out[n, o, i] = sum over c in o's group, k of xpad[n, c, i * stride + k * dilation] * w[o, c, k]``."""

    def make_node(self, x, w):
        nd = self.nd
        for v, name in ((x, "input"), (w, "filters")):
            if v.ndim != nd + 2:
                raise ValueError(f"conv{nd}d: {name} {v} is {v.ndim}-d; expected {nd + 2}-d (channels first)")
        dtype = _conv_dtype(f"conv{nd}d", x, w)
        xs, ws = x.type.shape, w.type.shape
        self._check_shapes(f"conv{nd}d", xs, ws)
        spatial = tuple(
            conv_output_length(xs[2 + i], ws[2 + i], self.pad[i], self.stride[i], self.dilation[i]) for i in range(nd)
        )
        return Apply(self, [x, w], [TensorType(dtype, (xs[0], ws[0]) + spatial)])

    def perform(self, node, inputs):
        x, w = inputs
        self._check_shapes(f"conv{self.nd}d", x.shape, w.shape)
        kernel = w.shape[2:]
        out = tuple(
            conv_output_length(n, k, p, s, d)
            for n, k, p, s, d in zip(x.shape[2:], kernel, self.pad, self.stride, self.dilation)
        )
        cols = self._columns(x, kernel, out)
        # One matrix product per group: (O/G, C/G * k) @ (C/G * k, N * out).
        parts = [
            self._slice(w, g).reshape(w.shape[0] // self.groups, -1)
            @ self._slice(cols, g).reshape(-1, x.shape[0] * int(np.prod(out)))
            for g in range(self.groups)
        ]
        result = (parts[0] if self.groups == 1 else np.concatenate(parts)).reshape((w.shape[0], x.shape[0]) + out)
        # (N, O, *out) as a view of the product's (O, N, *out): the kernels after it take strides.
        return [result.astype(node.outputs[0].dtype, copy=False).swapaxes(0, 1)]

    def grad(self, node, output_grads):
        x, w = node.inputs
        (gz,) = output_grads
        params = (self.pad, self.stride, self.dilation, self.groups)
        gx = ConvGradInput(*params)(gz, w, *x.shape[2:])
        gw = ConvGradFilters(*params)(x, gz, *w.shape[2:])
        return [gx, gw]

    def infix(self, node, show):
        x, w = node.inputs
        return call_text("conv", show(x), show(w), **_params_text(self)), ATOM


@dataclass(frozen=True)
class ConvGradInput(_ConvBase, Op):
    """The gradient of :class:`Conv` with respect to its input: the adjoint of ``x -> conv(x, w)``
    applied to ``gz``; the last inputs are the input's spatial lengths (a strided
    convolution's output does not determine them)."""

    def make_node(self, gz, w, *lengths):
        nd = self.nd
        dtype = _conv_dtype(f"conv{nd}d gradient", gz, w)
        spatial = tuple(_static(n) for n in lengths)
        x_shape = (gz.type.shape[0], None if w.type.shape[1] is None else w.type.shape[1] * self.groups) + spatial
        self._check_shapes(f"conv{nd}d gradient", x_shape, w.type.shape, gz.type.shape)
        return Apply(self, [gz, w, *lengths], [TensorType(dtype, x_shape)])

    def perform(self, node, inputs):
        gz, w, *lengths = inputs
        nd, dtype = self.nd, node.outputs[0].dtype
        lengths = tuple(int(n) for n in lengths)
        kernel, out, batch = w.shape[2:], gz.shape[2:], gz.shape[0]
        x_shape = (batch, w.shape[1] * self.groups) + lengths
        self._check_shapes(f"conv{nd}d gradient", x_shape, w.shape, gz.shape)
        gz_rows = np.ascontiguousarray(gz.swapaxes(0, 1)).reshape(gz.shape[1], -1)  # (O, N * out)
        padded = tuple(n + 2 * p for n, p in zip(lengths, self.pad))
        # Accumulated as (C, N, *padded), the layout the columns come in.
        gx = np.zeros((x_shape[1], batch) + padded, dtype=dtype)
        for g in range(self.groups):
            w_rows = self._slice(w, g).reshape(w.shape[0] // self.groups, -1)
            cols = (w_rows.T @ self._slice(gz_rows, g)).reshape((w.shape[1],) + kernel + (batch,) + out)
            target = self._slice(gx, g)
            # col2im: one strided addition per kernel position.
            for k in np.ndindex(*kernel):
                region = tuple(
                    slice(
                        k[i] * self.dilation[i],
                        k[i] * self.dilation[i] + self.stride[i] * (out[i] - 1) + 1,
                        self.stride[i],
                    )
                    for i in range(nd)
                )
                target[(slice(None), slice(None)) + region] += cols[(slice(None),) + k]
        crop = (slice(None), slice(None)) + tuple(slice(p, p + n) for p, n in zip(self.pad, lengths))
        return [gx[crop].swapaxes(0, 1)]  # a view, as the forward's output

    def grad(self, node, output_grads):
        gz, w, *lengths = node.inputs
        (g,) = output_grads
        params = (self.pad, self.stride, self.dilation, self.groups)
        return [Conv(*params)(g, w), ConvGradFilters(*params)(g, gz, *w.shape[2:])] + [None] * len(lengths)

    def infix(self, node, show):
        gz, w, *lengths = node.inputs
        return call_text("conv_grad_input", show(gz), show(w), **_params_text(self)), ATOM


@dataclass(frozen=True)
class ConvGradFilters(_ConvBase, Op):
    """The gradient of :class:`Conv` with respect to its filters: the adjoint of
    ``w -> conv(x, w)`` applied to ``gz``; the last inputs are the kernel's spatial lengths."""

    def make_node(self, x, gz, *lengths):
        nd = self.nd
        dtype = _conv_dtype(f"conv{nd}d gradient", x, gz)
        kernel = tuple(_static(n) for n in lengths)
        per_group = None if x.type.shape[1] is None else x.type.shape[1] // self.groups
        w_shape = (gz.type.shape[1], per_group) + kernel
        self._check_shapes(f"conv{nd}d gradient", x.type.shape, w_shape, gz.type.shape)
        return Apply(self, [x, gz, *lengths], [TensorType(dtype, w_shape)])

    def perform(self, node, inputs):
        x, gz, *lengths = inputs
        nd, dtype = self.nd, node.outputs[0].dtype
        kernel = tuple(int(n) for n in lengths)
        w_shape = (gz.shape[1], x.shape[1] // self.groups) + kernel
        self._check_shapes(f"conv{nd}d gradient", x.shape, w_shape, gz.shape)
        # The windows past the last output position (a stride that does not divide) are unused.
        cols = self._columns(x, kernel, gz.shape[2:])
        gz_rows = np.ascontiguousarray(gz.swapaxes(0, 1)).reshape(gz.shape[1], -1)  # (O, N * out)
        parts = [
            self._slice(gz_rows, g) @ self._slice(cols, g).reshape(-1, gz_rows.shape[1]).T for g in range(self.groups)
        ]
        result = parts[0] if self.groups == 1 else np.concatenate(parts)
        return [np.ascontiguousarray(result.reshape(w_shape), dtype=dtype)]

    def grad(self, node, output_grads):
        x, gz, *lengths = node.inputs
        (g,) = output_grads
        params = (self.pad, self.stride, self.dilation, self.groups)
        return [ConvGradInput(*params)(gz, g, *x.shape[2:]), Conv(*params)(x, g)] + [None] * len(lengths)

    def infix(self, node, show):
        x, gz, *lengths = node.inputs
        return call_text("conv_grad_filters", show(x), show(gz), **_params_text(self)), ATOM


def conv(x, w, pad, stride, dilation, groups):
    """Cross-correlation of ``x`` with ``w`` (see :class:`Conv`), parameters as tuples."""
    return Conv(tuple(pad), tuple(stride), tuple(dilation), int(groups))(x, w)


def params_problem(op: _ConvBase, inputs: list) -> str | None:
    """What is wrong with a convolution op's parameters for ``inputs`` (for graph files), or None."""
    nd = len(op.pad)
    if nd < 1 or not len(op.stride) == len(op.dilation) == nd:
        return "pad, stride and dilation differ in length"
    if min(op.stride) < 1 or min(op.dilation) < 1 or min(op.pad) < 0 or op.groups < 1:
        return "a stride, dilation or group count below 1, or a negative pad"
    if any(v.ndim != nd + 2 for v in inputs[:2]):
        return f"the first two inputs are not {nd + 2}-d"
    if len(inputs) != (2 if isinstance(op, Conv) else 2 + nd):
        return "a gradient takes one length input per spatial axis"
    return None
