"""Reductions: the primitive ones (sum, prod, max, min, all, any, argmax, argmin)
and those composed from them (mean, var, std, logsumexp, softmax, log_softmax).

``axis`` is an int, a negative int, a tuple or None (all axes), and
``keepdims`` keeps reduced axes with length 1, as in NumPy. The composed
reductions are ordinary graphs of primitives: the C back end fuses them into
one or two passes, and their gradients follow from the primitives'.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any as _Any
from typing import ClassVar

import numpy as np

from ..dtypes import as_dtype, is_float, probe_dtype
from ..graph import Apply, Op
from ..printing import ATOM, call_text, lazy
from ..shapes import normalize_axis
from ..tensor import Axis, DType, TensorLike, TensorType, TensorVariable, as_tensor, constant
from . import elemwise as E
from .markers import stop_gradient
from .shape import SumToShape, broadcast_to, dimshuffle, shape_i, sum_to  # noqa: F401 - also importable from here


def _reduced_shape(shape, axes, keepdims):
    if keepdims:
        return tuple(1 if a in axes else d for a, d in enumerate(shape))
    return tuple(d for a, d in enumerate(shape) if a not in axes)


@dataclass(frozen=True)
class Reduce(Op):
    """Reduce the axes ``axis`` (a sorted tuple) of the input with a NumPy reduction."""

    axis: tuple
    keepdims: bool = False
    dtype: str | None = None

    numpy: ClassVar[Callable[..., _Any] | None] = None  # the NumPy function; set by each subclass

    def make_node(self, x):
        if self.dtype is not None:
            dtype = self.dtype
        else:
            dtype = probe_dtype(type(self).numpy, (x.dtype,))
        shape = _reduced_shape(x.type.shape, self.axis, self.keepdims)
        return Apply(self, [x], [TensorType(dtype, shape)])

    def perform(self, node, inputs):
        kwargs = {"dtype": self.dtype} if self.dtype is not None else {}
        if getattr(self, "initial", None) is not None:
            kwargs["initial"] = self.initial
        out = type(self).numpy(inputs[0], axis=self.axis, keepdims=self.keepdims, **kwargs)
        return [np.asarray(out).astype(node.outputs[0].dtype, copy=False)]

    def infix(self, node, show):
        (x,) = node.inputs
        axis = None if self.axis == tuple(range(x.ndim)) else self.axis
        axis = axis[0] if axis is not None and len(axis) == 1 else axis
        method = type(self).__name__.lower()
        text = call_text(
            method, axis=axis, keepdims=self.keepdims or None, dtype=self.dtype, initial=getattr(self, "initial", None)
        )
        return f"{show(x, ATOM)}.{text}", ATOM

    def kept(self, node, var):
        """``var`` (shaped like this reduction's output) with the reduced axes back, of length 1."""
        if self.keepdims:
            return var
        rest = iter(range(var.ndim))
        return dimshuffle(var, ["x" if a in self.axis else next(rest) for a in range(node.inputs[0].ndim)])

    def grad(self, node, output_grads):
        return [None]  # the logical reductions; the arithmetic ones say otherwise


@dataclass(frozen=True)
class Sum(Reduce):
    numpy = staticmethod(np.sum)

    def grad(self, node, output_grads):
        """Each element gets the gradient of the sum it went into."""
        (x,), (gz,) = node.inputs, output_grads
        if not is_float(x.dtype):
            return [None]
        return [broadcast_to(self.kept(node, gz), x.shape)]


@dataclass(frozen=True)
class Prod(Reduce):
    numpy = staticmethod(np.prod)

    def grad(self, node, output_grads):
        """The product of the other elements: ``prod / x`` where the slice has no zero; where
        it has one zero, that element gets the product of the others and the rest 0; where
        it has two or more, every element gets 0."""
        (x,), (gz,) = node.inputs, output_grads
        if not is_float(x.dtype):
            return [None]
        is_zero = E.eq(x, 0)
        zeros = sum(E.astype(is_zero, x.dtype), self.axis, keepdims=True)
        nonzero = E.where(is_zero, 1, x)
        rest = Prod(self.axis, True)(nonzero)
        others = E.where(E.eq(zeros, 0), rest / nonzero, E.where(E.logical_and(is_zero, E.eq(zeros, 1)), rest, 0))
        return [self.kept(node, gz) * others]


@dataclass(frozen=True)
class Max(Reduce):
    """The largest element; ``initial``, when given, is included as NumPy's is, so that
    a zero-size axis gives it instead of an error."""

    initial: float | None = None
    numpy = staticmethod(np.max)

    def grad(self, node, output_grads):
        return [_extreme_grad(self, node, output_grads)]


@dataclass(frozen=True)
class Min(Reduce):
    """The smallest element; ``initial`` as for :class:`Max`."""

    initial: float | None = None
    numpy = staticmethod(np.min)

    def grad(self, node, output_grads):
        return [_extreme_grad(self, node, output_grads)]


def _extreme_grad(op, node, output_grads):
    """The gradient of max or min: to the elements equal to the result, shared equally among
    ties (so the gradients of a slice add up to its output's, as a subgradient must)."""
    (x,), (gz,) = node.inputs, output_grads
    if not is_float(x.dtype):
        return None
    chosen = E.astype(E.eq(x, op.kept(node, node.outputs[0])), x.dtype)
    return op.kept(node, gz) * chosen / sum(chosen, op.axis, keepdims=True)


@dataclass(frozen=True)
class All(Reduce):
    numpy = staticmethod(np.all)


@dataclass(frozen=True)
class Any(Reduce):
    numpy = staticmethod(np.any)


def _reduce(cls, x, axis, keepdims, dtype=None, what=None):
    x = as_tensor(x)
    axes = normalize_axis(axis, x.ndim, lazy("{} of {}", what or cls.__name__.lower(), x))
    if dtype is not None:
        dtype = as_dtype(dtype, f"{what} dtype")
    return cls(axes, bool(keepdims), dtype)(x)


def sum(x: TensorLike, axis: Axis = None, keepdims: bool = False, dtype: DType | None = None) -> TensorVariable:  # noqa: A001 - NumPy's name
    """Sum over ``axis`` (NumPy's ``sum``: integers accumulate in int64, bool counts).

    >>> import exprc as ex
    >>> x = ex.matrix("x")
    >>> ex.sum(x, axis=1).eval({x: [[1.0, 2.0], [3.0, 4.0]]})
    array([3., 7.])
    """
    return _reduce(Sum, x, axis, keepdims, dtype, "sum")


def prod(x: TensorLike, axis: Axis = None, keepdims: bool = False, dtype: DType | None = None) -> TensorVariable:
    """Product over ``axis`` (NumPy's ``prod``).

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> ex.prod(x).eval({x: [2.0, 3.0]})
    array(6.)
    """
    return _reduce(Prod, x, axis, keepdims, dtype, "prod")


def max(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> TensorVariable:  # noqa: A001
    """Largest element over ``axis``; NaN propagates (NumPy's ``max``).

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> ex.max(x).eval({x: [2.0, 3.0]})
    array(3.)
    """
    return _reduce(Max, x, axis, keepdims, None, "max")


def min(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> TensorVariable:  # noqa: A001
    """Smallest element over ``axis``; NaN propagates (NumPy's ``min``).

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> ex.min(x).eval({x: [2.0, 3.0]})
    array(2.)
    """
    return _reduce(Min, x, axis, keepdims, None, "min")


def all(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> TensorVariable:  # noqa: A001
    """Whether every element over ``axis`` is true (NumPy's ``all``).

    >>> import exprc as ex
    >>> ex.all(ex.bvector("b")).dtype
    'bool'
    """
    return _reduce(All, x, axis, keepdims, None, "all")


def any(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> TensorVariable:  # noqa: A001
    """Whether some element over ``axis`` is true (NumPy's ``any``).

    >>> import exprc as ex
    >>> ex.any(ex.vector("v") > 0).dtype
    'bool'
    """
    return _reduce(Any, x, axis, keepdims, None, "any")


@dataclass(frozen=True)
class ArgReduce(Op):
    """Index of the extreme element along one axis, or of the flattened input when ``axis`` is None."""

    axis: int | None
    keepdims: bool = False

    numpy: ClassVar[Callable[..., _Any] | None] = None

    def make_node(self, x):
        if self.axis is None:
            shape = (1,) * x.ndim if self.keepdims else ()
        else:
            shape = _reduced_shape(x.type.shape, (self.axis,), self.keepdims)
        return Apply(self, [x], [TensorType("int64", shape)])

    def perform(self, node, inputs):
        out = type(self).numpy(inputs[0], axis=self.axis, keepdims=self.keepdims)
        return [np.asarray(out, dtype=np.int64)]

    def infix(self, node, show):
        method = type(self).__name__.lower()
        return f"{show(node.inputs[0], ATOM)}.{call_text(method, axis=self.axis, keepdims=self.keepdims or None)}", ATOM

    def grad(self, node, output_grads):
        return [None]  # an index has no gradient


@dataclass(frozen=True)
class ArgMax(ArgReduce):
    numpy = staticmethod(np.argmax)


@dataclass(frozen=True)
class ArgMin(ArgReduce):
    numpy = staticmethod(np.argmin)


def _arg_reduce(cls, x, axis, keepdims, what):
    x = as_tensor(x)
    if axis is not None:
        if isinstance(axis, (tuple, list)):
            raise TypeError(f"{what} of {x}: axis must be an int or None, got {axis!r}")
        axis = normalize_axis(axis, x.ndim, lazy("{} of {}", what, x))[0]
    return cls(axis, bool(keepdims))(x)


def argmax(x: TensorLike, axis: int | None = None, keepdims: bool = False) -> TensorVariable:
    """Index of the largest element along ``axis`` (of the flattened tensor when None).

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> ex.argmax(x).eval({x: [1.0, 5.0, 2.0]})
    array(1)
    """
    return _arg_reduce(ArgMax, x, axis, keepdims, "argmax")


def argmin(x: TensorLike, axis: int | None = None, keepdims: bool = False) -> TensorVariable:
    """Index of the smallest element along ``axis`` (of the flattened tensor when None).

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> ex.argmin(x).eval({x: [1.0, 5.0, 0.5]})
    array(2)
    """
    return _arg_reduce(ArgMin, x, axis, keepdims, "argmin")


# --- composed reductions ---------------------------------------------------


def _count(x: TensorVariable, axes: tuple[int, ...]) -> TensorVariable:
    """The number of elements in ``axes`` of ``x``: a weak int, constant where static."""
    count: TensorVariable = constant(1)
    for a in axes:
        count = count * shape_i(x, a)
    return count


def _float_input(x: TensorVariable) -> TensorVariable:
    """``x`` as NumPy's mean sees it: integers and bools in float64."""
    return x if is_float(x.dtype) else E.astype(x, "float64")


def mean(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> TensorVariable:
    """Arithmetic mean over ``axis`` (NumPy's ``mean``: integers give float64, float16 accumulates in float32).

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> ex.mean(x).eval({x: [1.0, 2.0, 6.0]})
    array(3.)
    """
    x = as_tensor(x)
    axes = normalize_axis(axis, x.ndim, lazy("mean of {}", x))
    xf = _float_input(x)
    accumulate = "float32" if xf.dtype == "float16" else None
    total = sum(xf, axes, keepdims, dtype=accumulate)
    return E.astype(total / _count(x, axes), xf.dtype)


def var(x: TensorLike, axis: Axis = None, keepdims: bool = False, ddof: int = 0) -> TensorVariable:
    """Variance over ``axis``, dividing by ``n - ddof`` (NumPy's ``var``).

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> ex.var(x).eval({x: [1.0, 3.0]})
    array(1.)
    """
    x = as_tensor(x)
    axes = normalize_axis(axis, x.ndim, lazy("var of {}", x))
    xf = _float_input(x)
    deviation = xf - mean(xf, axes, keepdims=True)
    # As in NumPy, a divisor n - ddof below zero counts as zero (giving inf or NaN).
    return sum(E.square(deviation), axes, keepdims) / E.maximum(_count(x, axes) - ddof, 0)


def std(x: TensorLike, axis: Axis = None, keepdims: bool = False, ddof: int = 0) -> TensorVariable:
    """Standard deviation over ``axis`` (NumPy's ``std``).

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> ex.std(x).eval({x: [1.0, 3.0]})
    array(1.)
    """
    return E.sqrt(var(x, axis, keepdims, ddof))


def _exp_input(x: TensorVariable) -> TensorVariable:
    """``x`` in the floating dtype NumPy's ``exp`` gives it (integers in float64, as SciPy does)."""
    return x if is_float(x.dtype) else E.astype(x, probe_dtype(np.exp, (x.dtype,)))


def _finite_max(x: TensorVariable, axes: tuple[int, ...]) -> TensorVariable:
    """The max over ``axes`` (kept), replaced by 0 where it is infinite, so that
    subtracting it avoids overflow without turning -inf rows into NaN. ``x`` is
    floating; a zero-size axis gives 0 (its max is -inf), not an error.

    The result is a shift that cancels out of every formula using it, so no gradient
    flows through it (as in JAX): a gradient through the max would only add terms
    that sum to zero, at the cost of several kernels."""
    m = Max(axes, True, None, -np.inf)(x)
    return stop_gradient(E.where(E.isfinite(m), m, 0))


def logsumexp(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> TensorVariable:
    """``log(sum(exp(x)))`` over ``axis``, computed without overflow (SciPy's ``logsumexp``).

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> ex.logsumexp(x).eval({x: [1000.0, 1000.0]})
    array(1000.69314718)
    """
    x = as_tensor(x)
    axes = normalize_axis(axis, x.ndim, lazy("logsumexp of {}", x))
    x = _exp_input(x)
    shift = _finite_max(x, axes)
    out = E.log(sum(E.exp(x - shift), axes, keepdims=True)) + shift
    return out if keepdims else dimshuffle(out, [a for a in range(x.ndim) if a not in axes])


def softmax(x: TensorLike, axis: Axis = -1) -> TensorVariable:
    """``exp(x) / sum(exp(x))`` along ``axis`` (the last by default, as in JAX), without overflow.

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> ex.softmax(x).eval({x: [0.0, 0.0]})
    array([0.5, 0.5])
    """
    x = as_tensor(x)
    axes = normalize_axis(axis, x.ndim, lazy("softmax of {}", x))
    x = _exp_input(x)
    e = E.exp(x - _finite_max(x, axes))
    return e / sum(e, axes, keepdims=True)


def log_softmax(x: TensorLike, axis: Axis = -1) -> TensorVariable:
    """``log(softmax(x))`` along ``axis``, computed stably.

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> ex.log_softmax(x).eval({x: [0.0, 0.0]})
    array([-0.69314718, -0.69314718])
    """
    x = as_tensor(x)
    axes = normalize_axis(axis, x.ndim, lazy("log_softmax of {}", x))
    x = _exp_input(x)
    return x - logsumexp(x, axes, keepdims=True)
