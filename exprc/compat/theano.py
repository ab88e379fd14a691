"""Theano's public layout on exprc: ``install()`` registers the module names ``theano``,
``theano.tensor``, ``theano.tensor.nnet``, ``theano.tensor.signal.pool``,
``theano.tensor.shared_randomstreams``, ``theano.sandbox.rng_mrg``, ``theano.ifelse``,
``theano.scan_module``, ``theano.printing``, ``theano.gradient`` (and a few more), so that
an unchanged program's ``import theano`` gets exprc.

Only names, argument orders and Theano's semantics where they differ from exprc's live
here; every computation is exprc's own. A Theano name exprc does not provide raises an
error naming it and saying what to use instead. See docs/coming-from-theano.md.

>>> from exprc.compat import theano as compat
>>> theano = compat.install()
>>> import theano.tensor as T
>>> x = T.dvector("x")
>>> f = theano.function([x], T.sqr(x).sum())
>>> f([1.0, 2.0])
array(5.)
>>> compat.uninstall()
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
import types
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import exprc as ex
from exprc.dtypes import PREFIXES
from exprc.tensor import TensorType

# The module itself (the package's name `tensor` is the constructor function).
_TENSOR = importlib.import_module("exprc.tensor")

#: A Theano name exprc leaves out -> what to use instead.
HINTS = {
    "theano.sandbox.cuda": "exprc picks the GPU per function: pass device='cuda' to theano.function",
    "theano.gpuarray": "exprc picks the GPU per function: pass device='cuda' to theano.function",
    "theano.sandbox.gpuarray": "exprc picks the GPU per function: pass device='cuda' to theano.function",
    "theano.tensor.nonzero": "its length depends on the data; keep the shape with T.switch (ex.where)",
    "theano.tensor.unique": "its length depends on the data, and exprc's shapes follow from the inputs'",
    "theano.tensor.nnet.crossentropy_softmax_1hot": "write T.nnet.categorical_crossentropy(T.nnet.softmax(x), y)",
    "theano.gradient.grad_clip": "clip the gradient itself: T.clip(T.grad(cost, w), lower, upper)",
    "theano.compile.debugmode": "theano.function(..., mode='DebugMode') runs exprc's checking mode",
}


class TheanoModule(types.ModuleType):
    """A module of the layer; a name it lacks raises an error that names it and says what to use."""

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        full = f"{self.__name__}.{attr}"
        hint = HINTS.get(full)
        raise AttributeError(
            f"{full} is not provided by exprc's Theano layer"
            + (f": {hint}" if hint else "; see docs/coming-from-theano.md for the names it maps")
        )


def _module(name: str, doc: str, names: dict[str, Any]) -> TheanoModule:
    module = TheanoModule(name, doc)
    module.__dict__.update(names)
    # A package (with nothing on disk), so that importing a submodule it lacks reaches _Refuse.
    module.__path__ = []
    return module


# --- theano.config -------------------------------------------------------------------


class _Flags(types.SimpleNamespace):
    """Theano's groups of flags (``config.warn.*``, ``config.gcc.*``): every flag reads False."""

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return False


class TheanoConfig:
    """``theano.config``: ``floatX`` is exprc's :data:`exprc.config`'s; the other flags the
    programs read hold Theano's defaults (exprc picks the device per function)."""

    _READ_ONLY = {
        "device": "cpu",
        "mode": "FAST_RUN",
        "optimizer": "fast_run",
        "exception_verbosity": "low",
        "compute_test_value": "off",
        "print_test_value": False,
        "openmp": False,
        "cxx": "",
        "on_unused_input": "raise",
        "allow_gc": True,
        "cast_policy": "custom",
    }

    def __init__(self) -> None:
        object.__setattr__(self, "warn", _Flags())
        object.__setattr__(self, "gcc", _Flags())
        object.__setattr__(self, "blas", _Flags(ldflags=""))

    @property
    def floatX(self) -> str:  # noqa: N802 - Theano's name
        return ex.config.floatX

    @floatX.setter
    def floatX(self, value: str) -> None:  # noqa: N802
        ex.config.floatX = value

    def __getattr__(self, attr: str) -> Any:
        if attr in self._READ_ONLY:
            return self._READ_ONLY[attr]
        raise AttributeError(f"theano.config.{attr} is not a flag exprc's Theano layer knows")

    def __setattr__(self, attr: str, value: Any) -> None:
        if attr == "floatX":
            ex.config.floatX = value
        elif attr == "device" and value != "cpu":
            raise ValueError(
                f"theano.config.device={value!r}: exprc picks the device per function; "
                "pass device='cuda' to theano.function"
            )
        elif attr in self._READ_ONLY:
            warnings.warn(f"theano.config.{attr} has no effect on exprc", stacklevel=2)
        else:
            raise AttributeError(f"theano.config.{attr} is not a flag exprc's Theano layer knows")


config = TheanoConfig()


# --- theano.function and friends -----------------------------------------------------

#: Theano's compilation modes -> exprc's ``mode`` (None: compiled, no checking).
MODES = {
    None: None,
    "FAST_RUN": None,
    "FAST_COMPILE": None,
    "Mode": None,
    "DebugMode": "check",
    "DEBUG_MODE": "check",
    "NanGuardMode": "nanguard",
}


def function(
    inputs: Sequence[Any],
    outputs: Any = None,
    mode: Any = None,
    updates: Any = None,
    givens: Any = None,
    no_default_updates: bool = False,
    accept_inplace: bool = False,
    name: str | None = None,
    rebuild_strict: bool = True,
    allow_input_downcast: bool | None = None,
    profile: Any = None,
    on_unused_input: str | None = None,
    device: str | None = None,
) -> ex.Function:
    """Theano's ``theano.function``: exprc's :func:`exprc.function` with Theano's arguments.
    ``mode`` names Theano's modes (``DebugMode`` checks every node against NumPy)."""
    mode_name = getattr(mode, "name", mode)
    if mode_name not in MODES:
        raise ValueError(f"theano.function: mode {mode_name!r} is not one of {sorted(m for m in MODES if m)}")
    if isinstance(updates, dict):
        updates = list(updates.items())
    return ex.function(
        list(inputs),
        [] if outputs is None else outputs,
        updates=updates,
        givens=givens,
        name=name,
        allow_input_downcast=bool(allow_input_downcast),
        mode=MODES[mode_name],
        device=device,
        no_default_updates=no_default_updates,
    )


def clone(output: Any, replace: Any = None, strict: bool = True, share_inputs: bool = True) -> Any:
    """Theano's ``theano.clone``: ``output`` with the variables of ``replace`` substituted."""
    pairs = dict(replace.items() if isinstance(replace, dict) else replace or [])
    if not pairs:
        return output
    listed = list(output) if isinstance(output, (list, tuple)) else [output]
    rebuilt = ex.substitute(listed, {k: ex.as_tensor(v) for k, v in pairs.items()})
    return rebuilt if isinstance(output, (list, tuple)) else rebuilt[0]


# --- theano.tensor -------------------------------------------------------------------

_KINDS = {
    "scalar": (),
    "vector": (None,),
    "matrix": (None, None),
    "row": (1, None),
    "col": (None, 1),
    "tensor3": (None,) * 3,
    "tensor4": (None,) * 4,
    "tensor5": (None,) * 5,
}


def _kind_maker(shape: tuple) -> Callable[..., ex.TensorVariable]:
    def make(name: str | None = None, dtype: str | None = None) -> ex.TensorVariable:
        return ex.tensor(name, dtype or ex.config.floatX, shape)

    return make


def _tensor_type(dtype: str, broadcastable: Sequence[bool], name: str | None = None) -> TensorType:
    """Theano's ``TensorType(dtype, broadcastable)``: True marks an axis of length 1."""
    return TensorType(dtype, tuple(1 if b else None for b in broadcastable))


def _cast(x: Any, dtype: str) -> ex.TensorVariable:
    return ex.as_tensor(x).astype(ex.config.floatX if dtype == "floatX" else dtype)


def _sum_like(reduce: Callable) -> Callable:
    """A Theano reduction: ``acc_dtype`` (the accumulator's dtype) is exprc's choice; a
    ``dtype`` casts the result."""

    def theano_reduce(
        x: Any, axis: Any = None, dtype: str | None = None, keepdims: bool = False, acc_dtype: Any = None
    ):
        out = reduce(x, axis=axis, keepdims=keepdims)
        return out if dtype is None else out.astype(dtype)

    return theano_reduce


def _stack(*tensors: Any, axis: int = 0) -> ex.TensorVariable:
    """``stack(tensors, axis=0)``, or Theano's older ``stack(t1, t2, ...)``."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    return ex.stack(list(tensors), axis=axis)


def _flatten(x: Any, ndim: int = 1, outdim: int | None = None) -> ex.TensorVariable:
    return ex.flatten(x, outdim or ndim)


def _reshape(x: Any, newshape: Any, ndim: int | None = None) -> ex.TensorVariable:
    return ex.reshape(x, newshape)


def _subtensor_write(write: Callable) -> Callable:
    def theano_write(x: Any, y: Any, inplace: bool = False, tolerate_inplace_aliasing: bool = False):
        return write(x, y)

    return theano_write


def _grad(
    cost: Any,
    wrt: Any,
    consider_constant: Any = None,
    disconnected_inputs: str = "raise",
    add_names: bool = True,
    known_grads: Any = None,
    return_disconnected: str = "zero",
    null_gradients: str = "raise",
) -> Any:
    return ex.grad(
        cost,
        wrt,
        consider_constant=consider_constant,
        disconnected_inputs=disconnected_inputs,
        known_grads=known_grads,
        return_disconnected=return_disconnected,
    )


def _patternbroadcast(x: Any, broadcastable: Sequence[bool]) -> ex.TensorVariable:
    return ex.specify_broadcastable(x, *[a for a, b in enumerate(broadcastable) if b])


def _tensor_names() -> dict[str, Any]:
    # Every NumPy-named function of exprc by its own name first (T.exp, T.tanh, T.arange...),
    # then Theano's own names and argument orders.
    names = {k: v for k, v in vars(ex).items() if not k.startswith("_") and not isinstance(v, types.ModuleType)}
    names.update({kind: _kind_maker(shape) for kind, shape in _KINDS.items()})
    for prefix, dtype in PREFIXES.items():
        for kind, shape in _KINDS.items():
            names[prefix + kind] = TensorType(dtype, shape)  # a type, called to make an input
    names.update(
        TensorType=_tensor_type,
        TensorVariable=ex.TensorVariable,
        TensorConstant=ex.TensorConstant,
        as_tensor_variable=lambda x, name=None, ndim=None: ex.as_tensor(x, name=name),
        constant=lambda x, name=None, ndim=None, dtype=None: ex.constant(x, dtype=dtype, name=name),
        cast=_cast,
        switch=ex.where,
        sqr=ex.square,
        abs_=ex.abs,
        sgn=ex.sign,
        neg=ex.negative,
        inv=lambda x: 1.0 / ex.as_tensor(x),
        int_div=ex.floor_divide,
        true_div=ex.true_divide,
        pow=ex.power,
        iround=lambda x: ex.round(x).astype("int64"),
        lt=ex.less,
        gt=ex.greater,
        le=ex.less_equal,
        ge=ex.greater_equal,
        and_=ex.bitwise_and,
        or_=ex.bitwise_or,
        xor=ex.bitwise_xor,
        invert=ex.invert,
        batched_dot=ex.matmul,
        join=lambda axis, *tensors: ex.concatenate(list(tensors), axis=axis),
        stack=_stack,
        flatten=_flatten,
        reshape=_reshape,
        shape=lambda x: ex.as_tensor(x).shape,
        fill=lambda model, value: ex.full_like(model, value),
        set_subtensor=_subtensor_write(ex.set_subtensor),
        inc_subtensor=_subtensor_write(ex.inc_subtensor),
        grad=_grad,
        patternbroadcast=_patternbroadcast,
        addbroadcast=ex.specify_broadcastable,
        unbroadcast=lambda x, *axes: x,
        sum=_sum_like(ex.sum),
        mean=_sum_like(ex.mean),
        prod=_sum_like(ex.prod),
    )
    return names


# --- random streams, in Theano's argument order -------------------------------------


def _size(size: Any) -> Any:
    return None if size is None or (isinstance(size, (tuple, list)) and len(size) == 0) else size


def _float(dtype: str | None) -> str:
    return ex.config.floatX if dtype in (None, "floatX") else dtype


class RandomStreams:
    """Theano's ``RandomStreams`` (``theano.tensor.shared_randomstreams``): methods take
    ``size`` first, as Theano's do, and draw from an :class:`exprc.random.RandomStream`."""

    def __init__(self, seed: int | None = None):
        self.stream = ex.random.RandomStream(seed)

    def seed(self, seed: int | None = None) -> None:
        self.stream.seed(seed)

    def updates(self) -> list:
        return self.stream.updates()

    def uniform(self, size: Any = (), low: Any = 0.0, high: Any = 1.0, ndim: Any = None, dtype: Any = None, **_: Any):
        return self.stream.uniform(low, high, size=_size(size), dtype=_float(dtype))

    def normal(self, size: Any = (), avg: Any = 0.0, std: Any = 1.0, ndim: Any = None, dtype: Any = None, **_: Any):
        return self.stream.normal(avg, std, size=_size(size), dtype=_float(dtype))

    def binomial(self, size: Any = (), n: Any = 1, p: Any = 0.5, ndim: Any = None, dtype: str = "int64", **_: Any):
        return self.stream.binomial(n, p, size=_size(size), dtype=dtype)

    def random_integers(self, size: Any = (), low: int = 0, high: int = 1, ndim: Any = None, dtype: str = "int64"):
        # Theano's high is inclusive.
        return self.stream.integers(low, ex.as_tensor(high) + 1, size=_size(size), dtype=dtype)

    def permutation(self, size: Any = (), n: int = 1, ndim: Any = None, dtype: str = "int64"):
        if _size(size) is not None:
            raise NotImplementedError("RandomStreams.permutation: a batch of permutations (size=...) is not supported")
        return self.stream.permutation(n).astype(dtype)

    def choice(self, size: Any = (), a: Any = 2, replace: bool = True, p: Any = None, ndim: Any = None, dtype="int64"):
        return self.stream.choice(a, size=_size(size), replace=replace, p=p)

    def multinomial(self, size: Any = (), n: int = 1, pvals: Any = (0.5, 0.5), ndim: Any = None, dtype="int64"):
        return self.stream.multinomial(n, pvals, size=_size(size)).astype(dtype)


class MRG_RandomStreams(RandomStreams):  # noqa: N801 - Theano's name
    """Theano's ``MRG_RandomStreams`` (``theano.sandbox.rng_mrg``): the same draws from exprc's
    Philox streams; ``multinomial`` takes one draw per row of a matrix of probabilities."""

    def __init__(self, seed: int = 12345):
        super().__init__(seed)

    def multinomial(self, size: Any = None, n: int = 1, pvals: Any = None, ndim: Any = None, dtype="int64", **_: Any):
        pvals = ex.as_tensor(pvals)
        if pvals.ndim != 2 or n != 1:
            raise NotImplementedError(
                "MRG_RandomStreams.multinomial: one draw (n=1) per row of a matrix pvals is supported; "
                "for others use ex.random.RandomStream.multinomial"
            )
        # One uniform per row, against the running sum of the row's probabilities.
        u = self.stream.uniform(size=(pvals.shape[0], 1), dtype=pvals.dtype)
        chosen = (u >= ex.cumsum(pvals, axis=1)).sum(axis=1)
        return ex.nnet.one_hot(
            ex.minimum(chosen, pvals.shape[1] - 1), pvals.type.shape[1] or pvals.shape[1], dtype=dtype
        )


# --- theano.tensor.signal.pool and the older downsample ---------------------------------


def pool_2d(
    input: Any,
    ws: Any = None,
    ignore_border: bool | None = None,
    stride: Any = None,
    pad: Any = (0, 0),
    mode: str = "max",
    ds: Any = None,
    st: Any = None,
    padding: Any = None,
) -> ex.TensorVariable:
    """Theano's ``pool_2d``, with its older names (``ds``, ``st``, ``padding``) and its default
    ``ignore_border=False``."""
    return ex.nnet.pool_2d(
        input,
        ws if ws is not None else ds,
        ignore_border=bool(ignore_border),
        stride=stride if stride is not None else st,
        pad=padding if padding is not None else pad,
        mode=mode,
    )


def _max_pool_2d(input: Any, ds: Any, ignore_border: bool | None = None, st: Any = None, padding=(0, 0), mode="max"):
    return pool_2d(input, ds, ignore_border, st, padding, mode)


def _old_conv2d(
    input: Any,
    filters: Any,
    filter_shape: Any = None,
    image_shape: Any = None,
    border_mode: str = "valid",
    subsample: Any = (1, 1),
    **_: Any,
) -> ex.TensorVariable:
    """``theano.tensor.nnet.conv.conv2d``: the older signature (``image_shape``)."""
    return ex.nnet.conv2d(
        input, filters, input_shape=image_shape, filter_shape=filter_shape, border_mode=border_mode, subsample=subsample
    )


def _pydotprint(fct: Any, outfile: str | None = None, format: str = "png", **_: Any) -> None:  # noqa: A002
    picture = ex.draw(fct)
    picture.save(outfile or f"pydotprint.{format}")


def _debugprint(obj: Any, file: Any = None, **_: Any) -> Any:
    return ex.debugprint(obj, file=file)


# --- the modules ---------------------------------------------------------------------


def _build() -> dict[str, TheanoModule]:
    nn = ex.nnet
    nnet_names = {k: v for k, v in vars(nn).items() if not k.startswith("_") and callable(v)}
    nnet_names.update(
        sigmoid=ex.sigmoid,
        ultra_fast_sigmoid=ex.sigmoid,
        softplus=ex.softplus,
        softmax=lambda x, axis=-1: nn.softmax(x, axis=axis),
    )
    conv = _module("theano.tensor.nnet.conv", "Theano's older convolution module.", {"conv2d": _old_conv2d})
    bn = _module("theano.tensor.nnet.bn", "Batch normalization.", {"batch_normalization": nn.batch_normalization})
    nnet = _module("theano.tensor.nnet", "Theano's neural-network ops on exprc's ex.nnet.", nnet_names)
    nnet.conv, nnet.bn, nnet.nnet = conv, bn, nnet
    pool = _module("theano.tensor.signal.pool", "Pooling.", {"pool_2d": pool_2d, "max_pool_2d": _max_pool_2d})
    downsample = _module("theano.tensor.signal.downsample", "Theano's older pooling.", {"max_pool_2d": _max_pool_2d})
    signal = _module("theano.tensor.signal", "Signal ops.", {"pool": pool, "downsample": downsample})
    extra_ops = _module(
        "theano.tensor.extra_ops",
        "Theano's extra ops.",
        {
            "cumsum": ex.cumsum,
            "cumprod": ex.cumprod,
            "diff": ex.diff,
            "repeat": ex.repeat,
            "to_one_hot": lambda y, nb_class, dtype=None: nn.one_hot(y, nb_class, dtype=dtype or ex.config.floatX),
            "squeeze": ex.squeeze,
        },
    )
    shared_rs = _module("theano.tensor.shared_randomstreams", "Random streams.", {"RandomStreams": RandomStreams})
    tensor_names = _tensor_names()
    tensor_names.update(nnet=nnet, signal=signal, extra_ops=extra_ops, shared_randomstreams=shared_rs)
    tensor = _module("theano.tensor", "Theano's tensor module on exprc.", tensor_names)
    rng_mrg = _module("theano.sandbox.rng_mrg", "MRG random streams.", {"MRG_RandomStreams": MRG_RandomStreams})
    sandbox = _module("theano.sandbox", "Theano's sandbox: rng_mrg.", {"rng_mrg": rng_mrg})
    ifelse = _module("theano.ifelse", "A lazy conditional.", {"ifelse": ex.ifelse})
    scan_module = _module("theano.scan_module", "Loops.", {"scan": ex.scan, "until": ex.until})
    printing = _module(
        "theano.printing",
        "Printing graphs.",
        {"pp": lambda v: str(v), "debugprint": _debugprint, "pydotprint": _pydotprint},
    )
    gradient = _module(
        "theano.gradient",
        "Gradients.",
        {
            "grad": _grad,
            "jacobian": ex.jacobian,
            "hessian": ex.hessian,
            "Rop": ex.Rop,
            "Lop": ex.Lop,
            "disconnected_grad": ex.stop_gradient,
            "zero_grad": ex.stop_gradient,
            "consider_constant": ex.stop_gradient,
            "verify_grad": ex.verify_grad,
            "DisconnectedInputError": ex.DisconnectedInputError,
        },
    )
    compile_ = _module("theano.compile", "Compiling functions.", {"function": function, "In": ex.In, "Param": ex.In})
    top = _module(
        "theano",
        "Theano's layout on exprc (exprc.compat.theano).",
        {
            "function": function,
            "shared": ex.shared,
            "In": ex.In,
            "Param": ex.In,
            "config": config,
            "scan": ex.scan,
            "map": ex.map,
            "reduce": ex.reduce,
            "foldl": ex.foldl,
            "foldr": ex.foldr,
            "grad": _grad,
            "Rop": ex.Rop,
            "Lop": ex.Lop,
            "clone": clone,
            "dot": ex.dot,
            "pp": printing.pp,
            "tensor": tensor,
            "printing": printing,
            "gradient": gradient,
            "ifelse": ifelse,
            "scan_module": scan_module,
            "sandbox": sandbox,
            "compile": compile_,
            "__version__": f"exprc {ex.__version__}",
        },
    )
    modules = [
        top,
        tensor,
        nnet,
        conv,
        bn,
        signal,
        pool,
        downsample,
        extra_ops,
        shared_rs,
        sandbox,
        rng_mrg,
        ifelse,
        scan_module,
        printing,
        gradient,
        compile_,
    ]
    return {m.__name__: m for m in modules}


class _Refuse(importlib.abc.MetaPathFinder):
    """Answers an import of a ``theano.*`` module the layer lacks with what to use instead."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if fullname == "theano" or fullname.startswith("theano."):
            hint = HINTS.get(fullname)
            raise ModuleNotFoundError(
                f"{fullname} is not provided by exprc's Theano layer"
                + (f": {hint}" if hint else "; see docs/coming-from-theano.md for the modules it maps"),
                name=fullname,
            )
        return None


_MODULES: dict[str, TheanoModule] = {}


def install() -> types.ModuleType:
    """Register Theano's module names so that ``import theano`` (and ``theano.tensor``...)
    gives exprc; returns the ``theano`` module. Calling it again does nothing more."""
    if not _MODULES:
        _MODULES.update(_build())
    sys.modules.update(_MODULES)
    # `if not input:` tests a default argument in Theano programs; a comparison stays an error.
    _TENSOR.THEANO_TRUTH = True
    if not any(isinstance(f, _Refuse) for f in sys.meta_path):
        sys.meta_path.append(_Refuse())
    return _MODULES["theano"]


def uninstall() -> None:
    """Remove the names :func:`install` registered."""
    for name in _MODULES:
        sys.modules.pop(name, None)
    _TENSOR.THEANO_TRUTH = False
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _Refuse)]
