"""DLPack capsules: lending an array's memory to another library without a copy.

:func:`export` makes the ``PyCapsule`` that ``x.__dlpack__()`` gives a consumer's
``from_dlpack``; the memory's owner stays in :data:`_exported` until the consumer's
deleter runs.
See docs/internals/cuda-back-end.md.

>>> import numpy as np
>>> host = np.arange(6.0).reshape(2, 3)
>>> capsule = export(host, host.ctypes.data, host.shape, host.strides, host.dtype, (KDL_CPU, 0))
>>> describe(capsule)["shape"], describe(capsule)["strides"], describe(capsule)["dtype"]
((2, 3), (3, 1), (2, 64, 1))
>>> del capsule; len(_exported)   # never consumed: the destructor let the owner go
0
"""

import ctypes
import threading

import numpy as np

#: ``DLDeviceType`` values.
KDL_CPU, KDL_CUDA = 1, 2

#: ``DLDataTypeCode`` values.
KDL_INT, KDL_UINT, KDL_FLOAT, KDL_BOOL = 0, 1, 2, 6

#: The DLPack version the versioned struct declares.
VERSION = (1, 0)

#: ``DLManagedTensorVersioned.flags`` bit: the consumer must not write the memory.
FLAG_READ_ONLY = 1

CDEF = """
typedef struct { int32_t device_type; int32_t device_id; } DLDevice;
typedef struct { uint8_t code; uint8_t bits; uint16_t lanes; } DLDataType;
typedef struct {
    void *data;
    DLDevice device;
    int32_t ndim;
    DLDataType dtype;
    int64_t *shape;
    int64_t *strides;
    uint64_t byte_offset;
} DLTensor;
typedef struct DLManagedTensor {
    DLTensor dl_tensor;
    void *manager_ctx;
    void (*deleter)(struct DLManagedTensor *self);
} DLManagedTensor;
typedef struct { uint32_t major; uint32_t minor; } DLPackVersion;
typedef struct DLManagedTensorVersioned {
    DLPackVersion version;
    void *manager_ctx;
    void (*deleter)(struct DLManagedTensorVersioned *self);
    uint64_t flags;
    DLTensor dl_tensor;
} DLManagedTensorVersioned;
"""

#: Capsule names: (unused, used), for the legacy and the versioned struct.
NAMES = {False: (b"dltensor", b"used_dltensor"), True: (b"dltensor_versioned", b"used_dltensor_versioned")}

_lock = threading.Lock()
#: struct address -> (owner, the cffi objects the struct points into), until the deleter runs.
_exported = {}
_state = {}


def _ffi():
    if "ffi" not in _state:
        import cffi

        ffi = cffi.FFI()
        ffi.cdef(CDEF)
        _state["ffi"] = ffi
        # The deleters live as long as the process: a consumer may call one at any time.
        _state["deleters"] = {
            False: ffi.callback("void(DLManagedTensor *)", _deleter, onerror=_ignore),
            True: ffi.callback("void(DLManagedTensorVersioned *)", _deleter, onerror=_ignore),
        }
    return _state["ffi"]


def _deleter(managed):
    """What a consumer calls when done: drop the owner and the structs."""
    with _lock:
        _exported.pop(int(_ffi().cast("uintptr_t", managed)), None)


def _ignore(exception, value, traceback):
    """A deleter runs from C, perhaps while the interpreter shuts down: it must not raise."""
    return None


# --- the capsule, from the Python C API ------------------------------------------------------

_DESTRUCTOR = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_capsule_names = {n: ctypes.create_string_buffer(n) for pair in NAMES.values() for n in pair}
_capsule_of = {}  # id(capsule) -> (struct address, versioned), until the capsule is destroyed


def _capsule_api():
    if "api" not in _state:
        # Own library handles: setting argtypes on ctypes.pythonapi's functions would change
        # them for every other user of ctypes.pythonapi in the process.
        api, plain = ctypes.PyDLL(None), ctypes.CDLL(None)
        new = api.PyCapsule_New
        new.restype, new.argtypes = ctypes.py_object, (ctypes.c_void_p, ctypes.c_char_p, _DESTRUCTOR)
        # The destructor runs while the capsule is being deallocated, perhaps with an
        # exception pending: a PyDLL function would raise that exception there; this one
        # only compares the capsule's name and never sets an error.
        is_valid = plain.PyCapsule_IsValid
        is_valid.restype, is_valid.argtypes = ctypes.c_int, (ctypes.c_void_p, ctypes.c_char_p)
        get_pointer = api.PyCapsule_GetPointer
        get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, (ctypes.py_object, ctypes.c_char_p)
        set_name = api.PyCapsule_SetName
        set_name.restype, set_name.argtypes = ctypes.c_int, (ctypes.py_object, ctypes.c_char_p)
        _state["api"] = {"new": new, "is_valid": is_valid, "get_pointer": get_pointer, "set_name": set_name}
    return _state["api"]


@_DESTRUCTOR
def _capsule_destructor(capsule):
    """A capsule is destroyed: unless a consumer took the tensor (and renamed the capsule),
    nobody else will call the deleter, so call it now."""
    try:
        address, versioned = _capsule_of.pop(capsule)
        if _capsule_api()["is_valid"](capsule, _capsule_name(NAMES[versioned][0])):
            with _lock:
                _exported.pop(address, None)
    except Exception:  # noqa: BLE001 - runs inside a deallocation: must not raise
        pass


def _capsule_name(name):
    return ctypes.cast(_capsule_names[name], ctypes.c_char_p)


# --- exporting ----------------------------------------------------------------------------------


def dtype_code(dtype):
    """``(code, bits, lanes)`` of a NumPy dtype in DLPack terms.

    >>> dtype_code(np.dtype("float32")), dtype_code(np.dtype("bool")), dtype_code(np.dtype("uint16"))
    ((2, 32, 1), (6, 8, 1), (1, 16, 1))
    """
    dtype = np.dtype(dtype)
    codes = {"b": KDL_BOOL, "i": KDL_INT, "u": KDL_UINT, "f": KDL_FLOAT}
    if dtype.kind not in codes or not dtype.isnative:
        raise BufferError(f"DLPack cannot describe dtype {dtype}; exprc arrays hold bool, integers and floats")
    return codes[dtype.kind], dtype.itemsize * 8, 1


def export(owner, ptr, shape, strides, dtype, device, versioned=False, read_only=False):
    """A DLPack capsule for the array at device pointer ``ptr`` (``shape``, byte ``strides``,
    ``dtype``) on ``device`` (``(device type, id)``); ``owner`` is kept alive until the
    consumer calls the deleter (or the capsule is destroyed unused). ``versioned``: the
    DLPack 1.0 struct, for consumers that ask for it with ``max_version``."""
    ffi = _ffi()
    dtype = np.dtype(dtype)
    code, bits, lanes = dtype_code(dtype)
    if any(s % dtype.itemsize for s in strides):
        raise BufferError(
            f"strides {tuple(strides)} are not whole elements of {dtype}; DLPack counts strides in elements"
        )
    struct = ffi.new("DLManagedTensorVersioned *" if versioned else "DLManagedTensor *")
    ndim = len(shape)
    shape_array = ffi.new("int64_t[]", [int(n) for n in shape] or [0])
    strides_array = ffi.new("int64_t[]", [int(s) // dtype.itemsize for s in strides] or [0])
    tensor = struct.dl_tensor
    tensor.data = ffi.cast("void *", ptr)
    tensor.device.device_type, tensor.device.device_id = device
    tensor.ndim = ndim
    tensor.dtype.code, tensor.dtype.bits, tensor.dtype.lanes = code, bits, lanes
    tensor.shape = shape_array
    # Always given (never NULL, which old consumers read as "C-contiguous" and DLPack 1.2
    # forbids): what they say is then never in doubt.
    tensor.strides = strides_array
    tensor.byte_offset = 0
    struct.manager_ctx = ffi.NULL
    struct.deleter = _state["deleters"][versioned]
    if versioned:
        struct.version.major, struct.version.minor = VERSION
        struct.flags = FLAG_READ_ONLY if read_only else 0
    address = int(ffi.cast("uintptr_t", struct))
    with _lock:
        _exported[address] = (owner, struct, shape_array, strides_array)
    api = _capsule_api()
    capsule = api["new"](address, _capsule_name(NAMES[versioned][0]), _capsule_destructor)
    _capsule_of[id(capsule)] = (address, versioned)
    return capsule


def describe(capsule):
    """What a capsule holds, read as a consumer would (for tests and debugging): a dict with
    ``data``, ``device``, ``dtype`` (code, bits, lanes), ``shape``, ``strides`` (elements),
    ``byte_offset``, ``versioned``, and for a versioned one ``version`` and ``flags``.
    The capsule is left as it was (not consumed)."""
    ffi, api = _ffi(), _capsule_api()
    for versioned in (False, True):
        if api["is_valid"](id(capsule), _capsule_name(NAMES[versioned][0])):
            break
    else:
        raise ValueError("not an unused DLPack capsule (its name is neither 'dltensor' nor 'dltensor_versioned')")
    pointer = api["get_pointer"](capsule, _capsule_name(NAMES[versioned][0]))
    struct = ffi.cast("DLManagedTensorVersioned *" if versioned else "DLManagedTensor *", pointer)
    t = struct.dl_tensor
    found = {
        "data": int(ffi.cast("uintptr_t", t.data)),
        "device": (t.device.device_type, t.device.device_id),
        "dtype": (t.dtype.code, t.dtype.bits, t.dtype.lanes),
        "shape": tuple(t.shape[i] for i in range(t.ndim)),
        "strides": tuple(t.strides[i] for i in range(t.ndim)),
        "byte_offset": t.byte_offset,
        "versioned": versioned,
    }
    if versioned:
        found.update(version=(struct.version.major, struct.version.minor), flags=struct.flags)
    return found


def consume(capsule):
    """Take the tensor as a consumer does: rename the capsule ``used_...`` and return a
    function that calls the deleter (what a consumer does when it frees the tensor).
    For tests of the protocol's bookkeeping."""
    ffi, api = _ffi(), _capsule_api()
    versioned = describe(capsule)["versioned"]
    unused, used = NAMES[versioned]
    pointer = api["get_pointer"](capsule, _capsule_name(unused))
    if api["set_name"](capsule, _capsule_name(used)) != 0:
        raise RuntimeError("PyCapsule_SetName failed")
    struct = ffi.cast("DLManagedTensorVersioned *" if versioned else "DLManagedTensor *", pointer)
    return lambda: struct.deleter(struct)


def check_request(device, stream=None, max_version=None, dl_device=None, copy=None):
    """Check ``__dlpack__``'s keyword arguments for an array on ``device``; returns whether
    to export the versioned struct. Raises BufferError for what cannot be honoured without a
    copy (another device, ``copy=True``) and ValueError for a stream that is not a handle.
    The standard rules out 0 as ambiguous; it is taken here as the CUDA API takes it, as
    the legacy default stream, rather than refusing a consumer that passes it.

    >>> check_request((KDL_CUDA, 0), stream=1, max_version=(1, 0))
    True
    """
    if dl_device is not None and tuple(dl_device) != tuple(device):
        raise BufferError(f"the array is on device {tuple(device)}; exporting to {tuple(dl_device)} would need a copy")
    if copy:
        raise BufferError("copy=True: exprc lends its memory and does not copy it for DLPack")
    if stream is not None and (not isinstance(stream, int) or stream < -1):
        raise ValueError(f"stream={stream!r}: expected None, -1, 1, 2 or a CUDA stream handle")
    return max_version is not None and tuple(max_version) >= VERSION
