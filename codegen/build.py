"""Compiling C source to a shared library and loading it with cffi (ABI mode).

The compiler is ``$CC`` (default ``cc``), run as ``$CC <FLAGS> -o lib.so src.c <LIBS>``.
Libraries are cached on disk (see :mod:`codegen.cache`) under a key made of
the source, the compiler's ``--version`` and the flags, and loaded with
``cffi.FFI().dlopen``. A failed compile raises :class:`CompileError` showing
the compiler's message and where the source was saved.

>>> lib = load_library("int twice(int x) { return 2 * x; }", "int twice(int x);")  # doctest: +SKIP
>>> lib.twice(21)  # doctest: +SKIP
42
"""
import os
import platform
import shlex
import shutil
import subprocess
import threading
from dataclasses import dataclass
from functools import lru_cache

import cffi

from .cache import DiskCache, cache_key

#: Flags for every build. -fno-math-errno lets loops over libm calls vectorize
#: (errno is never read) without -ffast-math, which would break NaN/inf semantics.
#: On x86, -mno-mmx: GCC may vectorize small integer reductions into MMX registers
#: without clearing them (emms), which leaves the x87 unit returning NaN in later,
#: unrelated code (NumPy's float floor_divide was hit).
FLAGS = ("-O3", "-std=gnu11", "-fPIC", "-shared", "-fopenmp", "-fno-math-errno") + (
    ("-mno-mmx",) if platform.machine() in ("x86_64", "AMD64", "i386", "i686") else ()
)


def libraries():
    """The libraries to link: libm, and glibc's vector math library where there is glibc."""
    libs = ["-lm"]
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        libs.append("-lmvec")
    return libs


class CompileError(RuntimeError):
    """The C compiler rejected generated source; the message has its output and the source path."""

    def __init__(self, message, source_path=None, stderr=""):
        super().__init__(message)
        self.source_path = source_path
        self.stderr = stderr


#: How many libraries this process compiled and loaded from the disk cache (for tests and tuning).
stats = {"compiled": 0, "loaded_from_disk": 0}

_loaded = {}  # key -> Library, for this process
_lock = threading.Lock()


@dataclass
class Library:
    """A loaded library: ``lib`` has the declared functions; ``path`` is the file loaded."""

    ffi: object
    lib: object
    path: str
    key: str


def compiler():
    """The C compiler command: ``$CC`` split as a shell would, else ``cc``."""
    return shlex.split(os.environ.get("CC") or "cc")


@lru_cache(maxsize=None)
def compiler_identity(command):
    """What identifies the compiler for the cache: its resolved path and ``--version`` output."""
    command = list(command)
    path = shutil.which(command[0]) or command[0]
    try:
        done = subprocess.run(command + ["--version"], capture_output=True, text=True, timeout=60)
        version = done.stdout.strip() or done.stderr.strip()
    except OSError as err:
        raise CompileError(f"cannot run the C compiler {command[0]!r} (set $CC to choose one): {err}") from None
    return f"{path}\n{' '.join(command)}\n{version}"


def clear_loaded():
    """Forget the libraries loaded in this process, so the next load reads the disk cache."""
    with _lock:
        _loaded.clear()


def load_library(source, cdef, cache=None):
    """Compile ``source`` (or find it in the disk cache) and load it; ``cdef`` declares its functions."""
    cache = cache or DiskCache()
    command = compiler()
    flags = list(FLAGS) + libraries()
    key = cache_key(source, compiler_identity(tuple(command)), flags)
    with _lock:
        if key in _loaded:
            return _loaded[key]
        path = cache.lookup(key)
        if path is None:
            path = _compile(source, key, command, flags, cache)
        else:
            stats["loaded_from_disk"] += 1
        ffi = cffi.FFI()
        ffi.cdef(cdef)
        library = Library(ffi, ffi.dlopen(str(path)), str(path), key)
        _loaded[key] = library
        return library


def _compile(source, key, command, flags, cache):
    source_path = cache.save_source(key, source)
    scratch = cache.scratch_dir()
    try:
        src = scratch / "kernels.c"
        src.write_text(source)
        out = scratch / "kernels.so"
        libs = [f for f in flags if f.startswith("-l")]
        argv = command + [f for f in flags if not f.startswith("-l")] + ["-o", str(out), str(src)] + libs
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        except OSError as err:
            raise CompileError(
                f"cannot run the C compiler {command[0]!r} (set $CC to choose one): {err}\n"
                f"the source is saved at {source_path}",
                source_path,
            ) from None
        if done.returncode != 0:
            message = (done.stderr or done.stdout).strip()
            raise CompileError(
                f"C compilation failed (exit status {done.returncode}) running:\n  {shlex.join(argv)}\n"
                f"{message}\nthe source is saved at {source_path}",
                source_path,
                done.stderr,
            )
        stats["compiled"] += 1
        return cache.store(key, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
