"""Shared variables: graph leaves that hold their own value across calls.

A shared variable is an input whose value lives with the variable: compiled functions
read it implicitly and a function's ``updates`` write it (see :func:`exprc.function`).
Its static shape is its first value's unless ``shape`` says otherwise.
See docs/internals/cuda-back-end.md and docs/gpu.md for its copy in GPU memory.

>>> import numpy as np, exprc as ex
>>> w = ex.shared(np.zeros(3), name="w")
>>> w.type
TensorType(float64, (3,))
>>> (w + 1).eval()
array([1., 1., 1.])
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from .dtypes import as_dtype
from .printing import format_value
from .shapes import ShapeError, fmt_shape
from .tensor import DType, TensorType, TensorVariable, convert_input


class SharedVariable(TensorVariable):
    """A tensor leaf holding a value; see :func:`shared`."""

    # _host: the value in host memory (None while the device mirror is newer);
    # _device: the device mirror (any array with .get(), as the GPU back end gives), or None;
    # _lock: held by a call that reads or updates the variable, and by get_value and set_value;
    # _order: the creation number, the order in which a call takes several variables' locks.
    __slots__ = ("_host", "_device", "_lock", "_order")

    def __init__(self, type, value, name=None):
        super().__init__(type, name=name)
        self._host, self._device = value, None
        self._lock, self._order = threading.RLock(), next(_created)

    def __bool__(self) -> bool:
        # A shared variable is an object that exists, as in Theano: `if not W:` tests for a
        # missing argument. A symbolic tensor's truth stays an error (its value is unknown).
        return True

    @property
    def _value(self):
        """The value as a host array, copied back from the GPU first if an update left it newer there."""
        if self._host is None and self._device is not None:
            self._host = self._device.get()
        return self._host

    @_value.setter
    def _value(self, value):
        # A host value replaces the mirror, which would be stale; it is copied over when next needed.
        self._host, self._device = value, None

    def device_value(self, upload):
        """The value in GPU memory: the mirror, or ``upload(host value)`` (which copies it over)
        made the mirror. A function on the GPU reads the variable through this."""
        if self._device is None:
            self._device = upload(self._value)
        return self._device

    def set_device_value(self, array):
        """Make device array ``array`` (of the variable's dtype and lengths) the current value;
        the host copy is dropped until it is asked for. A function on the GPU writes its
        updates through this."""
        self._host, self._device = None, array

    def get_value(self, borrow: bool = False) -> np.ndarray:
        """The current value: a copy, or with ``borrow=True`` the array itself (which a later
        update may replace, and which must not be written while a function might read it).

        >>> import exprc as ex
        >>> ex.shared([1.0, 2.0]).get_value()
        array([1., 2.])
        """
        with self._lock:  # not a copy of an update half written
            return self._value if borrow else self._value.copy()

    def set_value(self, value: ArrayLike, borrow: bool = False) -> None:
        """Replace the value. It must fit the variable's type: the dtype (a lossless
        conversion is made) and the static lengths. The value is copied unless
        ``borrow=True`` and it is already a C-contiguous array of the right dtype.

        >>> import exprc as ex
        >>> w = ex.shared([1.0, 2.0], name="w")
        >>> w.set_value([3.0, 4.0]); w.get_value()
        array([3., 4.])
        >>> w.set_value([1.0, 2.0, 3.0])
        Traceback (most recent call last):
        ...
        exprc.shapes.ShapeError: shared variable 'w': expected shape (2,), got (3,): axis 0 must have length 2; give ex.shared(..., shape=(None,)) for a length that may change
        """
        array = _checked(self, value, copy=not borrow)
        with self._lock:  # after any call updating the variable, never in the middle of one
            self._value = array

    def __reduce__(self):
        # Identity matters (a function's updates name this object), so a pickle of a shared
        # variable and a function using it must come back as one object: pickle's memo
        # sees to that as long as both are in the same pickle.
        return (_rebuild, (self.type, self._value, self.name))


#: Numbers shared variables in creation order (``next`` on it is atomic).
_created = itertools.count()


def locks_of(variables: Sequence[SharedVariable]) -> list[threading.RLock]:
    """The locks of ``variables`` (each once), in the one order every call takes them, so
    that two calls waiting on each other's variables cannot both hold some.

    >>> import exprc as ex
    >>> a, b = ex.shared(1.0), ex.shared(2.0)
    >>> locks_of([b, a, b]) == [a._lock, b._lock]
    True
    """
    return [v._lock for v in sorted(set(variables), key=lambda v: v._order)]


def _rebuild(type, value, name):
    return SharedVariable(type, value, name)


def _checked(var, value, copy):
    """``value`` as the array ``var`` holds: its dtype (converted without loss) and static lengths."""
    what = f"shared variable {var.name!r}" if var.name else "a shared variable"
    try:
        array = convert_input(var, value, what=what)
    except ShapeError as err:
        raise ShapeError(
            f"{err}; give ex.shared(..., shape={_loose(var.type.shape)}) for a length that may change"
        ) from None
    if copy or not array.flags.c_contiguous or array is value and not array.flags.writeable:
        array = np.array(array, order="C", copy=True)
    return array


def _loose(shape):
    return "(" + ", ".join("None" for _ in shape) + ("," if len(shape) == 1 else "") + ")"


def shared(
    value: ArrayLike,
    name: str | None = None,
    borrow: bool = False,
    shape: Sequence[int | None] | None = None,
    dtype: DType | None = None,
) -> SharedVariable:
    """A shared variable holding ``value`` (an array, or anything ``np.asarray`` takes).

    ``dtype`` converts the value (default: its own dtype; Python floats give
    float64). ``shape`` is the static shape: by default the value's own, so
    every length is fixed; ``None`` for an axis lets its length change with
    ``set_value``. The value is copied unless ``borrow=True``.

    >>> import numpy as np, exprc as ex
    >>> b = ex.shared(np.zeros(2, dtype=np.float32), name="b")
    >>> b.dtype, b.type.shape
    ('float32', (2,))
    >>> ex.shared(np.zeros((5, 3)), shape=(None, 3)).type
    TensorType(float64, (None, 3))
    """
    if name is not None and not isinstance(name, str):
        raise TypeError(f"shared variable name must be a string, got {name!r}")
    if isinstance(value, TensorVariable):
        raise TypeError(f"shared variable {name!r}: expected data such as a NumPy array, got the symbolic {value}")
    try:
        array = np.asarray(value, dtype=None if dtype is None else as_dtype(dtype, f"shared variable {name!r} dtype"))
    except (TypeError, ValueError) as err:
        raise TypeError(f"shared variable {name!r}: expected numeric data, got {type(value).__name__}: {err}") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(f"shared variable {name!r}: expected numeric data, got {format_value(array)}")
    as_dtype(array.dtype, f"shared variable {name!r}")
    if shape is None:
        shape = array.shape
    elif len(shape) != array.ndim:
        raise ValueError(
            f"shared variable {name!r}: shape {fmt_shape(tuple(shape))} has {len(shape)} axes, the value {array.ndim}"
        )
    var = SharedVariable(TensorType(array.dtype.name, tuple(shape)), None, name=name)
    var.set_value(array, borrow=borrow)
    return var
