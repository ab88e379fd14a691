"""The CUDA driver API (``libcuda.so.1``) through cffi in ABI mode.

The driver is what the NVIDIA kernel driver installs, not a Python package. It is loaded on
first use, never at import, so this module imports anywhere; :func:`is_available` says,
without raising, whether a driver and a GPU are there, and :func:`call` raises :class:`CudaError`.
See docs/internals/cuda-back-end.md.

>>> is_available() in (True, False)
True
>>> cc = compute_capability(0)  # doctest: +SKIP
>>> arch(0)  # doctest: +SKIP
'sm_90'
"""

import threading

from exprc.codegen.cuda.nvrtc import dlopen_message

#: The driver's file name (the soname the NVIDIA driver installs).
LIBRARY = "libcuda.so.1"

#: ``cuDeviceGetAttribute`` attributes.
COMPUTE_CAPABILITY_MAJOR = 75
COMPUTE_CAPABILITY_MINOR = 76

#: ``CUDA_SUCCESS``, and the errors that mean "no GPU here" rather than a fault.
SUCCESS = 0
CUDA_ERROR_NO_DEVICE = 100

CDEF = """
typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;

CUresult cuGetErrorName(CUresult error, const char **pStr);
CUresult cuGetErrorString(CUresult error, const char **pStr);
CUresult cuInit(unsigned int Flags);
CUresult cuDriverGetVersion(int *driverVersion);
CUresult cuDeviceGetCount(int *count);
CUresult cuDeviceGet(CUdevice *device, int ordinal);
CUresult cuDeviceGetName(char *name, int len, CUdevice dev);
CUresult cuDeviceGetAttribute(int *pi, int attrib, CUdevice dev);
CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev);
CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev);
CUresult cuCtxSetCurrent(CUcontext ctx);
CUresult cuCtxGetCurrent(CUcontext *pctx);
CUresult cuCtxSynchronize(void);
CUresult cuModuleLoadData(CUmodule *module, const void *image);
CUresult cuModuleUnload(CUmodule hmod);
CUresult cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod, const char *name);
CUresult cuLaunchKernel(CUfunction f,
                        unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ,
                        unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ,
                        unsigned int sharedMemBytes, CUstream hStream, void **kernelParams, void **extra);
CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize);
CUresult cuMemFree_v2(CUdeviceptr dptr);
CUresult cuMemcpyHtoD_v2(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount);
CUresult cuMemcpyDtoH_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount);
CUresult cuMemcpyDtoD_v2(CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount);
CUresult cuStreamSynchronize(CUstream hStream);
"""


class CudaUnavailable(RuntimeError):
    """There is no CUDA driver, or no GPU."""


class CudaError(RuntimeError):
    """A driver call failed: ``code`` is the ``CUresult``, ``name`` its name (``CUDA_ERROR_...``)."""

    def __init__(self, message, code, name):
        super().__init__(message)
        self.code, self.name = code, name


_lock = threading.Lock()
_state = {}  # "ffi", "lib" once loaded; "error" when loading or cuInit failed


def ffi():
    """The cffi FFI with the driver's declarations (parsing them needs no driver)."""
    if "ffi" not in _state:
        import cffi

        declared = cffi.FFI()
        declared.cdef(CDEF)
        _state.setdefault("ffi", declared)
    return _state["ffi"]


def _load():
    """The initialised driver library; raises CudaUnavailable (the reason is remembered)."""
    with _lock:
        if "lib" in _state:
            return _state["lib"]
        if "error" in _state:
            raise CudaUnavailable(_state["error"])
        try:
            lib = ffi().dlopen(LIBRARY)
        except OSError as err:
            _state["error"] = f"no CUDA driver ({LIBRARY} cannot be loaded: {dlopen_message(err)})"
            raise CudaUnavailable(_state["error"]) from None
        result = lib.cuInit(0)
        if result != SUCCESS:
            what = "no GPU" if result == CUDA_ERROR_NO_DEVICE else "the CUDA driver does not start"
            _state["error"] = f"{what} (cuInit: {error_message(result, lib)})"
            raise CudaUnavailable(_state["error"])
        _state["lib"] = lib
        return lib


def reset():
    """Forget the loaded driver (or why it did not load), so the next use looks again."""
    with _lock:
        for key in ("lib", "error"):
            _state.pop(key, None)


def error_message(code, lib=None):
    """``"CUDA_ERROR_NAME: description"`` for ``code``, from the driver ``lib`` when given
    (or already loaded); ``"CUresult <code>"`` when the driver cannot say."""
    lib = lib if lib is not None else _state.get("lib")
    if lib is None:
        return f"CUresult {code}"
    text = ffi().new("const char **")
    parts = []
    for getter in (lib.cuGetErrorName, lib.cuGetErrorString):
        text[0] = ffi().NULL
        if getter(code, text) == SUCCESS and text[0] != ffi().NULL:
            parts.append(ffi().string(text[0]).decode(errors="replace"))
    return ": ".join(parts) if parts else f"CUresult {code}"


def check(result, what, lib=None):
    """Raise :class:`CudaError` naming ``what`` (the call) when ``result`` is not success."""
    if result != SUCCESS:
        message = error_message(result, lib)
        raise CudaError(f"{what} failed: {message}", result, message.split(":")[0])


def call(function, *args):
    """Call driver function ``function`` (its name, as in :data:`CDEF`) with ``args``,
    raising :class:`CudaError` on failure."""
    lib = _load()
    check(getattr(lib, function)(*args), function, lib)


def unavailable_reason():
    """None when a driver and at least one GPU are there, else a sentence saying which is missing."""
    try:
        lib = _load()
        count = ffi().new("int *")
        result = lib.cuDeviceGetCount(count)
    except CudaUnavailable as err:
        return str(err)
    except Exception as err:  # noqa: BLE001 - a broken driver still only means "not available"
        return f"the CUDA driver does not work ({type(err).__name__}: {err})"
    if result != SUCCESS:
        return f"the CUDA driver cannot count GPUs ({error_message(result, lib)})"
    if count[0] == 0:
        return "no GPU (the CUDA driver finds none)"
    return None


def is_available():
    """Whether a CUDA driver and a GPU are there; never raises."""
    try:
        return unavailable_reason() is None
    except Exception:  # noqa: BLE001 - promised never to raise
        return False


def device(ordinal=0):
    """The ``CUdevice`` handle of GPU number ``ordinal``."""
    handle = ffi().new("CUdevice *")
    call("cuDeviceGet", handle, ordinal)
    return handle[0]


def compute_capability(ordinal=0):
    """``(major, minor)`` compute capability of GPU ``ordinal``, such as ``(9, 0)``."""
    dev = device(ordinal)
    value = ffi().new("int *")
    found = []
    for attribute in (COMPUTE_CAPABILITY_MAJOR, COMPUTE_CAPABILITY_MINOR):
        call("cuDeviceGetAttribute", value, attribute, dev)
        found.append(value[0])
    return tuple(found)


def arch(ordinal=0):
    """The architecture to compile for GPU ``ordinal``, such as ``"sm_90"``."""
    major, minor = compute_capability(ordinal)
    return f"sm_{major}{minor}"


def primary_context(ordinal=0):
    """Retain GPU ``ordinal``'s primary context (the one the CUDA runtime and other
    libraries share) and make it current on this thread; returns it."""
    context = ffi().new("CUcontext *")
    call("cuDevicePrimaryCtxRetain", context, device(ordinal))
    call("cuCtxSetCurrent", context[0])
    return context[0]


_contexts = {}  # ordinal -> the retained primary context (retained once per process)
_current = threading.local()  # per thread: the ordinal whose context was made current


def use_device(ordinal=0):
    """Make GPU ``ordinal``'s primary context current on this thread, retaining it the first
    time; cheap when it already is (a launcher calls this on every call, from any thread)."""
    if getattr(_current, "ordinal", None) == ordinal:
        return _contexts[ordinal]
    with _lock_contexts:
        if ordinal not in _contexts:
            context = ffi().new("CUcontext *")
            call("cuDevicePrimaryCtxRetain", context, device(ordinal))
            _contexts[ordinal] = context[0]
    call("cuCtxSetCurrent", _contexts[ordinal])
    _current.ordinal = ordinal
    return _contexts[ordinal]


_lock_contexts = threading.Lock()


def load_module(cubin):
    """Load CUBIN bytes into the current context; returns the ``CUmodule``."""
    module = ffi().new("CUmodule *")
    image = ffi().from_buffer(cubin)
    call("cuModuleLoadData", module, image)
    return module[0]


def get_function(module, name):
    """The ``CUfunction`` named ``name`` (an ``extern "C"`` kernel) in ``module``."""
    function = ffi().new("CUfunction *")
    call("cuModuleGetFunction", function, module, name.encode())
    return function[0]
