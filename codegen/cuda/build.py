"""CUBINs compiled by NVRTC, kept in the disk cache of compiled programs.

A CUBIN is an entry of :class:`exprc.codegen.cache.disk.DiskCache` like a C library, keyed by
the CUDA source, the architecture and NVRTC's version and options, with its source kept
next to it as ``<key>.cu``.
See docs/internals/disk-cache.md.

>>> cubin = load_cubin('extern "C" __global__ void k(float *x) { x[0] = 1; }', "sm_90")  # doctest: +SKIP
>>> cubin[:4]  # doctest: +SKIP
b'\\x7fELF'
"""

import threading
import warnings

from exprc.codegen.cache.disk import CacheWarning, DiskCache, cache_key
from exprc.codegen.cuda.nvrtc import OPTIONS, compile_cubin, nvrtc_version
from exprc.version import __version__

#: How many CUBINs this process compiled and found in the disk cache (for tests and tuning).
stats = {"compiled": 0, "loaded_from_disk": 0}

_warned = set()
_lock = threading.Lock()


def cubin_key(source, arch, version):
    """The cache key of ``source`` compiled for ``arch`` by NVRTC ``version`` (``(major, minor)``).

    >>> cubin_key("x", "sm_80", (13, 0)) != cubin_key("x", "sm_90", (13, 0)) != cubin_key("x", "sm_90", (12, 8))
    True
    """
    return cache_key(
        source, f"nvrtc {version[0]}.{version[1]}", [f"--gpu-architecture={arch}", *OPTIONS], "cubin", __version__
    )


def load_cubin(source, arch, cache=None, name="kernels.cu"):
    """The CUBIN of CUDA ``source`` for ``arch`` (such as ``"sm_90"``): from the disk cache,
    or compiled by NVRTC and stored there. ``name`` is the file name NVRTC's messages show."""
    cache = cache or DiskCache()
    version = nvrtc_version()
    key = cubin_key(source, arch, version)
    refusal = cache.refusal()
    if refusal is not None:
        with _lock:
            if str(cache.root) not in _warned:
                _warned.add(str(cache.root))
                warnings.warn(f"{refusal}; CUDA kernels are compiled without the cache", CacheWarning, stacklevel=2)
        stats["compiled"] += 1
        return compile_cubin(source, name, arch)

    def build():
        path = cache.save_source(key, source, suffix=".cu")
        data = compile_cubin(source, name, arch, source_path=path)
        stats["compiled"] += 1
        extra = {"arch": arch, "nvrtc": f"{version[0]}.{version[1]}"}
        cache.store(key, data, extra, suffix=".cubin").close()
        return data

    found, built = cache.lookup_or_build(key, build)
    if built:
        return found
    with found[0] as cubin:  # read once and verified: the bytes handed on are the bytes checked
        data = cubin.read_bytes()
    stats["loaded_from_disk"] += 1
    return data


class KernelModule:
    """A fixed CUDA program (the copy kernels, the GEMM kernels), compiled and loaded once
    per GPU. ``source()`` gives its text and ``names()`` its kernels' names, both asked for
    only when a GPU first needs it; :meth:`functions` maps each name to its ``CUfunction``."""

    def __init__(self, file_name, source, names):
        self.file_name, self._source, self._names = file_name, source, names
        self._loaded = {}  # device ordinal -> {kernel name: CUfunction}
        self._lock = threading.Lock()

    def functions(self, device_id):
        """The kernels loaded on GPU ``device_id``, by name (loaded on the first call)."""
        with self._lock:
            if device_id not in self._loaded:
                from exprc.codegen.cuda import driver

                driver.use_device(device_id)
                cubin = load_cubin(self._source(), driver.arch(device_id), name=self.file_name)
                module = driver.load_module(cubin)
                self._loaded[device_id] = {name: driver.get_function(module, name) for name in self._names()}
            return self._loaded[device_id]
