"""The thread pool's settings from Python: how many threads kernels use, and a controller for
threadpoolctl (see ``pool.c`` for the pool itself, docs/threads.md for its use).

Until the run-time library is loaded (by the first compiled program), the count asked for is
kept here and handed to it when it loads.

>>> default_threads({"EXPRC_NUM_THREADS": "3", "OMP_NUM_THREADS": "5"})
3
>>> default_threads({"OMP_NUM_THREADS": "4,2"})
4
"""

import importlib.abc
import importlib.util
import os
import sys
import threading

#: The most threads the pool runs (EXPRC_MAX_THREADS in pool.c).
MAX_THREADS = 256

_lock = threading.Lock()
_runtime = None  # the run-time library's cffi lib, once loaded
_asked = None  # the count set before it loaded


def cpu_count():
    """The CPUs this process may run on (its affinity), else the machine's."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_threads(environ=None):
    """The number of threads to use: ``$EXPRC_NUM_THREADS``, else the first number of
    ``$OMP_NUM_THREADS`` (ignored where it is not one), else :func:`cpu_count`."""
    environ = os.environ if environ is None else environ
    text = environ.get("EXPRC_NUM_THREADS", "").strip()
    if text:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise ValueError(f"$EXPRC_NUM_THREADS is {text!r}; expected a whole number of threads, at least 1")
        return min(value, MAX_THREADS)
    first = environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if first.isdigit() and int(first) >= 1:
        return min(int(first), MAX_THREADS)
    return min(cpu_count(), MAX_THREADS)


def checked_count(n):
    """``n`` as a thread count, or a TypeError/ValueError saying what was expected."""
    if isinstance(n, bool) or not hasattr(n, "__index__"):
        raise TypeError(f"the number of threads must be an int, not {type(n).__name__}")
    n = n.__index__()
    if n < 1:
        raise ValueError(f"the number of threads must be at least 1, not {n}")
    return min(n, MAX_THREADS)


def set_num_threads(n):
    """Let kernels use ``n`` threads (this one included) from now on."""
    global _asked
    n = checked_count(n)
    with _lock:
        if _runtime is not None:
            _runtime.exprc_set_num_threads(n)
        else:
            _asked = n


def get_num_threads():
    """The number of threads kernels may use (this one included)."""
    with _lock:
        if _runtime is not None:
            return int(_runtime.exprc_get_num_threads())
        return _asked if _asked is not None else default_threads()


def rest():
    """Let spinning workers sleep now: Python (NumPy, BLAS) runs next."""
    if _runtime is not None:
        _runtime.exprc_pool_rest()


def workers():
    """How many worker threads this process has created (0 before the first parallel kernel)."""
    return int(_runtime.exprc_pool_workers()) if _runtime is not None else 0


def attach(library):
    """Called once, when the run-time ``library`` loads: give it the thread count, and make
    it known to threadpoolctl where that is used."""
    global _runtime
    with _lock:
        library.lib.exprc_set_num_threads(_asked if _asked is not None else default_threads())
        _runtime = library.lib
    _register_threadpoolctl()


_registered = False


def _register_threadpoolctl():
    """Register the controller with threadpoolctl now if it is imported, else when it is
    (importing it here would cost every process a fifth of a second)."""
    if "threadpoolctl" in sys.modules:
        _register(sys.modules["threadpoolctl"])
    elif not any(isinstance(f, _WhenImported) for f in sys.meta_path):
        sys.meta_path.insert(0, _WhenImported())


class _WhenImported(importlib.abc.MetaPathFinder):
    """Registers the controller right after threadpoolctl is imported, then removes itself."""

    def find_spec(self, name, path=None, target=None):
        if name != "threadpoolctl":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            _register(module)

        spec.loader.exec_module = exec_module
        return spec


def _register(threadpoolctl):
    global _registered
    if _registered or not hasattr(threadpoolctl, "register"):  # register: threadpoolctl 3.5
        return
    _registered = True

    class ExprcController(threadpoolctl.LibController):
        """exprc's thread pool, limited with the OpenMP libraries (it plays their part)."""

        user_api = "openmp"
        internal_api = "exprc"
        filename_prefixes = ("libexprc_runtime",)
        check_symbols = ("exprc_get_num_threads", "exprc_set_num_threads")

        def get_num_threads(self):
            return self.dynlib.exprc_get_num_threads()

        def set_num_threads(self, num_threads):
            self.dynlib.exprc_set_num_threads(int(num_threads))

        def get_version(self):
            from exprc.version import __version__

            return __version__

    threadpoolctl.register(ExprcController)
