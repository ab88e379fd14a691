"""A caching allocator for device memory: a call does not pay for ``cuMemAlloc`` per output.

:class:`MemoryPool` rounds requests up to size classes and keeps freed blocks for the next
request. It takes the functions that allocate and free (``alloc(nbytes) -> pointer`` and
``free(pointer)``), so its bookkeeping can be tested without a GPU.
See docs/internals/cuda-back-end.md.

>>> addresses, freed = iter(range(4096, 10**6, 4096)), []
>>> pool = MemoryPool(alloc=lambda nbytes: next(addresses), free=freed.append)
>>> a = pool.malloc(1000)
>>> a.size, pool.stats()["in_use"]
(1024, 1024)
>>> a.release(); b = pool.malloc(900)   # same class: the cached block again
>>> b.ptr == a.ptr, pool.stats()["driver_allocations"]
(True, 1)
>>> b.release(); pool.empty(), freed
(1024, [4096])
"""

import threading

#: The smallest block handed out, in bytes (and the alignment every block has, at least).
MIN_BLOCK = 512

#: Size classes per doubling.
STEPS = 4


def size_class(nbytes):
    """The block size a request of ``nbytes`` gets: ``MIN_BLOCK`` or more, a multiple of
    a quarter of the power of two below it; 0 for 0.

    >>> [size_class(n) for n in (0, 1, 512, 513, 1000, 1025, 3000, 10**6)]
    [0, 512, 512, 640, 1024, 1280, 3072, 1048576]
    """
    if nbytes < 0:
        raise ValueError(f"cannot allocate {nbytes} bytes")
    if nbytes == 0:
        return 0
    if nbytes <= MIN_BLOCK:
        return MIN_BLOCK
    step = (1 << ((nbytes - 1).bit_length() - 1)) // STEPS
    return -(-nbytes // step) * step


class Block:
    """``size`` bytes of device memory at ``ptr``, lent by ``pool``; see the module docstring."""

    __slots__ = ("ptr", "size", "pool", "__weakref__")

    def __init__(self, ptr, size, pool):
        self.ptr, self.size, self.pool = ptr, size, pool

    def release(self):
        """Give the block back to its pool now (at most once; later calls do nothing)."""
        pool, self.pool = self.pool, None
        if pool is not None:
            pool._give_back(self.ptr, self.size)

    def __del__(self):
        try:
            self.release()
        except Exception:  # noqa: BLE001 - at interpreter exit the pool may be gone already
            pass

    def __repr__(self):
        return f"<Block {self.size} bytes at {self.ptr:#x}>"


class MemoryPool:
    """Device memory in size classes, kept for reuse; ``alloc`` and ``free`` reach the driver.

    >>> pool = MemoryPool(alloc=lambda n: 4096, free=lambda p: None)
    >>> pool.malloc(0).ptr   # an empty array needs no memory
    0
    """

    def __init__(self, alloc, free):
        self._alloc, self._free = alloc, free
        self._lock = threading.Lock()
        self._cached = {}  # size class -> pointers of free blocks
        self._counts = {"in_use": 0, "cached": 0, "driver_allocations": 0, "reused": 0}

    def malloc(self, nbytes):
        """A :class:`Block` of at least ``nbytes`` bytes: a cached one of the same class, or new.

        When the driver has no memory left, the cached blocks are freed and the allocation
        tried once more; the driver's error is raised if it fails again."""
        return self.take(size_class(nbytes))

    def take(self, size):
        """A :class:`Block` of ``size`` bytes, a size class (see :func:`size_class`): for a
        caller that works the class out once and allocates it again and again."""
        if size == 0:
            return Block(0, 0, None)
        with self._lock:
            free = self._cached.get(size)
            if free:
                ptr = free.pop()
                self._counts["cached"] -= size
                self._counts["in_use"] += size
                self._counts["reused"] += 1
                return Block(ptr, size, self)
        try:
            ptr = self._alloc(size)
        except Exception as err:  # noqa: BLE001 - whatever the driver raises; retried once
            if not _out_of_memory(err) or not self.empty():
                raise
            ptr = self._alloc(size)
        with self._lock:
            self._counts["in_use"] += size
            self._counts["driver_allocations"] += 1
        return Block(ptr, size, self)

    def _give_back(self, ptr, size):
        with self._lock:
            self._cached.setdefault(size, []).append(ptr)
            self._counts["in_use"] -= size
            self._counts["cached"] += size

    def empty(self):
        """Free every cached block (blocks in use stay); returns how many bytes were freed.

        >>> pool = MemoryPool(alloc=lambda n: 4096, free=lambda p: None)
        >>> pool.malloc(2000).release(); pool.empty(), pool.stats()["cached"]
        (2048, 0)
        """
        with self._lock:
            cached, self._cached = self._cached, {}
            freed = self._counts["cached"]
            self._counts["cached"] = 0
        for pointers in cached.values():
            for ptr in pointers:
                self._free(ptr)
        return freed

    def stats(self):
        """``{"in_use", "cached"}`` in bytes, and how many blocks the driver allocated and
        how many requests a cached block served (``"driver_allocations"``, ``"reused"``)."""
        with self._lock:
            return dict(self._counts)


def _out_of_memory(err):
    return getattr(err, "name", "") == "CUDA_ERROR_OUT_OF_MEMORY"


_pools = {}
_pools_lock = threading.Lock()


def device_pool(ordinal=0):
    """The pool of GPU ``ordinal``, allocating with ``cuMemAlloc`` in its primary context
    (made current on the calling thread before each driver call)."""
    with _pools_lock:
        pool = _pools.get(ordinal)
        if pool is None:
            pool = _pools[ordinal] = MemoryPool(*_driver_functions(ordinal))
        return pool


def _driver_functions(ordinal):
    from exprc.codegen.cuda import driver

    def alloc(nbytes):
        driver.use_device(ordinal)
        pointer = driver.ffi().new("CUdeviceptr *")
        driver.call("cuMemAlloc_v2", pointer, nbytes)
        return int(pointer[0])

    def free(ptr):
        driver.use_device(ordinal)
        driver.call("cuMemFree_v2", ptr)

    return alloc, free
