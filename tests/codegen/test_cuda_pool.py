"""The device memory pool's bookkeeping, with a fake allocator in place of the driver."""

import gc
import threading

import pytest

from exprc.codegen.cuda.pool import MIN_BLOCK, MemoryPool, size_class


class FakeDriver:
    """Hands out distinct addresses and records what is freed; can run out of memory."""

    def __init__(self, capacity=None):
        self.next, self.capacity, self.live, self.freed = 1 << 20, capacity, {}, []

    def alloc(self, nbytes):
        if self.capacity is not None and sum(self.live.values()) + nbytes > self.capacity:
            raise OutOfMemory()
        ptr, self.next = self.next, self.next + nbytes + 4096
        self.live[ptr] = nbytes
        return ptr

    def free(self, ptr):
        assert ptr in self.live, f"{ptr:#x} freed twice or never allocated"
        del self.live[ptr]
        self.freed.append(ptr)


class OutOfMemory(RuntimeError):
    name = "CUDA_ERROR_OUT_OF_MEMORY"  # as exprc.codegen.cuda.driver.CudaError names it


@pytest.fixture
def driver():
    return FakeDriver()


@pytest.fixture
def pool(driver):
    return MemoryPool(driver.alloc, driver.free)


def test_size_classes_are_at_most_a_quarter_larger_than_the_request():
    previous = 0
    for n in list(range(1, 5000, 7)) + [10**6 + 1, 3 * 10**8 + 5]:
        size = size_class(n)
        assert size >= max(n, MIN_BLOCK) and size >= previous
        assert n <= MIN_BLOCK or size <= 1.25 * n + 1, (n, size)
        previous = size
    assert len({size_class(n) for n in range(1025, 2049)}) == 4
    with pytest.raises(ValueError, match="-1 bytes"):
        size_class(-1)


def test_a_released_block_serves_the_next_request_of_its_class(pool, driver):
    a = pool.malloc(3000)
    assert a.size == 3072 and pool.stats() == {"in_use": 3072, "cached": 0, "driver_allocations": 1, "reused": 0}
    ptr = a.ptr
    a.release()
    assert pool.stats()["cached"] == 3072 and pool.stats()["in_use"] == 0
    b = pool.malloc(2900)  # another request of the same class
    assert b.ptr == ptr and pool.stats()["reused"] == 1 and pool.stats()["driver_allocations"] == 1
    c = pool.malloc(5000)  # another class: new memory
    assert c.ptr != ptr and pool.stats()["driver_allocations"] == 2
    assert driver.freed == []


def test_a_block_returns_to_the_pool_when_it_is_garbage(pool):
    ptr = pool.malloc(100).ptr  # the block is dropped at once
    gc.collect()
    assert pool.stats()["cached"] == MIN_BLOCK
    assert pool.malloc(10).ptr == ptr


def test_release_is_idempotent(pool):
    block = pool.malloc(1000)
    block.release()
    block.release()
    del block
    gc.collect()
    assert pool.stats() == {"in_use": 0, "cached": 1024, "driver_allocations": 1, "reused": 0}
    first, second = pool.malloc(1000), pool.malloc(1000)
    assert first.ptr != second.ptr  # the block was cached once, not twice


def test_empty_frees_cached_blocks_only(pool, driver):
    kept = pool.malloc(1000)
    for n in (1000, 2000, 2000, 70000):
        pool.malloc(n).release()
    cached = pool.stats()["cached"]
    assert cached == 1024 + 2048 + 81920  # the two 2000-byte requests shared one block
    assert pool.empty() == cached
    assert sorted(driver.live) == [kept.ptr] and len(driver.freed) == 3
    assert pool.stats()["cached"] == 0 and pool.stats()["in_use"] == 1024
    assert pool.empty() == 0


def test_zero_bytes_need_no_memory(pool, driver):
    block = pool.malloc(0)
    assert block.ptr == 0 and block.size == 0 and driver.live == {}
    block.release()
    assert pool.stats()["cached"] == 0


def test_running_out_of_memory_empties_the_pool_and_tries_again():
    driver = FakeDriver(capacity=4096)
    pool = MemoryPool(driver.alloc, driver.free)
    pool.malloc(3000).release()  # 3072 bytes cached
    big = pool.malloc(2048)  # does not fit beside the cached block: the pool gives it back
    assert big.ptr in driver.live and len(driver.freed) == 1
    with pytest.raises(OutOfMemory):
        pool.malloc(4000)  # nothing left to give back: the driver's error
    assert pool.stats()["in_use"] == 2048


def test_other_errors_are_not_retried(pool):
    def broken(nbytes):
        raise ValueError("invalid context")

    pool = MemoryPool(broken, lambda ptr: None)
    with pytest.raises(ValueError, match="invalid context"):
        pool.malloc(10)


def test_threads_share_a_pool_consistently(pool):
    def work():
        for n in range(1, 400):
            block = pool.malloc(n * 37)
            block.release()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = pool.stats()
    assert stats["in_use"] == 0
    assert stats["driver_allocations"] + stats["reused"] == 4 * 399
    assert stats["driver_allocations"] <= 4 * len({size_class(n * 37) for n in range(1, 400)})
