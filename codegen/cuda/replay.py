"""Calls of a compiled GPU program replayed: a later call with inputs of the same layouts only launches.

A :class:`Recorder` records a call's allocations and launches; a :class:`Replay` repeats them
with the new call's addresses, for inputs of the same :func:`signature`.
See docs/internals/cuda-replay.md.

>>> signature([object()]) is None   # only device arrays have a layout to key on
True
"""

import threading

import numpy as np

from exprc.codegen.cuda import array as cuda_array
from exprc.codegen.cuda import driver, recording
from exprc.codegen.cuda.pool import device_pool, size_class


def signature(arrays):
    """What a recorded call depends on: per input, its shape, strides, dtype and its address
    modulo 16 (kernels pick their widest loads, and matrix products their kernel, by it).
    None when an input is not a device array (a host value is copied over by each call,
    which a replay would skip)."""
    key = []
    for a in arrays:
        if type(a) is not cuda_array.DeviceArray:
            return None
        key.append((a.shape, a.strides, a.dtype, a.ptr % 16))
    return tuple(key)


# --- recording ---------------------------------------------------------------------------------


class Recorder:
    """What one call does on the device, noted (see :mod:`exprc.codegen.cuda.recording`) in the
    thread that runs it, inside
    ``with Recorder(inputs) as recorder:``; then ``recorder.replay(results)``."""

    def __init__(self, inputs):
        self.inputs = inputs
        self.allocations = []  # (ptr, nbytes, shape, dtype, strides), in the order of the call
        self.launches = []  # (function, a copy of the packed arguments, grid, threads, allocations before)
        self.order = []  # ("allocation", j) and ("launch", n), as they happened
        self.uploads = {}  # allocation index -> its array, filled from the host
        self.replayable = True

    def __enter__(self):
        recording.start(self)
        return self

    def __exit__(self, *exc):
        recording.stop()

    def replay(self, results):
        """The :class:`Replay` of this call, whose results were ``results``; None when the
        call did something a replay cannot repeat."""
        if not self.replayable:
            return None
        source = self._sources()
        launches = []
        for function, arguments, grid, threads, allocated in self.launches:
            slots = [
                (position, *found)
                for position, value in enumerate(arguments.tolist())
                if (found := source(value, allocated)) is not None
            ]
            launches.append((function, arguments, slots, grid, threads))
        outcome = []
        for result in results:
            found = self._result_source(result)
            if found is None or (found[0] == "allocation" and found[1] in self.uploads):
                return None  # a result must be an input, or an array of the call's own
            outcome.append(found)
        order = [(kind, n) for kind, n in self.order if not (kind == "allocation" and n in self.uploads)]
        return Replay(
            [(shape, dtype, strides) for _, _, shape, dtype, strides in self.allocations],
            launches,
            order,
            outcome,
            self.inputs[0].device_id if self.inputs else 0,
            kept=list(self.uploads.values()),
        )

    def _sources(self):
        """A function from an argument's value, and the number of allocations made before its
        launch, to ``(kind, index, offset)`` when it points into an input (``"input"``) or an
        allocation (``"allocation"``), else None."""
        inputs = []
        for k, a in enumerate(self.inputs):
            low, high = a.extent()
            inputs.append((a.ptr + low, a.ptr + max(high, low + 1), k, a.ptr))
        allocations = [(ptr, ptr + nbytes, j) for j, (ptr, nbytes, _, _, _) in enumerate(self.allocations) if nbytes]

        def source(value, allocated):
            # Of the allocations made so far, the latest wins: an earlier one at that address
            # was given back by then.
            for start, end, j in reversed(allocations):
                if j < allocated and start <= value < end:
                    return None if j in self.uploads else ("allocation", j, value - start)
            for start, end, k, base in inputs:
                if start <= value < end:
                    return "input", k, value - base
            return None

        return source

    def _result_source(self, result):
        for k, a in enumerate(self.inputs):
            if result is a:
                return "input", k
        for j in reversed(range(len(self.allocations))):
            ptr, _, shape, dtype, strides = self.allocations[j]
            if result.ptr == ptr and result.shape == shape and result.dtype == dtype and result.strides == strides:
                return "allocation", j
        return None


# --- replaying ---------------------------------------------------------------------------------


class Replay:
    """A recorded call, repeated for new inputs of the same :func:`signature`."""

    def __init__(self, allocations, launches, order, results, device_id, kept=()):
        ffi = driver.ffi()
        self.kept = kept  # arrays the launches read at fixed addresses (host values copied over)
        self.results = results
        self.device_id = device_id
        self.lock = threading.Lock()  # the packed arguments are filled in place
        kept = {j for kind, j in results if kind == "allocation"}
        last_use = {}
        for n, (_, _, slots, _, _) in enumerate(launches):
            for _, kind, index, _ in slots:
                if kind == "allocation":
                    last_use[index] = n
        #: the call as it happened: ("allocation", j, shape, dtype, strides, size class) and
        #: ("launch", function, packed arguments, their pointers, slots, grid, threads, the
        #: allocations no longer needed after it)
        self.steps = []
        for kind, n in order:
            if kind == "allocation":
                shape, dtype, strides = allocations[n]
                dtype = np.dtype(dtype)
                nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                self.steps.append((kind, n, shape, dtype, strides, size_class(nbytes)))
                continue
            function, arguments, slots, grid, threads = launches[n]
            values = ffi.new("int64_t[]", arguments.tolist())
            params = ffi.new("void *[]", [values + i for i in range(len(arguments))])
            dead = [j for j, last in last_use.items() if last == n and j not in kept]
            self.steps.append((kind, function, values, params, slots, grid, threads, dead))
        self.count = len(allocations)

    def __call__(self, inputs):
        """The results of the recorded call for ``inputs`` (device arrays of its signature)."""
        pool = device_pool(self.device_id)
        null, make = driver.ffi().NULL, cuda_array.DeviceArray._made
        arrays = [None] * self.count
        with self.lock:
            for step in self.steps:
                if step[0] == "allocation":
                    _, j, shape, dtype, strides, size = step
                    block = pool.take(size)
                    arrays[j] = make(block.ptr, shape, dtype, strides, block, self.device_id)
                    continue
                _, function, values, params, slots, grid, threads, dead = step
                for position, kind, index, offset in slots:
                    values[position] = (arrays[index] if kind == "allocation" else inputs[index]).ptr + offset
                driver.call("cuLaunchKernel", function, *grid, threads, 1, 1, 0, null, params, null)
                for j in dead:
                    arrays[j] = None  # back to the pool, for the next allocation
        return [arrays[index] if kind == "allocation" else inputs[index] for kind, index in self.results]
