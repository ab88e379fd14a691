"""NVRTC, NVIDIA's run-time CUDA C++ compiler, through cffi in ABI mode.

The library comes from the ``nvidia-cuda-nvrtc`` wheel (``pip install exprc[cuda]``) or the
file ``EXPRC_NVRTC_LIBRARY`` names, and is loaded on first use; :func:`compile_cubin`
compiles CUDA C++ to a CUBIN for one GPU architecture.
See docs/internals/cuda-back-end.md.

>>> nvrtc_version()  # doctest: +SKIP
(13, 0)
>>> cubin = compile_cubin('extern "C" __global__ void k(float *x) { x[0] = 1; }', "k.cu", "sm_80")  # doctest: +SKIP
>>> cubin[:4]  # doctest: +SKIP
b'\\x7fELF'
"""

import os
import re
import threading
from pathlib import Path

#: Names a library file to load instead of the wheel's.
ENV_LIBRARY = "EXPRC_NVRTC_LIBRARY"

#: Options for every compile. NVRTC fuses a multiply and an add into one FMA by default,
#: which rounds once where NumPy rounds twice: --fmad=false keeps results NumPy's (as
#: -ffp-contract=off does for the C back end). Denormals, division and square roots are
#: IEEE by default (no --use_fast_math), as NumPy's are. Warning 186 ("pointless comparison
#: of unsigned integer with zero") is silenced: a formula with a constant operand makes such
#: comparisons (the max of isinf() of integers, which is 0), and they are right as written.
OPTIONS = ("--fmad=false", "--std=c++17", "--diag-suppress=186")

CDEF = """
typedef int nvrtcResult;
typedef struct _nvrtcProgram *nvrtcProgram;
const char *nvrtcGetErrorString(nvrtcResult result);
nvrtcResult nvrtcVersion(int *major, int *minor);
nvrtcResult nvrtcGetNumSupportedArchs(int *numArchs);
nvrtcResult nvrtcGetSupportedArchs(int *supportedArchs);
nvrtcResult nvrtcCreateProgram(nvrtcProgram *prog, const char *src, const char *name,
                               int numHeaders, const char *const *headers, const char *const *includeNames);
nvrtcResult nvrtcDestroyProgram(nvrtcProgram *prog);
nvrtcResult nvrtcCompileProgram(nvrtcProgram prog, int numOptions, const char *const *options);
nvrtcResult nvrtcGetCUBINSize(nvrtcProgram prog, size_t *cubinSizeRet);
nvrtcResult nvrtcGetCUBIN(nvrtcProgram prog, char *cubin);
nvrtcResult nvrtcGetProgramLogSize(nvrtcProgram prog, size_t *logSizeRet);
nvrtcResult nvrtcGetProgramLog(nvrtcProgram prog, char *log);
"""

_INSTALL_HINT = f"install it with `pip install exprc[cuda]`, or set ${ENV_LIBRARY} to the path of libnvrtc.so"


class NvrtcUnavailable(RuntimeError):
    """NVRTC cannot be loaded; the message says how to install it."""


class NvrtcError(RuntimeError):
    """NVRTC failed: ``result`` is NVRTC's error name, ``log`` its compile log, and
    ``source_path`` where the source that failed was saved (for a failed compile)."""

    def __init__(self, message, result="", log="", source_path=None):
        super().__init__(message)
        self.result, self.log, self.source_path = result, log, source_path


_lock = threading.Lock()
_state = {}  # "ffi", "lib", "path" once loaded; "error" when loading failed


def candidates():
    """The library files to try, best first: ``$EXPRC_NVRTC_LIBRARY`` alone when it is set,
    else what the installed wheels hold (the newest CUDA major version first).

    >>> os.environ.get(ENV_LIBRARY) or all("nvrtc" in str(p) for p in candidates())
    True
    """
    if os.environ.get(ENV_LIBRARY):
        return [Path(os.environ[ENV_LIBRARY])]
    found = []
    for root in _nvidia_dirs():
        # The glob leaves out libnvrtc-builtins.so, which libnvrtc loads itself.
        found += root.glob("cu*/lib/libnvrtc.so*")
        found += root.glob("cuda_nvrtc/lib/libnvrtc.so*")
    return sorted(set(found), key=_version_key, reverse=True)


def _nvidia_dirs():
    """The directories of the ``nvidia`` namespace package (the CUDA wheels install into it)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("nvidia")
    except (ImportError, ValueError):
        return []
    return [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []


def _version_key(path):
    """Sort key: the CUDA major version in the path (``cu13``, ``.so.12``), then the path."""
    numbers = [int(n) for n in re.findall(r"(?:cu|\.so\.)(\d+)", str(path))]
    return (max(numbers, default=0), str(path))


def _load():
    """``(ffi, lib)``, loading the library on first use; raises NvrtcUnavailable."""
    with _lock:
        if "lib" in _state:
            return _state["ffi"], _state["lib"]
        if "error" in _state:
            raise NvrtcUnavailable(_state["error"])
        import cffi

        ffi = cffi.FFI()
        ffi.cdef(CDEF)
        tried = []
        for path in candidates():
            try:
                lib = ffi.dlopen(str(path))
            except OSError as err:
                tried.append(f"{path}: {dlopen_message(err)}")
                continue
            _state.update(ffi=ffi, lib=lib, path=str(path))
            return ffi, lib
        if tried:
            _state["error"] = "NVRTC could not be loaded (" + "; ".join(tried) + f"); {_INSTALL_HINT}"
        else:
            _state["error"] = f"NVRTC (the nvidia-cuda-nvrtc package) is not installed; {_INSTALL_HINT}"
        raise NvrtcUnavailable(_state["error"])


def reset():
    """Forget the loaded library (or why it did not load), so the next use looks again."""
    with _lock:
        _state.clear()


def unavailable_reason():
    """None when NVRTC loads, else a sentence saying why not and how to install it."""
    try:
        _load()
    except NvrtcUnavailable as err:
        return str(err)
    return None


def library_path():
    """The path of the NVRTC library in use."""
    _load()
    return _state["path"]


def _check(lib, ffi, result, what):
    if result != 0:
        name = ffi.string(lib.nvrtcGetErrorString(result)).decode()
        raise NvrtcError(f"{what} failed: {name}", name)


def nvrtc_version():
    """NVRTC's version, ``(major, minor)``."""
    ffi, lib = _load()
    major, minor = ffi.new("int *"), ffi.new("int *")
    _check(lib, ffi, lib.nvrtcVersion(major, minor), "nvrtcVersion")
    return major[0], minor[0]


def supported_archs():
    """The architectures this NVRTC compiles for, as ``"sm_XX"`` names."""
    ffi, lib = _load()
    count = ffi.new("int *")
    _check(lib, ffi, lib.nvrtcGetNumSupportedArchs(count), "nvrtcGetNumSupportedArchs")
    archs = ffi.new("int[]", count[0])
    _check(lib, ffi, lib.nvrtcGetSupportedArchs(archs), "nvrtcGetSupportedArchs")
    return [f"sm_{a}" for a in archs]


_ARCH = re.compile(r"sm_\d+[af]?")


def compile_cubin(source, name, arch, options=(), source_path=None):
    """Compile CUDA C++ ``source`` (``name`` is the file name messages show) to a CUBIN for
    the exact architecture ``arch`` (such as ``"sm_90"``); returns its bytes.

    ``options`` are added to :data:`OPTIONS`. A failed compile raises :class:`NvrtcError`
    with NVRTC's log and where the source is: ``source_path`` when the caller saved it
    there, else a file written now.
    """
    return compile_with_log(source, name, arch, options, source_path)[0]


def compile_with_log(source, name, arch, options=(), source_path=None):
    """``(cubin, log)``: :func:`compile_cubin`, and NVRTC's log of a compile that succeeded
    (its warnings; empty when there are none)."""
    if not isinstance(arch, str) or not _ARCH.fullmatch(arch):
        raise ValueError(f"arch must name one GPU architecture such as 'sm_80', got {arch!r}")
    ffi, lib = _load()
    program = ffi.new("nvrtcProgram *")
    _check(
        lib,
        ffi,
        lib.nvrtcCreateProgram(program, source.encode(), name.encode(), 0, ffi.NULL, ffi.NULL),
        "nvrtcCreateProgram",
    )
    try:
        args = [ffi.new("char[]", o.encode()) for o in (f"--gpu-architecture={arch}", *OPTIONS, *options)]
        result = lib.nvrtcCompileProgram(program[0], len(args), ffi.new("char *[]", args))
        log = _log(ffi, lib, program[0])
        if result != 0:
            error = ffi.string(lib.nvrtcGetErrorString(result)).decode()
            path = source_path or _save_failed(source, name)
            raise NvrtcError(
                f"NVRTC could not compile {name} for {arch} ({error}):\n{log.strip()}\nthe source is saved at {path}",
                error,
                log,
                path,
            )
        size = ffi.new("size_t *")
        _check(lib, ffi, lib.nvrtcGetCUBINSize(program[0], size), "nvrtcGetCUBINSize")
        cubin = ffi.new("char[]", size[0])
        _check(lib, ffi, lib.nvrtcGetCUBIN(program[0], cubin), "nvrtcGetCUBIN")
        return ffi.buffer(cubin, size[0])[:], log
    finally:
        lib.nvrtcDestroyProgram(program)


def _log(ffi, lib, program):
    size = ffi.new("size_t *")
    if lib.nvrtcGetProgramLogSize(program, size) != 0 or size[0] <= 1:
        return ""
    text = ffi.new("char[]", size[0])
    if lib.nvrtcGetProgramLog(program, text) != 0:
        return ""
    return ffi.string(text).decode(errors="replace")


def _save_failed(source, name):
    """Write the source of a failed compile where the user can read it; returns the path."""
    import tempfile

    stem = re.sub(r"[^0-9A-Za-z_.-]+", "_", Path(name).stem) or "kernel"
    fd, path = tempfile.mkstemp(prefix=f"exprc-{stem}-", suffix=".cu")
    with os.fdopen(fd, "w") as f:
        f.write(source)
    return path


def dlopen_message(err):
    """cffi's dlopen error without its note about ctypes.util.find_library."""
    return str(err).split("  Additionally, ctypes.util.find_library()")[0].rstrip(".")
