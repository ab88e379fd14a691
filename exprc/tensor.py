"""Tensor types, tensor variables and the constructors users start from.

A :class:`TensorType` is a dtype and a static shape: one entry per axis, an
int when the length is known when the graph is built (``1`` meaning the axis
broadcasts), or ``None`` when it is only known when the function runs.

>>> import exprc as ex
>>> t = ex.tensor("t", dtype="float32", shape=(None, 3))
>>> t.type
TensorType(float32, (None, 3))
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import numpy as np
from numpy.typing import ArrayLike

from .config import config
from .dtypes import PREFIXES, SUPPORTED, as_dtype, python_scalar_dtype
from .graph import Constant, Variable
from .printing import format_value, html_view, to_infix
from .shapes import ShapeError, fmt_shape

if TYPE_CHECKING:
    from .graph import Apply

#: What a tensor's operators and methods call. The ops are built on tensors, and evaluation
#: compiles, so both sit above this module and fill this in when imported: exprc.ops its
#: functions (``x + y`` is ``add(x, y)``), exprc.function ``evaluate`` (``x.eval()``).
OPERATIONS = SimpleNamespace()

#: Set by ``exprc.compat.theano.install()``: a symbolic tensor that is not boolean (not a
#: comparison) is then true, as Theano's variables were.
THEANO_TRUTH = False

#: A dtype as the functions take it: a name (``"float32"``), a NumPy dtype or scalar type (``np.float32``).
DType: TypeAlias = str | np.dtype | type

#: The axes a reduction takes: one, several, or ``None`` for all of them.
Axis: TypeAlias = int | tuple[int, ...] | None


@dataclass(frozen=True)
class TensorType:
    """The type of a tensor variable: a dtype, a static shape, and weakness.

    A *weak* type is a 0-d value that promotes like a Python scalar (NEP 50):
    Python scalars in expressions and the lengths in ``x.shape`` are weak, as
    they are in NumPy, so ``x_float32 / x.shape[0]`` stays float32. An
    elementwise result is weak only when all its inputs are.
    """

    dtype: str
    shape: tuple[int | None, ...]
    weak: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", as_dtype(self.dtype))
        object.__setattr__(self, "shape", _static_shape(self.shape))
        if self.weak and self.shape:
            raise ValueError("only 0-d types can be weak")

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def broadcastable(self) -> tuple[bool, ...]:
        """Per axis, whether its length is statically 1."""
        return tuple(d == 1 for d in self.shape)

    def make_variable(
        self, owner: Apply | None = None, index: int | None = None, name: str | None = None
    ) -> TensorVariable:
        return TensorVariable(self, owner=owner, index=index, name=name)

    def __call__(self, name: str | None = None) -> TensorVariable:
        """A symbolic input of this type, as Theano's types make them (``T.dmatrix("x")``).

        >>> TensorType("float32", (None, 3))("x")
        <TensorVariable x : float32 (?, 3)>
        """
        if self.weak:
            raise TypeError("an input cannot be weak: weak types are for Python scalars in expressions")
        return TensorVariable(self, name=name)

    def __repr__(self) -> str:
        weak = ", weak" if self.weak else ""
        return f"TensorType({self.dtype}, {self.shape}{weak})"

    def __str__(self) -> str:
        return f"{self.dtype} {fmt_shape(self.shape)}" + (" weak" if self.weak else "")


def _static_shape(shape: Sequence[int | np.integer | None]) -> tuple[int | None, ...]:
    shape = tuple(shape)
    for d in shape:
        if d is not None and not (isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0):
            raise ValueError(f"static shape {shape}: each length must be a non-negative int or None")
    return tuple(None if d is None else int(d) for d in shape)


class TensorVariable(Variable):
    """A symbolic tensor: NumPy's operators, methods and semantics, evaluated later.

    >>> import exprc as ex
    >>> x = ex.matrix("x")
    >>> y = (x.T @ x).sum(axis=0)
    >>> y.type
    TensorType(float64, (None,))
    """

    __slots__ = ()
    # NumPy must not broadcast over a symbolic tensor as an object: it defers to us.
    __array_ufunc__ = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {to_infix(self)} : {self.type}>"

    def __str__(self) -> str:
        return to_infix(self)

    def _repr_html_(self) -> str:
        return html_view(self, to_infix(self), str(self.type))

    def __array_function__(self, func, types, args, kwargs):
        # NumPy's functions call methods with NumPy's own keywords (np.sum passes out=), which
        # fail obscurely on a symbolic tensor: run them as before, and on such a failure say what works.
        try:
            return func._implementation(*args, **kwargs)
        except TypeError as error:
            name = func.__name__
            exprc = sys.modules.get("exprc")
            arg = self.name or "x"
            ways = [f"ex.{name}({arg})"] if hasattr(exprc, name) else []
            ways += [f"{arg}.{name}()"] if hasattr(type(self), name) else []
            hint = f"use {' or '.join(ways)}" if ways else "build it from exprc's functions (import exprc as ex)"
            raise TypeError(
                f"np.{name} does not take a symbolic tensor ({to_infix(self, limit=60)}); {hint}"
            ) from error

    # --- type information -------------------------------------------------
    @property
    def dtype(self) -> str:
        return self.type.dtype

    @property
    def ndim(self) -> int:
        return self.type.ndim

    @property
    def broadcastable(self) -> tuple[bool, ...]:
        return self.type.broadcastable

    @property
    def shape(self) -> tuple[TensorVariable, ...]:
        """A tuple of int64 scalars, one per axis; constants where the length is static."""
        return tuple(OPERATIONS.shape_i(self, i) for i in range(self.ndim))

    @property
    def size(self) -> TensorVariable:
        """The number of elements, as an int64 scalar."""
        return OPERATIONS.size(self)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError(f"len() of a 0-d tensor {self}")
        if self.type.shape[0] is None:
            raise TypeError(f"len() of {self}: its first axis has no static length; use {self}.shape[0]")
        return self.type.shape[0]

    def __iter__(self) -> Iterator[TensorVariable]:
        for i in range(len(self)):
            yield self[i]

    def __bool__(self) -> bool:
        # Theano took every variable as true but a comparison: its programs test `if not input:`
        # for a missing argument. Only under exprc.compat.theano; exprc itself refuses.
        if THEANO_TRUTH and self.dtype != "bool":
            return True
        raise TypeError(
            f"the truth value of symbolic tensor {self} is unknown until it is computed; "
            "use ex.where(cond, a, b) for a choice made per element"
        )

    # --- arithmetic -------------------------------------------------------
    def __add__(self, other: TensorLike) -> TensorVariable:
        return OPERATIONS.add(self, other)

    def __radd__(self, other: TensorLike) -> TensorVariable:
        return OPERATIONS.add(other, self)

    def __sub__(self, other: TensorLike) -> TensorVariable:
        return OPERATIONS.subtract(self, other)

    def __rsub__(self, other: TensorLike) -> TensorVariable:
        return OPERATIONS.subtract(other, self)

    def __mul__(self, other: TensorLike) -> TensorVariable:
        return OPERATIONS.multiply(self, other)

    def __rmul__(self, other: TensorLike) -> TensorVariable:
        return OPERATIONS.multiply(other, self)

    def __truediv__(self, other: TensorLike) -> TensorVariable:
        return OPERATIONS.true_divide(self, other)

    def __rtruediv__(self, other: TensorLike) -> TensorVariable:
        return OPERATIONS.true_divide(other, self)

    def __floordiv__(self, other: TensorLike) -> TensorVariable:
        return OPERATIONS.floor_divide(self, other)

    def __rfloordiv__(self, other: TensorLike) -> TensorVariable:
        return OPERATIONS.floor_divide(other, self)

    def __mod__(self, other: TensorLike) -> TensorVariable:
        return OPERATIONS.mod(self, other)

    def __rmod__(self, other: TensorLike) -> TensorVariable:
        return OPERATIONS.mod(other, self)

    def __pow__(self, other: TensorLike) -> TensorVariable:
        return OPERATIONS.power(self, other)

    def __rpow__(self, other: TensorLike) -> TensorVariable:
        return OPERATIONS.power(other, self)

    def __matmul__(self, other: TensorLike) -> TensorVariable:
        return OPERATIONS.matmul(self, other)

    def __rmatmul__(self, other: TensorLike) -> TensorVariable:
        return OPERATIONS.matmul(other, self)

    def __and__(self, other: TensorLike) -> TensorVariable:
        return OPERATIONS.bitwise_and(self, other)

    def __rand__(self, other: TensorLike) -> TensorVariable:
        return OPERATIONS.bitwise_and(other, self)

    def __or__(self, other: TensorLike) -> TensorVariable:
        return OPERATIONS.bitwise_or(self, other)

    def __ror__(self, other: TensorLike) -> TensorVariable:
        return OPERATIONS.bitwise_or(other, self)

    def __xor__(self, other: TensorLike) -> TensorVariable:
        return OPERATIONS.bitwise_xor(self, other)

    def __rxor__(self, other: TensorLike) -> TensorVariable:
        return OPERATIONS.bitwise_xor(other, self)

    def __neg__(self) -> TensorVariable:
        return OPERATIONS.negative(self)

    def __pos__(self) -> TensorVariable:
        return self

    def __abs__(self) -> TensorVariable:
        return OPERATIONS.abs(self)

    def __invert__(self) -> TensorVariable:
        return OPERATIONS.invert(self)

    def __lt__(self, other: TensorLike) -> TensorVariable:
        return OPERATIONS.less(self, other)

    def __le__(self, other: TensorLike) -> TensorVariable:
        return OPERATIONS.less_equal(self, other)

    def __gt__(self, other: TensorLike) -> TensorVariable:
        return OPERATIONS.greater(self, other)

    def __ge__(self, other: TensorLike) -> TensorVariable:
        return OPERATIONS.greater_equal(self, other)

    # == and != stay identity (see exprc.graph); ex.eq / ex.neq compare elementwise.
    __hash__ = Variable.__hash__

    # --- methods with NumPy's names ----------------------------------------
    def sum(self, axis: Axis = None, keepdims: bool = False, dtype: DType | None = None) -> TensorVariable:
        return OPERATIONS.sum(self, axis, keepdims, dtype)

    def prod(self, axis: Axis = None, keepdims: bool = False, dtype: DType | None = None) -> TensorVariable:
        return OPERATIONS.prod(self, axis, keepdims, dtype)

    def mean(self, axis: Axis = None, keepdims: bool = False) -> TensorVariable:
        return OPERATIONS.mean(self, axis, keepdims)

    def var(self, axis: Axis = None, keepdims: bool = False, ddof: int = 0) -> TensorVariable:
        return OPERATIONS.var(self, axis, keepdims, ddof)

    def std(self, axis: Axis = None, keepdims: bool = False, ddof: int = 0) -> TensorVariable:
        return OPERATIONS.std(self, axis, keepdims, ddof)

    def max(self, axis: Axis = None, keepdims: bool = False) -> TensorVariable:
        return OPERATIONS.max(self, axis, keepdims)

    def min(self, axis: Axis = None, keepdims: bool = False) -> TensorVariable:
        return OPERATIONS.min(self, axis, keepdims)

    def argmax(self, axis: int | None = None, keepdims: bool = False) -> TensorVariable:
        return OPERATIONS.argmax(self, axis, keepdims)

    def argmin(self, axis: int | None = None, keepdims: bool = False) -> TensorVariable:
        return OPERATIONS.argmin(self, axis, keepdims)

    def all(self, axis: Axis = None, keepdims: bool = False) -> TensorVariable:
        return OPERATIONS.all(self, axis, keepdims)

    def any(self, axis: Axis = None, keepdims: bool = False) -> TensorVariable:
        return OPERATIONS.any(self, axis, keepdims)

    def reshape(self, *shape: TensorLike | Sequence[TensorLike]) -> TensorVariable:
        return OPERATIONS.reshape(self, shape[0] if len(shape) == 1 else shape)

    def flatten(self, ndim: int = 1) -> TensorVariable:
        return OPERATIONS.flatten(self, ndim)

    def ravel(self) -> TensorVariable:
        return OPERATIONS.flatten(self)

    def squeeze(self, axis: Axis = None) -> TensorVariable:
        return OPERATIONS.squeeze(self, axis)

    def astype(self, dtype: DType) -> TensorVariable:
        return OPERATIONS.astype(self, dtype)

    # NumPy's array methods, returning new tensors (ndarray.sort sorts in place; a symbolic
    # tensor is immutable, so x.sort() returns the sorted tensor, as in Theano and PyTensor).
    def sort(self, axis: int | None = -1) -> TensorVariable:
        return OPERATIONS.sort(self, axis)

    def argsort(self, axis: int | None = -1) -> TensorVariable:
        return OPERATIONS.argsort(self, axis)

    def cumsum(self, axis: int | None = None, dtype: DType | None = None) -> TensorVariable:
        return OPERATIONS.cumsum(self, axis, dtype)

    def cumprod(self, axis: int | None = None, dtype: DType | None = None) -> TensorVariable:
        return OPERATIONS.cumprod(self, axis, dtype)

    def repeat(self, repeats: TensorLike | Sequence[int], axis: int | None = None) -> TensorVariable:
        return OPERATIONS.repeat(self, repeats, axis)

    def take(self, indices: TensorLike, axis: int | None = None) -> TensorVariable:
        return OPERATIONS.take(self, indices, axis)

    def diagonal(self, offset: int = 0, axis1: int = 0, axis2: int = 1) -> TensorVariable:
        return OPERATIONS.diagonal(self, offset, axis1, axis2)

    def trace(self, offset: int = 0, axis1: int = 0, axis2: int = 1, dtype: DType | None = None) -> TensorVariable:
        return OPERATIONS.trace(self, offset, axis1, axis2, dtype)

    def swapaxes(self, axis1: int, axis2: int) -> TensorVariable:
        return OPERATIONS.swapaxes(self, axis1, axis2)

    def dot(self, other: TensorLike) -> TensorVariable:
        return OPERATIONS.dot(self, other)

    def clip(self, a_min: TensorLike | None = None, a_max: TensorLike | None = None) -> TensorVariable:
        return OPERATIONS.clip(self, a_min, a_max)

    def transpose(self, *axes: int | Sequence[int] | None) -> TensorVariable:
        order: Any = axes
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            order = axes[0]
        return OPERATIONS.transpose(self, order or None)

    @property
    def T(self) -> TensorVariable:
        return OPERATIONS.transpose(self)

    def dimshuffle(self, *pattern: int | str | Sequence[int | str]) -> TensorVariable:
        """Theano's axis shuffle: a permutation of the axes, with ``'x'`` for a new axis of length 1.

        >>> import exprc as ex
        >>> ex.vector("v").dimshuffle("x", 0).type.shape
        (1, None)
        """
        order: Any = pattern
        if len(pattern) == 1 and isinstance(pattern[0], (tuple, list)):
            order = pattern[0]
        return OPERATIONS.dimshuffle(self, order)

    def __getitem__(self, index: Any) -> TensorVariable:
        return OPERATIONS.getitem(self, index)

    def __setitem__(self, index: Any, value: Any) -> None:
        raise TypeError(
            f"symbolic tensors are immutable, so {self}[...] = ... cannot work; "
            f"build a new tensor with ex.set_subtensor({self}[index], value) or ex.inc_subtensor(...)"
        )

    def eval(self, inputs: dict[TensorVariable, Any] | None = None) -> Any:
        """Compute this expression with the NumPy reference back end.

        >>> import exprc as ex
        >>> x = ex.vector("x")
        >>> (x * 2).eval({x: [1.0, 2.0]})
        array([2., 4.])
        """
        return OPERATIONS.evaluate(self, inputs or {})


#: What the functions take where a tensor goes: a symbolic tensor or data that becomes a constant.
TensorLike: TypeAlias = TensorVariable | ArrayLike


class TensorConstant(Constant, TensorVariable):
    """A tensor whose value is fixed in the graph. Its value is read-only."""

    __slots__ = ()

    def python_value(self) -> bool | int | float:
        """The value as a Python scalar, as a weak constant enters NumPy's promotion."""
        return self.value.item()

    @property
    def weak(self) -> bool:
        return self.type.weak

    def __reduce__(self) -> tuple[Any, ...]:
        # Unpickled constants are interned again, so equal constants stay one node.
        return (_interned, (self.value, self.type.weak, self.name))


def _interned(value: np.ndarray, weak: bool, name: str | None) -> TensorConstant:
    return constant(value.item() if weak else value, dtype=None if weak else value.dtype, name=name)


# (dtype, shape, bytes, weak) -> TensorConstant, so equal constants are one node.
_constants: weakref.WeakValueDictionary[tuple, TensorConstant] = weakref.WeakValueDictionary()


def constant(value: ArrayLike, dtype: DType | None = None, name: str | None = None) -> TensorConstant:
    """A constant tensor.

    A Python scalar given without ``dtype`` stays *weak*, as in NumPy 2: it
    takes the dtype of the tensor it meets (``float32 + 2.0`` is float32).
    Anything else, or a scalar with an explicit ``dtype``, is strongly typed.

    >>> import exprc as ex
    >>> (ex.fvector("v") * ex.constant(2.0)).dtype
    'float32'
    """
    weak = dtype is None and python_scalar_dtype(value) is not None
    if isinstance(value, complex) or np.iscomplexobj(value):
        raise TypeError(f"constant {value!r}: complex values are not supported")
    try:
        array = np.asarray(value, dtype=None if dtype is None else as_dtype(dtype, "constant dtype"))
    except OverflowError as err:  # an int out of range of the dtype asked for, as in NumPy
        raise OverflowError(f"cannot make a constant of {value!r}: {err}") from err
    except (TypeError, ValueError) as err:
        raise TypeError(f"cannot make a constant of {value!r}: {err}") from err
    if array.dtype == object and isinstance(value, int):
        raise OverflowError(
            f"cannot make a constant of {value!r}: it is out of range of every integer dtype "
            "(int64, uint64); write it as a float if that is what is meant"
        )
    if array.dtype == object:
        raise TypeError(f"cannot make a constant of {value!r}: it is not numeric")
    if array.dtype.name not in SUPPORTED:  # the message shows the value: made only when it is needed
        as_dtype(array.dtype, f"constant {value!r}")
    key = (array.dtype.name, array.shape, array.tobytes(), weak, name)
    const = _constants.get(key)
    if const is None:
        array = array.copy()
        array.setflags(write=False)
        const = TensorConstant(TensorType(array.dtype.name, array.shape, weak), array, name=name)
        _constants[key] = const
    return const


def as_tensor(value: TensorLike, name: str | None = None, dtype: DType | None = None) -> TensorVariable:
    """``value`` as a tensor variable: variables pass through, data becomes a constant.

    >>> import exprc as ex
    >>> ex.as_tensor([1, 2, 3]).type
    TensorType(int64, (3,))
    """
    if isinstance(value, TensorVariable):
        if dtype is not None and value.dtype != as_dtype(dtype):
            return value.astype(dtype)
        return value
    if isinstance(value, Variable):
        raise TypeError(f"{value!r} is not a tensor")
    if isinstance(value, (tuple, list)) and any(isinstance(v, Variable) for v in value):
        return OPERATIONS.stack([as_tensor(v) for v in value])
    return constant(value, dtype=dtype, name=name)


# --- data for an input -------------------------------------------------------

_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2}


def _describe(var: Variable, position: int | None = None) -> str:
    name = var.name or to_infix(var)
    return f"input {name!r}" + (f" (argument {position})" if position is not None else "")


def _expected(var: TensorVariable) -> str:
    return f"a {var.ndim}-d {var.dtype} array of shape {fmt_shape(var.type.shape)}"


def convert_input(
    var: TensorVariable,
    value: Any,
    allow_downcast: bool = False,
    position: int | None = None,
    what: str | None = None,
) -> np.ndarray:
    """``value`` as the array that input ``var`` accepts, or a clear error.

    Arrays keep their dtype or are converted without loss (a safe cast);
    anything lossy is a TypeError unless ``allow_downcast``. Python scalars and
    lists are weak, as in NumPy 2: they take the input's dtype when their kind
    fits (``[1, 2]`` for an int32 input, ``0.5`` for a float32 one) and their
    integers are in range.

    >>> import exprc as ex
    >>> convert_input(ex.fvector("v"), [1, 2]).dtype
    dtype('float32')

    ``what`` names the value in messages (default: the input, and its position).
    """
    what = what or _describe(var, position)
    if isinstance(value, Variable):
        raise TypeError(f"{what}: expected data, got the symbolic {value}; use givens= to substitute graphs")
    if isinstance(value, (np.ndarray, np.generic)):
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"{what}: expected {_expected(var)}, got {format_value(array)}")
        if array.dtype != var.dtype:
            if not (allow_downcast or np.can_cast(array.dtype, var.dtype, "safe")):
                raise TypeError(
                    f"{what}: expected {var.dtype} data, got {array.dtype}; converting would lose "
                    f"precision or range. Cast the data, or pass allow_input_downcast=True to exprc.function"
                )
            array = array.astype(var.dtype)
    else:
        array = _convert_python(var, value, allow_downcast, what)
    if array.ndim != var.ndim:
        raise TypeError(f"{what}: expected {_expected(var)}, got {format_value(array)} ({array.ndim}-d)")
    check_static_lengths(var, array.shape, what)
    return array


def check_static_lengths(var: TensorVariable, shape: tuple[int, ...], what: str) -> None:
    """Raise a ShapeError naming ``what`` where ``shape`` differs from a length ``var`` declares."""
    for axis, (want, got) in enumerate(zip(var.type.shape, shape)):
        if want is not None and want != got:
            raise ShapeError(
                f"{what}: expected shape {fmt_shape(var.type.shape)}, got {shape}: axis {axis} must have length {want}"
            )


def _convert_python(var: TensorVariable, value: Any, allow_downcast: bool, what: str) -> np.ndarray:
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as err:
        raise TypeError(f"{what}: expected {_expected(var)}, got {type(value).__name__}: {err}") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{what}: expected {_expected(var)}, got {type(value).__name__} {value!r:.60}")
    if array.dtype == var.dtype or allow_downcast:
        return array.astype(var.dtype, copy=False)
    if _KIND_RANK[array.dtype.kind] > _KIND_RANK[np.dtype(var.dtype).kind]:
        raise TypeError(
            f"{what}: expected {var.dtype} data, got {array.dtype.name} values such as {array.flat[0].item()!r} "
            f"(pass allow_input_downcast=True to convert them)"
        )
    if array.dtype.kind in "iu" and np.dtype(var.dtype).kind in "iu" and array.size:
        info = np.iinfo(var.dtype)
        if array.min() < info.min or array.max() > info.max:
            raise OverflowError(
                f"{what}: expected {var.dtype} values, from {info.min} to {info.max}; "
                f"got {value!r:.60}, which is out of range"
            )
    return array.astype(var.dtype)


def tensor(
    name: str | None = None,
    dtype: DType | None = None,
    shape: Sequence[int | None] | None = None,
    ndim: int | None = None,
) -> TensorVariable:
    """A symbolic input tensor, of dtype ``config.floatX`` (float64 unless changed) unless ``dtype`` says.

    ``shape`` gives the static length of each axis: an int (``1`` broadcasts)
    or ``None`` for a length known only at call time. Give ``ndim`` instead
    for a tensor whose lengths are all unknown.

    >>> import exprc as ex
    >>> ex.tensor("t", dtype="float32", shape=(None, 3)).ndim
    2
    """
    if shape is None:
        if ndim is None:
            raise TypeError(f"tensor {name!r}: give shape=(...) or ndim=")
        shape = (None,) * ndim
    elif ndim is not None and ndim != len(shape):
        raise ValueError(f"tensor {name!r}: ndim={ndim} disagrees with shape={shape}")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"tensor name must be a string, got {name!r}")
    return TensorVariable(TensorType(as_dtype(dtype or config.floatX), tuple(shape)), name=name)


class Maker(Protocol):
    """The signature of the constructors below: ``matrix(name=None, dtype=None, shape=None)``."""

    def __call__(
        self, name: str | None = None, dtype: DType | None = None, shape: Sequence[int | None] | None = None
    ) -> TensorVariable: ...


def _maker(ndim: int, default_dtype: str | None, kind: str) -> Maker:
    """A constructor of ``ndim``-d inputs; ``default_dtype`` None follows ``config.floatX``."""

    def make(
        name: str | None = None, dtype: DType | None = None, shape: Sequence[int | None] | None = None
    ) -> TensorVariable:
        if shape is not None and len(shape) != ndim:
            raise ValueError(f"{kind} {name!r}: shape {shape} must have {ndim} entries")
        return tensor(name, dtype or default_dtype, shape if shape is not None else (None,) * ndim)

    prefix = "" if default_dtype is None else f"{default_dtype} "
    make.__doc__ = f"""A symbolic {prefix}{kind} input ({ndim} dimensions, lengths unknown unless ``shape`` says).

    >>> import exprc as ex
    >>> {"ex." + kind}("x").ndim
    {ndim}
    """
    return make


_KINDS = {"scalar": 0, "vector": 1, "matrix": 2, "tensor3": 3, "tensor4": 4}

scalar = _maker(0, None, "scalar")
vector = _maker(1, None, "vector")
matrix = _maker(2, None, "matrix")
tensor3 = _maker(3, None, "tensor3")
tensor4 = _maker(4, None, "tensor4")

#: The prefixed constructors, ``fmatrix``, ``ivector``, ``bscalar``...: name -> function.
PREFIXED: dict[str, Maker] = {
    prefix + kind: _maker(ndim, dtype, kind) for prefix, dtype in PREFIXES.items() for kind, ndim in _KINDS.items()
}
for _name, _fn in PREFIXED.items():
    _fn.__name__ = _name  # type: ignore[attr-defined]
    globals()[_name] = _fn
