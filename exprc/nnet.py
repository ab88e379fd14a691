"""Neural-network functions with Theano's names and semantics (``ex.nnet``).

Convolution and pooling are ops of their own (:mod:`exprc.ops.conv`, :mod:`exprc.ops.pool`);
the activations, losses and batch normalization are composed from elementwise ops and
reductions, so that they fuse into the back ends' kernels and differentiate for free.

>>> import numpy as np, exprc as ex
>>> x = ex.vector("x")
>>> ex.nnet.relu(x).eval({x: [-1.0, 2.0]})
array([0., 2.])
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .dtypes import is_float, is_integer
from .ops import elemwise as E
from .ops.construct import arange
from .ops.conv import Conv
from .ops.indexing import getitem
from .ops.pool import MODES, Pool
from .ops.rearrange import specify_shape
from .ops.reduction import log_softmax, logsumexp, mean, softmax, sum, var
from .ops.shape import dimshuffle
from .shapes import ShapeError, fmt_shape
from .tensor import TensorLike, TensorVariable, as_tensor, constant

__all__ = [
    "batch_normalization",
    "batch_normalization_test",
    "batch_normalization_train",
    "binary_crossentropy",
    "categorical_crossentropy",
    "conv1d",
    "conv2d",
    "conv3d",
    "dropout",
    "elu",
    "gelu",
    "hard_sigmoid",
    "log_softmax",
    "logsumexp",
    "one_hot",
    "pool_2d",
    "pool_3d",
    "relu",
    "selu",
    "sigmoid",
    "sigmoid_binary_crossentropy",
    "silu",
    "softmax",
    "softplus",
    "softsign",
]

sigmoid = E.ELEMWISE_FUNCTIONS["sigmoid"]
softplus = E.ELEMWISE_FUNCTIONS["softplus"]

# --- convolution -----------------------------------------------------------------


def _tuple(value, nd: int, what: str, name: str) -> tuple[int, ...]:
    values = (value,) * nd if isinstance(value, (int, np.integer)) else tuple(value)
    if len(values) != nd or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        raise ValueError(f"{what}: {name} must be an int or {nd} ints, got {value!r}")
    return tuple(int(v) for v in values)


def _with_hint(what: str, name: str, var: TensorVariable, hint) -> TensorVariable:
    """``var`` with the lengths a shape hint adds made static (and checked when called, as
    ``specify_shape`` does); a hint that contradicts a static length is an error."""
    if hint is None:
        return var
    hint = tuple(None if h is None else int(h) for h in hint)
    if len(hint) != var.ndim:
        raise ValueError(f"{what}: {name} {hint} has {len(hint)} entries; {var} is {var.ndim}-d")
    for s, h in zip(var.type.shape, hint):
        if s is not None and h is not None and s != h:
            raise ShapeError(f"{what}: {name} {hint} does not match {var} of shape {fmt_shape(var.type.shape)}")
    merged = tuple(s if s is not None else h for s, h in zip(var.type.shape, hint))
    return var if merged == var.type.shape else specify_shape(var, merged)


def _conv(
    nd, input, filters, input_shape, filter_shape, border_mode, subsample, filter_flip, filter_dilation, num_groups
):
    what = f"conv{nd}d"
    x, w = as_tensor(input), as_tensor(filters)
    for v, name in ((x, "input"), (w, "filters")):
        if v.ndim != nd + 2:
            raise ValueError(f"{what}: {name} {v} is {v.ndim}-d; expected {nd + 2}-d (batch, channels, {nd} spatial)")
    x = _with_hint(what, "input_shape", x, input_shape)
    w = _with_hint(what, "filter_shape", w, filter_shape)
    w_shape = w.type.shape
    stride = _tuple(subsample, nd, what, "subsample")
    dilation = _tuple(filter_dilation, nd, what, "filter_dilation")
    if min(stride) < 1:
        raise ValueError(f"{what}: subsample {stride} must be positive")
    if min(dilation) < 1:
        raise ValueError(f"{what}: filter_dilation {dilation} must be positive")
    if not isinstance(num_groups, (int, np.integer)) or num_groups < 1:
        raise ValueError(f"{what}: num_groups must be a positive int, got {num_groups!r}")
    if border_mode in ("full", "half"):
        kernel = w_shape[2:]
        if None in kernel:
            raise ValueError(
                f"{what}: border_mode {border_mode!r} needs the filters' spatial lengths when building; "
                f"filters {w} have shape {fmt_shape(w.type.shape)} (give filter_shape)"
            )
        pad = tuple(d * (k - 1) if border_mode == "full" else d * (k // 2) for d, k in zip(dilation, kernel))
    elif border_mode == "valid":
        pad = (0,) * nd
    elif isinstance(border_mode, str):
        raise ValueError(
            f"{what}: border_mode must be 'valid', 'full', 'half', an int or {nd} ints; got {border_mode!r}"
        )
    else:
        pad = _tuple(border_mode, nd, what, "border_mode")
        if min(pad) < 0:
            raise ValueError(f"{what}: border_mode {pad} must not be negative")
    if filter_flip:
        # True convolution is cross-correlation with the kernel reversed: a view.
        w = getitem(w, (slice(None), slice(None)) + (slice(None, None, -1),) * nd)
    return Conv(pad, stride, dilation, int(num_groups))(x, w)


def conv2d(
    input: TensorLike,
    filters: TensorLike,
    input_shape: Sequence[int | None] | None = None,
    filter_shape: Sequence[int | None] | None = None,
    border_mode: str | int | Sequence[int] = "valid",
    subsample: int | Sequence[int] = (1, 1),
    filter_flip: bool = True,
    filter_dilation: int | Sequence[int] = (1, 1),
    num_groups: int = 1,
) -> TensorVariable:
    """2-d convolution of ``input`` (batch, channels, rows, columns) with ``filters``
    (output channels, channels // num_groups, rows, columns), as Theano's ``conv2d``.

    ``border_mode``: ``"valid"`` (no padding), ``"full"`` (pad by the dilated kernel less one),
    ``"half"`` (by half of it), or zero padding per side as an int or a pair.
    ``filter_flip=True`` is true convolution, ``False`` cross-correlation. The shape hints
    (None for a free length) make lengths static, checked when the function is called.

    >>> import numpy as np, exprc as ex
    >>> x, w = ex.tensor4("x"), ex.tensor4("w")
    >>> y = ex.nnet.conv2d(x, w, filter_shape=(1, 1, 3, 3), border_mode="half")
    >>> y.eval({x: np.ones((1, 1, 3, 3)), w: np.ones((1, 1, 3, 3))})[0, 0]
    array([[4., 6., 4.],
           [6., 9., 6.],
           [4., 6., 4.]])
    """
    args = (input_shape, filter_shape, border_mode, subsample, filter_flip, filter_dilation, num_groups)
    return _conv(2, input, filters, *args)


def conv1d(
    input: TensorLike,
    filters: TensorLike,
    border_mode: str | int | Sequence[int] = "valid",
    subsample: int | Sequence[int] = 1,
    filter_flip: bool = True,
    filter_dilation: int | Sequence[int] = 1,
    num_groups: int = 1,
) -> TensorVariable:
    """1-d convolution of ``input`` (batch, channels, length) with ``filters``; parameters as
    :func:`conv2d`'s with one spatial axis.

    >>> import numpy as np, exprc as ex
    >>> x, w = ex.tensor3("x"), ex.tensor3("w")
    >>> ex.nnet.conv1d(x, w).eval({x: [[[1.0, 2.0, 3.0]]], w: [[[1.0, 0.0]]]})
    array([[[2., 3.]]])
    """
    return _conv(1, input, filters, None, None, border_mode, subsample, filter_flip, filter_dilation, num_groups)


def conv3d(
    input: TensorLike,
    filters: TensorLike,
    border_mode: str | int | Sequence[int] = "valid",
    subsample: int | Sequence[int] = (1, 1, 1),
    filter_flip: bool = True,
    filter_dilation: int | Sequence[int] = (1, 1, 1),
    num_groups: int = 1,
) -> TensorVariable:
    """3-d convolution of ``input`` (batch, channels, depth, rows, columns) with ``filters``;
    parameters as :func:`conv2d`'s with three spatial axes.

    >>> import numpy as np, exprc as ex
    >>> x, w = ex.tensor("x", ndim=5), ex.tensor("w", ndim=5)
    >>> ex.nnet.conv3d(x, w).eval({x: np.ones((1, 1, 2, 2, 2)), w: np.ones((1, 1, 2, 2, 2))}).ravel()
    array([8.])
    """
    return _conv(3, input, filters, None, None, border_mode, subsample, filter_flip, filter_dilation, num_groups)


# --- pooling ---------------------------------------------------------------------


def _pool(nd, input, ws, ignore_border, stride, pad, mode):
    what = f"pool_{nd}d"
    x = as_tensor(input)
    ws = _tuple(ws, nd, what, "ws")
    stride = ws if stride is None else _tuple(stride, nd, what, "stride")
    pad = _tuple(pad, nd, what, "pad")
    if mode not in MODES:
        raise ValueError(f"{what}: mode must be one of {MODES}, got {mode!r}")
    if min(ws) < 1 or min(stride) < 1:
        raise ValueError(f"{what}: ws {ws} and stride {stride} must be positive")
    if x.ndim < nd:
        raise ValueError(f"{what}: {x} is {x.ndim}-d; expected at least {nd} axes to pool")
    return Pool(ws, stride, pad, bool(ignore_border), mode)(x)


def pool_2d(
    input: TensorLike,
    ws: int | Sequence[int],
    ignore_border: bool = True,
    stride: int | Sequence[int] | None = None,
    pad: int | Sequence[int] = (0, 0),
    mode: str = "max",
) -> TensorVariable:
    """Pooling of the last two axes of ``input`` over windows ``ws``, as Theano's ``pool_2d``.

    ``stride`` defaults to ``ws``; ``pad`` (below ``ws``, only with ``ignore_border=True``)
    adds that many rows and columns on each side. ``mode``: ``"max"``, ``"sum"``,
    ``"average_inc_pad"`` (padding counts in the average) or ``"average_exc_pad"``.
    ``ignore_border=False`` keeps the partial windows at the end (Theano's output lengths).
    Max pooling's gradient goes to the first maximum of each window.

    >>> import numpy as np, exprc as ex
    >>> x = ex.matrix("x")
    >>> ex.nnet.pool_2d(x, (2, 2), ignore_border=False).eval({x: np.arange(9.0).reshape(3, 3)})
    array([[4., 5.],
           [7., 8.]])
    """
    return _pool(2, input, ws, ignore_border, stride, pad, mode)


def pool_3d(
    input: TensorLike,
    ws: int | Sequence[int],
    ignore_border: bool = True,
    stride: int | Sequence[int] | None = None,
    pad: int | Sequence[int] = (0, 0, 0),
    mode: str = "max",
) -> TensorVariable:
    """Pooling of the last three axes of ``input``; parameters as :func:`pool_2d`'s.

    >>> import numpy as np, exprc as ex
    >>> x = ex.tensor3("x")
    >>> ex.nnet.pool_3d(x, 2, mode="sum").eval({x: np.ones((2, 2, 2))})
    array([[[8.]]])
    """
    return _pool(3, input, ws, ignore_border, stride, pad, mode)


# --- activations -----------------------------------------------------------------


def relu(x: TensorLike, alpha: float = 0) -> TensorVariable:
    """``max(x, 0)``, or ``x`` where positive and ``alpha * x`` elsewhere (leaky ReLU).

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> ex.nnet.relu(x, alpha=0.1).eval({x: [-1.0, 2.0]})
    array([-0.1,  2. ])
    """
    x = as_tensor(x)
    if isinstance(alpha, (int, float)) and alpha == 0:
        return E.maximum(x, 0)
    return E.where(x > 0, x, alpha * x)


def elu(x: TensorLike, alpha: float = 1.0) -> TensorVariable:
    """``x`` where positive, ``alpha * (exp(x) - 1)`` elsewhere.

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> ex.nnet.elu(x).eval({x: [0.0, 2.0]})
    array([0., 2.])
    """
    x = as_tensor(x)
    return E.where(x > 0, x, alpha * E.expm1(x))


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(x: TensorLike) -> TensorVariable:
    """Scaled ELU with the self-normalizing constants of Klambauer et al. (2017).

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> ex.nnet.selu(x).eval({x: [1.0]})
    array([1.05070099])
    """
    return _SELU_SCALE * elu(x, _SELU_ALPHA)


def gelu(x: TensorLike, approximate: bool = False) -> TensorVariable:
    """``x * Phi(x)`` (Phi the normal distribution function), exactly through ``erf``, or with
    ``approximate=True`` through ``tanh`` as in Hendrycks and Gimpel (2016).

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> ex.nnet.gelu(x).eval({x: [0.0, 1.0]})
    array([0.        , 0.84134475])
    """
    x = as_tensor(x)
    if approximate:
        inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)
        return 0.5 * x * (1 + E.tanh(inner))
    return 0.5 * x * (1 + E.erf(x * (1 / math.sqrt(2))))


def silu(x: TensorLike) -> TensorVariable:
    """``x * sigmoid(x)`` (also called swish).

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> ex.nnet.silu(x).eval({x: [0.0]})
    array([0.])
    """
    x = as_tensor(x)
    return x * sigmoid(x)


def softsign(x: TensorLike) -> TensorVariable:
    """``x / (1 + |x|)``.

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> ex.nnet.softsign(x).eval({x: [-1.0, 3.0]})
    array([-0.5 ,  0.75])
    """
    x = as_tensor(x)
    return x / (1 + E.absolute(x))


def hard_sigmoid(x: TensorLike) -> TensorVariable:
    """Theano's piecewise-linear sigmoid: ``clip(0.2 * x + 0.5, 0, 1)``.

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> ex.nnet.hard_sigmoid(x).eval({x: [-5.0, 0.0, 1.0]})
    array([0. , 0.5, 0.7])
    """
    x = as_tensor(x)
    return E.clip(0.2 * x + 0.5, 0, 1)


def dropout(x: TensorLike, p: float, stream) -> TensorVariable:
    """``x`` with each entry zeroed with probability ``p`` and the others scaled by
    ``1 / (1 - p)`` (inverted dropout), the mask drawn from ``stream`` (an
    ``ex.random.RandomStream``) on every call; the gradient goes through the kept entries.

    >>> import numpy as np, exprc as ex
    >>> x = ex.vector("x")
    >>> y = ex.nnet.dropout(x, 0.5, ex.random.RandomStream(seed=0))
    >>> sorted(set(ex.function([x], y)(np.ones(100)).tolist()))
    [0.0, 2.0]
    """
    x = as_tensor(x)
    if not is_float(x.dtype):
        raise TypeError(f"dropout: {x} is {x.dtype}; expected a floating-point tensor")
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 <= p < 1:
        raise ValueError(f"dropout: the probability of dropping must be a number in [0, 1), got {p!r}")
    if p == 0:
        return x
    keep = stream.bernoulli(1 - p, size=x.shape)
    return E.where(keep, x * (1 / (1 - p)), 0)


# --- losses ----------------------------------------------------------------------


def one_hot(y: TensorLike, n: TensorLike, dtype: str = "float64") -> TensorVariable:
    """Integer labels ``y`` as rows of ``n`` entries, 1 at the label and 0 elsewhere
    (Theano's ``to_one_hot``); a new last axis of length ``n`` (an int, or an integer scalar
    known only when called).

    >>> import exprc as ex
    >>> y = ex.vector("y", dtype="int64")
    >>> ex.nnet.one_hot(y, 3).eval({y: [2, 0]})
    array([[0., 0., 1.],
           [1., 0., 0.]])
    """
    y = as_tensor(y)
    if not is_integer(y.dtype):
        raise TypeError(f"one_hot: labels {y} are {y.dtype}; expected an integer tensor")
    if isinstance(n, (int, np.integer)) and not isinstance(n, bool):
        if n < 0:
            raise ValueError(f"one_hot: the number of classes must be at least 0, got {n}")
        classes = constant(np.arange(int(n), dtype=y.dtype))
    else:
        n = as_tensor(n)
        if n.ndim != 0 or not is_integer(n.dtype):
            raise ValueError(f"one_hot: the number of classes must be an int or an integer scalar, got {n} ({n.type})")
        classes = arange(n, dtype=y.dtype)
    return E.astype(E.eq(dimshuffle(y, tuple(range(y.ndim)) + ("x",)), classes), dtype)


def categorical_crossentropy(coding_dist: TensorLike, true_dist: TensorLike) -> TensorVariable:
    """``-sum(true_dist * log(coding_dist))`` over the last axis; ``true_dist`` is a
    distribution per row, or an integer label per row.
    From logits, ``-(one_hot * log_softmax(logits)).sum(-1)`` is the stable form.

    >>> import numpy as np, exprc as ex
    >>> p, y = ex.tensor("p", shape=(None, 2)), ex.vector("y", dtype="int64")
    >>> ex.nnet.categorical_crossentropy(p, y).eval({p: [[0.5, 0.5], [0.1, 0.9]], y: [0, 1]})
    array([0.69314718, 0.10536052])
    """
    p, t = as_tensor(coding_dist), as_tensor(true_dist)
    if not is_float(p.dtype):
        raise TypeError(f"categorical_crossentropy: coding_dist {p} is {p.dtype}; expected floating point")
    if is_integer(t.dtype):
        if t.ndim != p.ndim - 1:
            raise ValueError(
                f"categorical_crossentropy: integer labels {t} must have one axis less than coding_dist {p}"
            )
        n = p.type.shape[-1] if p.type.shape[-1] is not None else p.shape[-1]
        # Picks the label's probability alone: a zero elsewhere gives no 0 * log(0).
        return -E.log(sum(p * one_hot(t, n, p.dtype), axis=-1))
    if t.ndim != p.ndim:
        raise ValueError(f"categorical_crossentropy: true_dist {t} must have coding_dist {p}'s {p.ndim} axes")
    return -sum(t * E.log(p), axis=-1)


def binary_crossentropy(output: TensorLike, target: TensorLike) -> TensorVariable:
    """``-(target * log(output) + (1 - target) * log(1 - output))``, elementwise.

    >>> import exprc as ex
    >>> o = ex.vector("o")
    >>> ex.nnet.binary_crossentropy(o, 1.0).eval({o: [0.5]})
    array([0.69314718])
    """
    o, t = as_tensor(output), as_tensor(target)
    return -(t * E.log(o) + (1 - t) * E.log1p(-o))


def sigmoid_binary_crossentropy(output: TensorLike, target: TensorLike) -> TensorVariable:
    """``binary_crossentropy(sigmoid(output), target)`` for logits ``output``, computed
    stably as ``softplus(output) - target * output``.

    >>> import exprc as ex
    >>> o = ex.vector("o")
    >>> ex.nnet.sigmoid_binary_crossentropy(o, 0.0).eval({o: [1000.0]})
    array([1000.])
    """
    o, t = as_tensor(output), as_tensor(target)
    return softplus(o) - t * o


# --- batch normalization -----------------------------------------------------------


def batch_normalization(
    inputs: TensorLike, gamma: TensorLike, beta: TensorLike, mean: TensorLike, std: TensorLike
) -> TensorVariable:
    """``(inputs - mean) * (gamma / std) + beta`` (Theano's ``batch_normalization``), all
    broadcast against ``inputs``.

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> ex.nnet.batch_normalization(x, 2.0, 1.0, 3.0, 0.5).eval({x: [3.0, 4.0]})
    array([1., 5.])
    """
    x = as_tensor(inputs)
    return (x - mean) * (as_tensor(gamma) / std) + beta


def _bn_axes(axes, ndim: int, what: str) -> tuple[int, ...]:
    if axes == "per-activation":
        return (0,)
    if axes == "spatial":
        return (0,) + tuple(range(2, ndim))
    if isinstance(axes, str):
        raise ValueError(f"{what}: axes must be 'per-activation', 'spatial' or a tuple of ints, got {axes!r}")
    return tuple(sorted(int(a) % ndim for a in axes))


def batch_normalization_train(
    inputs: TensorLike,
    gamma: TensorLike,
    beta: TensorLike,
    axes: str | Sequence[int] = "per-activation",
    epsilon: float = 1e-4,
    running_average_factor: float = 0.1,
    running_mean: TensorLike | None = None,
    running_var: TensorLike | None = None,
) -> tuple[TensorVariable, ...]:
    """Batch normalization as in training (Theano's ``batch_normalization_train``): normalize
    by the batch's mean and variance over ``axes`` (``"per-activation"``: axis 0;
    ``"spatial"``: axis 0 and all after 1). Returns ``(out, mean, invstd)``, mean and invstd
    with the reduced axes kept; with ``running_mean`` and ``running_var`` also their updated
    values (the variance's update unbiased, as Theano's).

    >>> import exprc as ex
    >>> x = ex.matrix("x")
    >>> out, m, invstd = ex.nnet.batch_normalization_train(x, 1.0, 0.0, epsilon=0.0)
    >>> out.eval({x: [[1.0], [3.0]]}).ravel()
    array([-1.,  1.])
    """
    x = as_tensor(inputs)
    what = "batch_normalization_train"
    axes = _bn_axes(axes, x.ndim, what)
    m = mean(x, axes, keepdims=True)
    v = var(x, axes, keepdims=True)
    invstd = 1 / E.sqrt(v + epsilon)
    out = (x - m) * (as_tensor(gamma) * invstd) + beta
    if running_mean is None and running_var is None:
        return out, m, invstd
    if running_mean is None or running_var is None:
        raise ValueError(f"{what}: give both running_mean and running_var, or neither")
    count = 1
    for a in axes:
        count = count * x.shape[a]
    unbiased = v * (count / E.maximum(count - 1, 1))
    f = running_average_factor
    new_mean = as_tensor(running_mean) * (1 - f) + m * f
    new_var = as_tensor(running_var) * (1 - f) + unbiased * f
    return out, m, invstd, new_mean, new_var


def batch_normalization_test(
    inputs: TensorLike,
    gamma: TensorLike,
    beta: TensorLike,
    mean: TensorLike,
    var: TensorLike,
    axes: str | Sequence[int] = "per-activation",
    epsilon: float = 1e-4,
) -> TensorVariable:
    """Batch normalization as in inference (Theano's ``batch_normalization_test``):
    ``(inputs - mean) * gamma / sqrt(var + epsilon) + beta`` with given statistics
    (``axes`` is accepted for Theano's signature; the statistics broadcast as given).

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> ex.nnet.batch_normalization_test(x, 1.0, 0.0, 1.0, 4.0, epsilon=0.0).eval({x: [3.0]})
    array([1.])
    """
    x = as_tensor(inputs)
    _bn_axes(axes, x.ndim, "batch_normalization_test")
    return (x - mean) * (as_tensor(gamma) / E.sqrt(as_tensor(var) + epsilon)) + beta
