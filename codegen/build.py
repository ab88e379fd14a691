"""Compiling C source to a shared library and loading it with cffi (ABI mode).

The compiler is ``$CC`` (default ``cc``), run as ``$CC <FLAGS> -o lib.so src.c <LIBS>``.
Libraries are cached on disk (see :mod:`codegen.cache`) under a key made of
the normalised graph, the source, the compiler's identity, the flags and the
exprc version, and loaded with ``cffi.FFI().dlopen``; a library loaded once is
kept for the process. The compiler's identity is its resolved path, its file's
size, time and inode, and its ``--version`` output, which is remembered in the
cache for that file: a process that finds its libraries in the cache never runs
the compiler, not even for ``--version``. A failed compile raises
:class:`CompileError` showing the compiler's message and where the source was saved.

When the cache directory is refused (another user could write to it), a
:class:`CacheWarning` says so once, and libraries are compiled into a private
temporary directory, removed at exit: nothing is read from the refused one.

>>> lib = load_library("int twice(int x) { return 2 * x; }", "int twice(int x);")  # doctest: +SKIP
>>> lib.twice(21)  # doctest: +SKIP
42
"""
import atexit
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
import threading
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

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


class CacheWarning(UserWarning):
    """The disk cache is not used (see :meth:`codegen.cache.DiskCache.refusal`)."""


class CompileError(RuntimeError):
    """The C compiler rejected generated source; the message has its output and the source path."""

    def __init__(self, message, source_path=None, stderr=""):
        super().__init__(message)
        self.source_path = source_path
        self.stderr = stderr


#: How many libraries this process compiled and loaded from the disk cache (for tests and tuning).
stats = {"compiled": 0, "loaded_from_disk": 0}

_warned = set()  # refused cache roots already reported

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
def compiler_identity(command, cache_root=None):
    """What identifies the compiler (``command``, a tuple) for the cache key: its path, the
    size, time and inode of the file it resolves to, and its ``--version`` output, read
    from the cache at ``cache_root`` when it was recorded there for that very file."""
    command = list(command)
    path = shutil.which(command[0]) or command[0]
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
        file_id = f"{real} size={st.st_size} mtime={st.st_mtime_ns} inode={st.st_ino}"
    except OSError:
        file_id = f"{real} (missing)"
    signature = f"{path}\n{' '.join(command)}\n{file_id}"
    memo_name = "compiler-" + hashlib.sha256(signature.encode()).hexdigest()[:32]
    cache = DiskCache(cache_root) if cache_root is not None else None
    if cache is not None:
        known = cache.remembered(memo_name)
        if isinstance(known, dict) and known.get("signature") == signature and isinstance(known.get("version"), str):
            return f"{signature}\n{known['version']}"
    try:
        done = subprocess.run(command + ["--version"], capture_output=True, text=True, timeout=60)
    except OSError as err:
        raise CompileError(f"cannot run the C compiler {command[0]!r} (set $CC to choose one): {err}") from None
    version = done.stdout.strip() or done.stderr.strip()
    if cache is not None and done.returncode == 0:
        cache.remember(memo_name, {"signature": signature, "version": version})
    return f"{signature}\n{version}"


def clear_loaded():
    """Forget the libraries loaded in this process, so the next load reads the disk cache."""
    with _lock:
        _loaded.clear()


def load_library(source, cdef, cache=None, graph=""):
    """Compile ``source`` (or find it in the disk cache) and load it; ``cdef`` declares its
    functions; ``graph`` is the normalised graph text the source was rendered from."""
    cache = cache or DiskCache()
    refusal = cache.refusal()
    if refusal is not None and str(cache.root) not in _warned:
        _warned.add(str(cache.root))
        warnings.warn(f"{refusal}; compiling into a private temporary directory instead", CacheWarning, stacklevel=3)
    command = compiler()
    flags = list(FLAGS) + libraries()
    identity = compiler_identity(tuple(command), None if refusal else str(cache.root))
    key = cache_key(source, identity, flags, graph)
    with _lock:
        if key in _loaded:
            return _loaded[key]
        if refusal is not None:
            path = _compile(source, key, command, flags, DiskCache(_private_dir()), store=False)
        else:
            path = cache.lookup(key)
            if path is None:
                with cache.locked(key):
                    path = cache.lookup(key)  # another process may have built it meanwhile
                    if path is None:
                        path = _compile(source, key, command, flags, cache)
                    else:
                        stats["loaded_from_disk"] += 1
            else:
                stats["loaded_from_disk"] += 1
        ffi = cffi.FFI()
        ffi.cdef(cdef)
        library = Library(ffi, ffi.dlopen(str(path)), str(path), key)
        _loaded[key] = library
        return library


@lru_cache(maxsize=None)
def _private_dir():
    """A directory only this process uses, for builds when the cache is refused."""
    path = tempfile.mkdtemp(prefix="exprc-private-")
    atexit.register(shutil.rmtree, path, True)
    return path


def _compile(source, key, command, flags, cache, store=True):
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
        if not store:
            kept = Path(source_path).with_suffix(".so")
            os.replace(out, kept)
            return kept
        return cache.store(key, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
