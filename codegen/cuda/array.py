"""Arrays in GPU memory: what ``device="cuda"`` functions take and return.

A :class:`DeviceArray` is a device pointer with a shape, a dtype and byte strides (NumPy's
conventions), and an *owner* that keeps the memory alive; other libraries take its memory
without a copy. Making one needs no driver; ``get``, :func:`to_device` and :func:`empty` do.
See docs/internals/cuda-back-end.md.

>>> x = DeviceArray(0x7f0000000000, (2, 3), "float32")   # memory the caller owns
>>> x.__cuda_array_interface__["strides"], x.T.__cuda_array_interface__["strides"]
(None, (4, 12))
"""

import math

import numpy as np

from exprc.codegen.cuda import dlpack, recording

#: The CUDA array interface version this module produces (and the oldest it reads).
CAI_VERSION = 3

#: The stream the protocols name as having work pending: the legacy default stream.
LEGACY_STREAM = 1

#: The most elements, and bytes, an array or an index space may have: NumPy's limit, the largest ``intp``.
MAX_SIZE = int(np.iinfo(np.intp).max)


class _Flags:
    """The few NumPy ``flags`` the runners read."""

    __slots__ = ("c_contiguous", "f_contiguous", "aligned")

    def __init__(self, c, f, aligned):
        self.c_contiguous, self.f_contiguous, self.aligned = c, f, aligned


class DeviceArray:
    """An array in the memory of GPU ``device_id`` (see the module docstring).

    ``DeviceArray(ptr, shape, dtype, strides=None, owner=None, device_id=0)`` wraps memory
    the caller keeps alive through ``owner``; ``strides`` are in bytes, None for C order.
    It calls no driver function; :func:`to_device` and :func:`empty` allocate.

    >>> DeviceArray(4096, (3,), "int64").__cuda_array_interface__["data"]
    (4096, False)
    """

    __slots__ = ("ptr", "shape", "dtype", "strides", "owner", "device_id", "__weakref__")

    def __init__(self, ptr, shape, dtype, strides=None, owner=None, device_id=0):
        self.dtype = np.dtype(dtype)
        self.shape = tuple(int(n) for n in shape)
        if any(n < 0 for n in self.shape):
            raise ValueError(f"DeviceArray: shape {self.shape} has a negative length")
        self.strides = (
            _c_strides(self.shape, self.dtype.itemsize) if strides is None else tuple(int(s) for s in strides)
        )
        if len(self.strides) != len(self.shape):
            raise ValueError(f"DeviceArray: {len(self.strides)} strides {self.strides} for shape {self.shape}")
        self.ptr, self.owner, self.device_id = int(ptr), owner, int(device_id)

    @classmethod
    def _made(cls, ptr, shape, dtype, strides, owner, device_id):
        """An array from values already checked and converted (a replayed call's outputs)."""
        self = cls.__new__(cls)
        self.ptr, self.shape, self.dtype, self.strides, self.owner, self.device_id = (
            ptr,
            shape,
            dtype,
            strides,
            owner,
            device_id,
        )
        return self

    # --- NumPy's descriptive attributes ---------------------------------------------------
    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def itemsize(self):
        return self.dtype.itemsize

    @property
    def nbytes(self):
        return self.size * self.itemsize

    @property
    def flags(self):
        """``c_contiguous``, ``f_contiguous`` and ``aligned``, as NumPy defines them."""
        itemsize = self.itemsize
        c = _contiguous(self.shape, self.strides, itemsize)
        f = _contiguous(self.shape[::-1], self.strides[::-1], itemsize)
        aligned = self.ptr % itemsize == 0 and all(s % itemsize == 0 for s in self.strides)
        return _Flags(c, f, aligned)

    @property
    def T(self):
        """The transpose, a view."""
        return self.view(self.shape[::-1], self.strides[::-1])

    def view(self, shape, strides, offset=0):
        """Another array over this one's memory, starting ``offset`` bytes in (no check that it
        stays inside: the caller works that out, as NumPy's stride tricks do)."""
        return DeviceArray(self.ptr + offset, shape, self.dtype, strides, self, self.device_id)

    @property
    def base_owner(self):
        """What finally keeps the memory alive (a pool block or a foreign object)."""
        owner = self.owner
        while isinstance(owner, DeviceArray):
            owner = owner.owner
        return owner

    def extent(self):
        """``(low, high)``: the bytes the array spans, relative to ``ptr`` (low <= 0 with
        negative strides); ``(0, 0)`` when it is empty."""
        if self.size == 0:
            return 0, 0
        low = sum((n - 1) * s for n, s in zip(self.shape, self.strides) if s < 0)
        high = sum((n - 1) * s for n, s in zip(self.shape, self.strides) if s > 0)
        return low, high + self.itemsize

    # --- protocols ------------------------------------------------------------------------
    @property
    def __cuda_array_interface__(self):
        return {
            "shape": self.shape,
            "typestr": self.dtype.str,
            "data": (self.ptr, False),
            "version": CAI_VERSION,
            "strides": None if self.flags.c_contiguous else self.strides,
            "stream": LEGACY_STREAM,
        }

    def __dlpack_device__(self):
        return (dlpack.KDL_CUDA, self.device_id)

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """A DLPack capsule lending this array's memory (see :mod:`exprc.codegen.cuda.dlpack`).

        ``stream`` is the consumer's: None, 0 or 1 (the legacy default stream, exprc's own),
        -1 (no synchronization wanted), 2 or a stream handle: exprc then waits for its work
        to finish (simpler than making the consumer's stream wait on an event, and slower)."""
        versioned = dlpack.check_request(self.__dlpack_device__(), stream, max_version, dl_device, copy)
        if stream not in (None, -1, 0, LEGACY_STREAM) and self.ptr:
            _synchronize(self.device_id)
        return dlpack.export(self, self.ptr, self.shape, self.strides, self.dtype, self.__dlpack_device__(), versioned)

    def __array__(self, dtype=None, copy=None):
        raise TypeError("a DeviceArray is in GPU memory: call .get() for a NumPy copy")

    # --- data -----------------------------------------------------------------------------
    def get(self):
        """A NumPy copy of the array (waits for the kernels that compute it).

        >>> to_device(np.arange(3)).get()  # doctest: +SKIP
        array([0, 1, 2])
        """
        low, high = self.extent()
        span = np.empty(high - low, dtype=np.uint8)
        if span.size:
            _copy_to_host(span, self.ptr + low, self.device_id)
        return np.ndarray(self.shape, self.dtype, span, -low if span.size else 0, self.strides).copy()

    def __repr__(self):
        return f"DeviceArray(shape={self.shape}, dtype={self.dtype.name}, device=cuda:{self.device_id})"


def _c_strides(shape, itemsize):
    strides, step = [], itemsize
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


def _contiguous(shape, strides, itemsize):
    """Whether ``shape`` with ``strides`` is contiguous in C order (NumPy's rule: length-1
    axes and empty arrays do not count)."""
    if 0 in shape:
        return True
    step = itemsize
    for n, s in zip(reversed(shape), reversed(strides)):
        if n != 1 and s != step:
            return False
        step *= n
    return True


def spans(arrays):
    """``(start, end)`` of the device memory each of ``arrays`` covers (``end`` excluded;
    an empty span for an empty array or a value that is not a device array)."""
    out = []
    for a in arrays:
        if not isinstance(a, DeviceArray) or a.size == 0:
            out.append((0, 0))
            continue
        low, high = a.extent()
        out.append((a.ptr + low, a.ptr + high))
    return out


def overlapping(arrays, positions=None):
    """Whether any of ``arrays`` at ``positions`` (default: all) may share memory with another
    of ``arrays``: their spans overlap (bounds only, as ``np.may_share_memory``; never
    misses, may see overlap between interleaved views that do not share an element).

    >>> x = DeviceArray(4096, (4,), "float64")
    >>> overlapping([x, x.view((2,), (8,), 16)]), overlapping([x, x.view((2,), (8,), 32)])
    (True, False)
    """
    bounds = spans(arrays)
    for i in range(len(arrays)) if positions is None else positions:
        start, end = bounds[i]
        if start == end:
            continue
        for j, (other_start, other_end) in enumerate(bounds):
            if j != i and other_start < end and start < other_end:
                return True
    return False


# --- making arrays --------------------------------------------------------------------------


def empty(shape, dtype, order="C", device_id=0):
    """A new, uninitialised array from the memory pool.

    >>> empty((2, 3), "float32").shape  # doctest: +SKIP
    (2, 3)
    """
    from exprc.codegen.cuda.pool import device_pool

    dtype = np.dtype(dtype)
    shape = tuple(int(n) for n in shape)
    if math.prod(shape) * dtype.itemsize > MAX_SIZE:
        raise ValueError(
            f"array is too big; `arr.size * arr.dtype.itemsize` is larger than the maximum possible size: "
            f"a {dtype.name} array of shape {shape}"
        )
    strides = _c_strides(shape, dtype.itemsize)
    if order == "F":
        strides = _c_strides(shape[::-1], dtype.itemsize)[::-1]
    block = device_pool(device_id).malloc(int(np.prod(shape, dtype=np.int64)) * dtype.itemsize)
    out = DeviceArray(block.ptr, shape, dtype, strides, block, device_id)
    recording.note_allocation(out)
    return out


def to_device(value, device_id=0):
    """``value`` (a NumPy array, or anything ``np.asarray`` takes) copied to GPU memory;
    a :class:`DeviceArray` is returned as it is.

    >>> to_device(np.ones((2, 2), np.float32))  # doctest: +SKIP
    DeviceArray(shape=(2, 2), dtype=float32, device=cuda:0)
    """
    if isinstance(value, DeviceArray):
        return value
    host = np.ascontiguousarray(value) if np.ndim(value) else np.array(value)
    if host.dtype.kind not in "biuf":
        raise TypeError(f"to_device: expected bool, integer or float data, got {host.dtype}")
    out = empty(host.shape, host.dtype, device_id=device_id)
    if host.nbytes:
        _copy_to_device(out.ptr, host, device_id)
    recording.note_upload(out)
    return out


def to_device_broadcast(host, device_id=0):
    """NumPy array ``host`` on the device, where its axes of stride 0 (a broadcast, as
    ``np.broadcast_to`` makes) keep stride 0: only the distinct elements are copied over.

    >>> to_device_broadcast(np.broadcast_to(np.ones(3), (2**40, 3))).strides  # doctest: +SKIP
    (0, 8)
    """
    repeated = [s == 0 and n > 1 for n, s in zip(host.shape, host.strides)]
    if not any(repeated):
        return to_device(host, device_id)
    compact = to_device(host[tuple(slice(0, 1) if r else slice(None) for r in repeated)], device_id)
    return compact.view(host.shape, tuple(0 if r else s for r, s in zip(repeated, compact.strides)))


def from_cuda_array_interface(obj, device_id=0):
    """A :class:`DeviceArray` over the memory of ``obj`` (any object with
    ``__cuda_array_interface__``), without a copy; ``obj`` stays alive as its owner.

    Work ``obj``'s producer has pending on another stream is waited for first.

    >>> class Foreign:  # what CuPy or Numba arrays expose
    ...     __cuda_array_interface__ = {"shape": (4,), "typestr": "<f4", "data": (8192, False), "version": 3}
    >>> from_cuda_array_interface(Foreign()).shape
    (4,)
    """
    interface = obj.__cuda_array_interface__
    what = f"{type(obj).__name__}.__cuda_array_interface__"
    version = interface.get("version")
    if not isinstance(version, int) or version < 2:
        raise TypeError(f"{what}: version {version!r} is not supported; expected 2 or later")
    if interface.get("mask") is not None:
        raise TypeError(f"{what}: masked arrays are not supported")
    try:
        ptr, _read_only = interface["data"]
        shape, dtype = tuple(interface["shape"]), np.dtype(interface["typestr"])
    except (KeyError, TypeError, ValueError) as err:
        raise TypeError(f"{what}: expected 'data' (pointer, read-only), 'shape' and 'typestr': {err}") from None
    stream = interface.get("stream")
    if stream is not None and stream not in (1, 2) and ptr:
        _synchronize_stream(stream, device_id)
    return DeviceArray(ptr or 0, shape, dtype, interface.get("strides"), obj, device_id)


def as_device_array(value, device_id=0):
    """``value`` as a :class:`DeviceArray` when it is GPU memory (a DeviceArray, or an object
    with ``__cuda_array_interface__``); None for anything else."""
    if isinstance(value, DeviceArray):
        return value
    if hasattr(type(value), "__cuda_array_interface__") or hasattr(value, "__cuda_array_interface__"):
        return from_cuda_array_interface(value, device_id)
    return None


# --- the driver calls ---------------------------------------------------------------------------


def _copy_to_host(host, ptr, device_id):
    from exprc.codegen.cuda import driver

    driver.use_device(device_id)
    recording.note_copy()
    driver.call("cuMemcpyDtoH_v2", driver.ffi().from_buffer(host, require_writable=True), ptr, host.nbytes)


def _copy_to_device(ptr, host, device_id):
    from exprc.codegen.cuda import driver

    driver.use_device(device_id)
    driver.call("cuMemcpyHtoD_v2", ptr, driver.ffi().from_buffer(host), host.nbytes)


def _synchronize(device_id):
    from exprc.codegen.cuda import driver

    driver.use_device(device_id)
    driver.call("cuCtxSynchronize")


def _synchronize_stream(stream, device_id):
    from exprc.codegen.cuda import driver

    driver.use_device(device_id)
    driver.call("cuStreamSynchronize", driver.ffi().cast("CUstream", stream))
