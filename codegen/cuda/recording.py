"""The points where a GPU program's call is noted while it is recorded: the arrays it
allocates, the kernels it launches, the copies it makes, each noted by the module that does
it, in the thread that runs the call (see :class:`~exprc.codegen.cuda.replay.Recorder`)."""

import contextlib
import threading

import numpy as np

_local = threading.local()


def start(recorder):
    """Note what this thread does in ``recorder`` (a :class:`~exprc.codegen.cuda.replay.Recorder`)."""
    if getattr(_local, "recorder", None) is not None:
        raise RuntimeError("a recording is already under way in this thread")
    _local.recorder = recorder


def stop():
    _local.recorder = None


@contextlib.contextmanager
def paused():
    """Note nothing while a nested program runs (a loop's body, compiled on its own and
    recording its own calls); the outer call, which reads host values around it, is not replayed."""
    saved = _recorder()
    if saved is not None:
        saved.replayable = False
    _local.recorder = None
    try:
        yield
    finally:
        _local.recorder = saved


def _recorder():
    return getattr(_local, "recorder", None)


def note_allocation(array):
    """An array was allocated from the pool (by :func:`exprc.codegen.cuda.array.empty`)."""
    recorder = _recorder()
    if recorder is not None:
        recorder.order.append(("allocation", len(recorder.allocations)))
        recorder.allocations.append((array.ptr, array.nbytes, array.shape, array.dtype, array.strides))


def note_launch(function, arguments, grid, threads):
    """A kernel was launched (by :func:`exprc.codegen.cuda.launch.launch_grid`)."""
    recorder = _recorder()
    if recorder is not None:
        recorder.order.append(("launch", len(recorder.launches)))
        recorder.launches.append(
            (function, np.array(arguments, dtype=np.int64), tuple(grid), threads, len(recorder.allocations))
        )


def note_upload(array):
    """``array`` was just allocated and filled from the host (by
    :func:`exprc.codegen.cuda.array.to_device`). Without a copy back to the host, the call's host
    values come from its inputs' shapes and the program's constants only, so a replay uses
    this very array again, as it would a constant's device copy."""
    recorder = _recorder()
    if recorder is not None:
        recorder.uploads[len(recorder.allocations) - 1] = array


def note_copy():
    """Memory was copied to the host, or between device arrays: not replayable."""
    recorder = _recorder()
    if recorder is not None:
        recorder.replayable = False
