"""exprc on an NVIDIA GPU: whether it can run here, device arrays, and the memory pool.

``exprc.function(..., device="cuda")`` needs three things: the CUDA driver
(``libcuda.so.1``, installed with NVIDIA's kernel driver), a GPU, and NVRTC,
the run-time CUDA compiler (``pip install exprc[cuda]``, or
``$EXPRC_NVRTC_LIBRARY`` naming a ``libnvrtc.so``).

Its functions return :class:`DeviceArray` objects (``.get()`` copies one to
NumPy; ``__cuda_array_interface__`` and ``__dlpack__`` lend it to CuPy,
PyTorch, JAX or Numba without a copy); :func:`to_device` copies NumPy data
over; :func:`memory_pool` is the pool their memory comes from. The GPU side
lives in :mod:`codegen`, imported only when one of these is used.

>>> import exprc as ex
>>> ex.cuda.is_available() in (True, False)
True
>>> ex.cuda.missing() == [] or "cuda" in ex.cuda.missing()[0].lower() or "gpu" in ex.cuda.missing()[0].lower()
True
"""


def __getattr__(name):
    # The classes live in the back end, imported on first use so that `import exprc`
    # stays free of it.
    if name == "DeviceArray":
        from exprc.codegen.cuda.array import DeviceArray

        return DeviceArray
    if name == "MemoryPool":
        from exprc.codegen.cuda.pool import MemoryPool

        return MemoryPool
    raise AttributeError(f"module 'exprc.cuda' has no attribute {name!r}")


def to_device(value):
    """``value`` (a NumPy array, or anything ``np.asarray`` takes) copied to GPU 0, as a
    :class:`DeviceArray`; a device array is returned as it is.

    >>> import numpy as np, exprc as ex
    >>> a = ex.cuda.to_device(np.arange(3.0))  # doctest: +SKIP
    >>> a.shape, a.get()  # doctest: +SKIP
    ((3,), array([0., 1., 2.]))
    """
    require()
    from exprc.codegen.cuda.array import to_device as copy

    return copy(value)


def memory_pool():
    """The pool GPU 0's arrays come from: ``.stats()`` says how many bytes are in use and
    cached, ``.empty()`` gives the cached blocks back to the driver.

    >>> import exprc as ex
    >>> ex.cuda.memory_pool().empty()  # doctest: +SKIP
    0
    """
    from exprc.codegen.cuda.pool import device_pool

    return device_pool(0)


class CudaUnavailableError(RuntimeError):
    """``device="cuda"`` was asked for where the driver, a GPU or NVRTC is missing."""


def missing():
    """What is missing for ``device="cuda"``: one sentence per missing piece (the driver or
    a GPU, and NVRTC), each saying how to get it; empty when nothing is."""
    from exprc.codegen.cuda import driver as cuda_driver
    from exprc.codegen.cuda import nvrtc

    return [reason for reason in (cuda_driver.unavailable_reason(), nvrtc.unavailable_reason()) if reason]


def is_available():
    """Whether ``exprc.function(..., device="cuda")`` has a driver, a GPU and NVRTC; never raises."""
    try:
        return not missing()
    except Exception:  # noqa: BLE001 - a broken installation only means "not available"
        return False


def require():
    """Raise :class:`CudaUnavailableError` naming what is missing, if anything is."""
    problems = missing()
    if problems:
        raise CudaUnavailableError("device='cuda' cannot be used here: " + "; ".join(problems))
