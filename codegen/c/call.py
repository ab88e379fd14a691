"""Calling a segment's entry point with as little Python per call as possible.

:class:`SegmentRunner` looks up (or asks C for) the output shapes, allocates the outputs
and makes one cffi call, ``<segment>_call(id((x, y, fixed, out)))``: C reads the arrays
from the NumPy objects themselves where :func:`numpy_objects_readable` says it can.
See docs/internals/c-call-path.md.

>>> numpy_objects_readable() in (True, False)
True
"""

import ctypes
import sys
from functools import cache

import numpy as np

from exprc.codegen.c.runtime import RETURN_CODES
from exprc.shapes import ShapeError

#: The size of a Python object's header: where an ndarray's own fields start.
OBJECT_HEAD = object.__basicsize__

#: Distinct input shapes remembered per segment before the memo starts again.
MEMO_LIMIT = 256

_FALLBACK = "fallback"  # memo value: these shapes run step by step
_MESSAGE_SIZE = 2048


class _ArrayFields(ctypes.Structure):
    """``PyArrayObject_fields`` as ``exprc_ndarray`` in :mod:`exprc.codegen.c.runtime` declares it."""

    _fields_ = [
        ("head", ctypes.c_char * OBJECT_HEAD),
        ("data", ctypes.c_void_p),
        ("nd", ctypes.c_int),
        ("dimensions", ctypes.POINTER(ctypes.c_ssize_t)),
        ("strides", ctypes.POINTER(ctypes.c_ssize_t)),
        ("base", ctypes.c_void_p),
        ("descr", ctypes.c_void_p),
        ("flags", ctypes.c_int),
    ]


@cache
def tuples_readable():
    """Whether C may read a tuple's items at ``id(tuple) + tuple.__basicsize__`` (CPython's
    ``PyTupleObject.ob_item``), checked on a sample."""
    if sys.implementation.name != "cpython":
        return False
    sample = (np.zeros(1), np.ones(2), np.empty(0))
    items = (ctypes.c_void_p * len(sample)).from_address(id(sample) + tuple.__basicsize__)
    return [items[i] for i in range(len(sample))] == [id(a) for a in sample]


@cache
def numpy_objects_readable():
    """Whether C may read NumPy arrays passed as ``id(array)``: CPython, and the fields
    found where :class:`_ArrayFields` says on a few sample arrays."""
    if sys.implementation.name != "cpython" or np.ndarray.__basicsize__ < ctypes.sizeof(_ArrayFields):
        return False
    samples = [np.zeros((3, 4, 5))[:, ::2, ::-1], np.zeros((), dtype=np.int32), np.arange(7, dtype=np.uint8)[1:]]
    for a in samples:
        fields = _ArrayFields.from_address(id(a))
        if (
            fields.data != a.__array_interface__["data"][0]
            or fields.nd != a.ndim
            or fields.descr != id(a.dtype)
            or [fields.dimensions[i] for i in range(a.ndim)] != list(a.shape)
            or [fields.strides[i] for i in range(a.ndim)] != list(a.strides)
        ):
            return False
    return True


def _entry_call_lines(n_in, n_out, result, arrays, reuse=None):
    """The lines both call paths share: unpack ``arrays`` (the name of the sequence), check
    they are ndarrays with remembered shapes, allocate the outputs (or, for an output of
    ``reuse``, ``{output: input}``, take the input's array where it can be written), call
    the C entry point and ``return {result}`` where it succeeded (``result`` formats with
    ``outs``, the output names joined by commas)."""
    reuse = reuse or {}
    ins = [f"a{i}" for i in range(n_in)]
    outs = [f"o{i}" for i in range(n_out)]
    key = " + ".join(f"{a}.shape" for a in ins) or "()"
    checks = " and ".join(f"type({a}) is ndarray" for a in ins) or "True"
    unpack = [f"{', '.join(ins)}{',' if n_in == 1 else ''} = {arrays}"] if n_in else []
    return unpack + [
        f"if {checks}:",
        f"    shapes = memo_get({key})",
        "    if shapes is not None and shapes is not FALLBACK:",
        *[
            f"        {o} = empty(shapes[{i}], d{i})"
            if i not in reuse
            else f"        {o} = a{reuse[i]} if a{reuse[i]}.flags.writeable and a{reuse[i]}.shape == shapes[{i}] "
            f"else empty(shapes[{i}], d{i})"
            for i, o in enumerate(outs)
        ],
        f"        call = ({', '.join(ins + ['fixed'] + outs)})",
        "        if not entry(id(call)):",
        f"            return {result.format(outs=', '.join(outs))}",
    ]


def direct_path_source(n_in, n_out, single=True, reuse=None, method=False):
    """The Python source of :meth:`SegmentRunner.direct_path` for these numbers of arrays;
    ``single``: one output returned as an array, not a list of one; ``method``: the source of
    :meth:`SegmentRunner.call_method` instead, a ``__call__(self, *args, **kwargs)`` that
    hands anything it does not take to ``checked(self, args, kwargs)``.

    >>> print(direct_path_source(2, 1))
    def direct(args):
        if len(args) == 2:
            a0, a1 = args
            if type(a0) is ndarray and type(a1) is ndarray:
                shapes = memo_get(a0.shape + a1.shape)
                if shapes is not None and shapes is not FALLBACK:
                    o0 = empty(shapes[0], d0)
                    call = (a0, a1, fixed, o0)
                    if not entry(id(call)):
                        return o0
        return None
    """
    result = "{outs}" if n_out == 1 and single else "[{outs}]"
    body = _entry_call_lines(n_in, n_out, result, "args", reuse)
    if method:
        head, test, last = (
            "def __call__(self, *args, **kwargs):",
            f"not kwargs and len(args) == {n_in}",
            "return checked(self, args, kwargs)",
        )
    else:
        head, test, last = "def direct(args):", f"len(args) == {n_in}", "return None"
    return "\n".join([head, f"    if {test}:"] + ["        " + line for line in body] + ["    " + last])


def fast_path_source(n_in, n_out, reuse=None):
    """The Python source of :meth:`SegmentRunner.fast_path` for these numbers of arrays.

    >>> print(fast_path_source(2, 1))
    def run(arrays):
        a0, a1 = arrays
        if type(a0) is ndarray and type(a1) is ndarray:
            shapes = memo_get(a0.shape + a1.shape)
            if shapes is not None and shapes is not FALLBACK:
                o0 = empty(shapes[0], d0)
                call = (a0, a1, fixed, o0)
                if not entry(id(call)):
                    return [o0]
        return fallback(arrays)
    """
    body = _entry_call_lines(n_in, n_out, "[{outs}]", "arrays", reuse)
    return "\n".join(["def run(arrays):"] + ["    " + line for line in body] + ["    return fallback(arrays)"])


class SegmentRunner:
    """Runs a segment through its entry points; see the module docstring.

    ``runner(arrays)`` takes one ndarray per segment input and returns the
    segment's outputs, or None when the caller must run the segment step by
    step (an input that is not an ndarray of the expected dtype object, an
    unaligned array, or a case the kernels do not cover).

    ``reuse`` maps output positions to input positions: that output is computed
    into the input's own array (an update written in place; the caller has
    checked that this is safe), where the array is writeable.
    """

    def __init__(self, segment, library, use_objects=None, reuse=None):
        self._reuse = dict(reuse or {})
        lib, ffi = library.lib, library.ffi
        self._library = library  # keeps the library loaded while its entry points are held
        self.segment = segment
        self._ffi = ffi
        self._shapes_entry = getattr(lib, f"shapes_{segment.name}")
        self._pointer_entry = getattr(lib, segment.name)
        use_objects = numpy_objects_readable() and tuples_readable() if use_objects is None else use_objects
        self._object_entry = getattr(lib, f"{segment.name}_call") if use_objects else None
        self._in_dtypes = [np.dtype(v.dtype) for v in segment.inputs]
        self._constants = [np.ascontiguousarray(np.asarray(v.value, dtype=v.dtype)) for v in segment.constants]
        self._out_dtypes = [np.dtype(v.dtype) for v in segment.outputs]
        self._out_ndims = [v.ndim for v in segment.outputs]
        self._dtypes = self._in_dtypes + [c.dtype for c in self._constants] + self._out_dtypes
        self._ndims = [v.ndim for v in segment.inputs + segment.constants + segment.outputs]
        #: What C reads besides the call's arrays: each slot's dtype object, then the constants.
        self._fixed = (*self._dtypes, *self._constants)
        self._memo = {}

    def __call__(self, arrays):
        for a in arrays:
            if not isinstance(a, np.ndarray):
                return None
        key = tuple([n for a in arrays for n in a.shape])
        shapes = self._memo.get(key)
        if shapes is None:
            shapes = self._shapes(key)
        if shapes is _FALLBACK:
            return None
        outputs = [np.empty(s, d) for s, d in zip(shapes, self._out_dtypes)]
        for o, i in self._reuse.items():
            if arrays[i].flags.writeable and arrays[i].shape == shapes[o]:
                outputs[o] = arrays[i]
        if self._object_entry is not None:
            call = (*arrays, self._fixed, *outputs)
            rc = self._object_entry(id(call))
        else:
            rc = self._call_with_pointers(arrays, outputs)
        if rc:
            return self._failed(rc, key)
        return outputs

    def fast_path(self, fallback):
        """A function ``run(arrays) -> outputs`` for a program that is this one segment, taking
        every program input in order: the common case (ndarrays, shapes seen before) in as
        few Python operations as possible, anything else through ``fallback(arrays)``.

        Its source is written for the segment's numbers of inputs, constants and outputs
        (see :func:`fast_path_source`), so that it has no loops to run.
        """
        if self._object_entry is None:
            return fallback
        source = fast_path_source(len(self._in_dtypes), len(self._out_dtypes), self._reuse)
        return self._generated(source, "run", fallback=fallback)

    def _generated(self, source, name, **names):
        """The function ``name`` defined by generated ``source``, with the names a call path
        uses (and ``names``) bound to this segment's entry point, memo, dtypes and constants."""
        namespace = {
            "ndarray": np.ndarray,
            "empty": np.empty,
            "memo_get": self._memo.get,
            "FALLBACK": _FALLBACK,
            "entry": self._object_entry,
            "fixed": self._fixed,
            "library": self._library,
            **names,
            **{f"d{i}": d for i, d in enumerate(self._out_dtypes)},
        }
        exec(compile(source, f"<{self.segment.name} {name}>", "exec"), namespace)
        return namespace[name]

    def direct_path(self, single=True):
        """A function ``direct(args)`` for a program that is this one segment, taking every
        program input in order: the function's result (an array, with ``single``, else a list
        of arrays) for ndarrays whose shapes an earlier, fully checked call had, computed in
        one call into C; None for anything else, which the caller then checks and runs
        the long way (see :func:`direct_path_source`).

        It is safe without Python's argument checks because the C entry point checks each
        array's rank and dtype object (a mismatch returns before anything runs), and the
        shapes were checked when they entered the memo. Its outputs are new arrays, but for
        those written over an input (``reuse``).
        """
        if self._object_entry is None:
            return None
        source = direct_path_source(len(self._in_dtypes), len(self._out_dtypes), single, self._reuse)
        return self._generated(source, "direct")

    def call_method(self, single, checked):
        """The direct path (see :meth:`direct_path`) written as a function's ``__call__`` method,
        so that a warm call runs this one Python function: for the arguments it does not take
        (keywords, other types, shapes not seen yet), it returns ``checked(self, args, kwargs)``.
        None where the arrays cannot be handed to C as objects."""
        if self._object_entry is None:
            return None
        source = direct_path_source(len(self._in_dtypes), len(self._out_dtypes), single, self._reuse, method=True)
        return self._generated(source, "__call__", checked=checked)

    def _shapes(self, key):
        ffi = self._ffi
        flat = list(key) + [n for c in self._constants for n in c.shape]
        out = ffi.new("int64_t[]", max(sum(self._out_ndims), 1))
        message = ffi.new("char[]", _MESSAGE_SIZE)
        rc = self._shapes_entry(ffi.new("int64_t[]", flat or [0]), out, message, _MESSAGE_SIZE)
        if rc == RETURN_CODES["SHAPE_ERROR"]:
            raise ShapeError(ffi.string(message).decode(errors="replace"))
        if rc == RETURN_CODES["TOO_BIG"]:
            raise ValueError(ffi.string(message).decode(errors="replace"))
        if rc == RETURN_CODES["FALLBACK"]:
            result = _FALLBACK
        elif rc != RETURN_CODES["OK"]:
            raise RuntimeError(f"{self.segment.name}: working out the output shapes failed (code {rc})")
        else:
            result, k = [], 0
            for ndim in self._out_ndims:
                result.append(tuple(out[k : k + ndim]))
                k += ndim
        if len(self._memo) >= MEMO_LIMIT:
            self._memo.clear()
        self._memo[key] = result
        return result

    def _call_with_pointers(self, arrays, outputs):
        ffi = self._ffi
        every = list(arrays) + self._constants + outputs
        for a, dtype, ndim in zip(every, self._dtypes, self._ndims):
            if a.dtype != dtype or a.ndim != ndim:
                return RETURN_CODES["FALLBACK"]
        data = ffi.new("void *[]", [ffi.cast("void *", a.__array_interface__["data"][0]) for a in every])
        shapes = ffi.new("int64_t[]", [n for a in every for n in a.shape] or [0])
        strides = ffi.new("int64_t[]", [n for a in every for n in a.strides] or [0])
        return self._pointer_entry(data, shapes, strides)

    def _failed(self, rc, key):
        if rc == RETURN_CODES["FALLBACK"]:
            return None
        if rc == RETURN_CODES["NO_MEMORY"]:
            raise MemoryError(f"{self.segment.name}: cannot allocate a temporary array")
        if rc == RETURN_CODES["TOO_BIG"]:
            raise ValueError(f"{self.segment.name}: array is too big or iterator is too large for input axes {key}")
        raise RuntimeError(f"{self.segment.name}: the entry point failed (code {rc}) for input axes {key}")
