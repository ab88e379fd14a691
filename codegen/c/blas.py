"""The BLAS the C programs' matrix products call: the ``scipy-openblas64`` wheel's OpenBLAS.

It is loaded once per process, set to one thread (exprc's pool splits large products by
blocks of output rows, so that one pool owns the cores), and its ``cblas_?gemm`` handed
to the run-time library (``blas.c``). Without it, a matrix product runs as a NumPy step,
and :func:`missing` says why. ``EXPRC_BLAS=0`` turns it off.
See docs/internals/c-back-end.md.

>>> missing() is None or "BLAS" in missing()
True
"""

import ctypes
import os
from functools import cache

#: The environment variable that turns BLAS calls from C off (``0``).
ENV = "EXPRC_BLAS"


@cache
def _library():
    """``(sgemm address, dgemm address, None)``, or ``(None, None, why not)``."""
    if os.environ.get(ENV, "1").strip() in ("0", "off", "no"):
        return None, None, f"BLAS from C is off ({ENV}=0)"
    try:
        import scipy_openblas64
    except ImportError:
        return None, None, "no BLAS for C: the scipy-openblas64 package is not installed"
    try:
        lib_dir = scipy_openblas64.get_lib_dir()
        path = os.path.join(lib_dir, scipy_openblas64.get_library(fullname=True))
        lib = ctypes.CDLL(path)
        lib.scipy_openblas_set_num_threads64_(ctypes.c_int(1))
        sgemm = ctypes.cast(lib.scipy_cblas_sgemm64_, ctypes.c_void_p).value
        dgemm = ctypes.cast(lib.scipy_cblas_dgemm64_, ctypes.c_void_p).value
    except (OSError, AttributeError, IndexError) as err:
        return None, None, f"no BLAS for C: scipy-openblas64 could not be loaded ({err})"
    _keep.append(lib)  # never unloaded: programs hold its functions
    return sgemm, dgemm, None


_keep = []


def missing():
    """Why C programs cannot call BLAS in this process, or None when they can."""
    return _library()[2]


def attach(runtime):
    """Hand the BLAS to the run-time library ``runtime`` (a loaded :class:`~exprc.codegen.c.build.Library`)."""
    sgemm, dgemm, _ = _library()
    ffi = runtime.ffi
    runtime.lib.exprc_set_blas(ffi.cast("void *", sgemm or 0), ffi.cast("void *", dgemm or 0))
