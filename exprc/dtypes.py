"""The dtypes exprc supports and how they combine.

Promotion is NumPy 2's (NEP 50): a Python scalar in an expression is *weak*,
so ``float32 * 2.0`` stays float32 and ``int8 + 300`` is an OverflowError.
Rather than restate NumPy's tables, exprc asks NumPy: each op infers its
output dtype by running its NumPy reference on tiny arrays of the input dtypes
(see :func:`probe_dtype`), so the two can never disagree.
"""

from functools import lru_cache

import numpy as np

SUPPORTED = (
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
)

_SUPPORTED_NAMES = frozenset(SUPPORTED)

#: The one-letter prefixes of the constructors: ``fmatrix`` is a float32 matrix.
PREFIXES = {"d": "float64", "f": "float32", "i": "int32", "l": "int64", "b": "bool"}

#: The dtype a weak Python scalar has when it stands alone (as NumPy gives it).
PYTHON_SCALAR_DTYPES = {bool: "bool", int: "int64", float: "float64"}


def as_dtype(dtype, what="dtype"):
    """Return the canonical name of ``dtype`` (``np.float32`` -> ``'float32'``).

    Raises TypeError naming ``what`` when the dtype is not one exprc supports.

    >>> as_dtype(np.float32)
    'float32'
    """
    if isinstance(dtype, str) and dtype in _SUPPORTED_NAMES:  # the common case, kept cheap
        return dtype
    try:
        name = np.dtype(dtype).name
    except TypeError as err:
        raise TypeError(f"{what}: {dtype!r} is not a dtype") from err
    if name not in SUPPORTED:
        raise TypeError(f"{what}: dtype {name} is not supported; expected one of {', '.join(SUPPORTED)}")
    return name


def is_float(dtype):
    """True for the floating dtypes."""
    return np.dtype(dtype).kind == "f"


def is_integer(dtype):
    """True for the signed and unsigned integer dtypes (not bool)."""
    return np.dtype(dtype).kind in "iu"


def python_scalar_dtype(value):
    """The dtype NumPy gives a Python scalar standing alone, or None if ``value`` is not one."""
    for kind, name in PYTHON_SCALAR_DTYPES.items():
        if type(value) is kind:
            return name
    return None


def probe_value(dtype, weak_value=None):
    """A stand-in for an input when asking NumPy what dtype an op returns.

    Weak (Python scalar) inputs are passed as themselves so NumPy applies its
    weak-scalar rules to them, including the overflow check.
    """
    if weak_value is not None:
        return weak_value
    return np.ones((), dtype=dtype)


@lru_cache(maxsize=4096)
def _probe(fn, dtypes, typed_weak_values):
    # Keys carry the Python type: 1, 1.0 and True hash alike but promote differently.
    weak_values = [None if w is None else w[1] for w in typed_weak_values]
    with np.errstate(all="ignore"):
        result = fn(*(probe_value(d, w) for d, w in zip(dtypes, weak_values)))
    return as_dtype(np.asarray(result).dtype)


def probe_dtype(fn, dtypes, weak_values=None):
    """The dtype NumPy's ``fn`` returns for inputs of ``dtypes``.

    ``weak_values[i]`` is the Python scalar behind input ``i`` when that input
    is weak, else None.

    >>> probe_dtype(np.add, ("float32", "float64"), (None, 2.0))
    'float32'
    """
    if weak_values is None:
        weak_values = (None,) * len(dtypes)
    typed = tuple(None if w is None else (type(w), w) for w in weak_values)
    return _probe(fn, tuple(dtypes), typed)
