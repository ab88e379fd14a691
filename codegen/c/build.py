"""Compiling C source to a shared library and loading it with cffi (ABI mode).

The compiler is ``$CC`` (default ``cc``); libraries, and the run-time library every program
is bound to, are kept in the disk cache (:mod:`exprc.codegen.cache.disk`) and loaded with
``FFI.dlopen``. A failed compile raises :class:`CompileError`.
See docs/internals/c-back-end.md and docs/internals/disk-cache.md.

>>> lib = load_library("int twice(int x) { return 2 * x; }", "int twice(int x);")  # doctest: +SKIP
>>> lib.twice(21)  # doctest: +SKIP
42
"""

import ast
import atexit
import contextlib
import io
import os
import shlex
import sys
import threading
import warnings
import weakref
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

from exprc.codegen.c import blas, pool
from exprc.codegen.c.runtime import RUNTIME_CDEF
from exprc.codegen.cache.disk import CacheWarning, DiskCache, cache_key, sha256
from exprc.version import __version__

#: Flags for every build. -fno-math-errno lets loops over libm calls vectorize
#: (errno is never read) without -ffast-math, which would break NaN/inf semantics.
#: -O2, not -O3: the kernels' loops are "#pragma omp simd" loops, which GCC 12 vectorizes
#: at -O2 too (with the same libmvec calls); -O3 adds loop versioning and cloning that
#: made compiling 10 to 25% slower (gradient programs, W4) with no difference in run
#: time measurable on benchmarks/bench_elementwise.py (1e3 to 1e7 elements, 2 cores).
#: On x86, -mno-mmx: GCC may vectorize small integer reductions into MMX registers
#: without clearing them (emms), which leaves the x87 unit returning NaN in later,
#: unrelated code (NumPy's float floor_divide was hit).
#: On x86-64, -march=native: the loops and glibc's vector math use this CPU's own vector
#: width (AVX2, AVX-512: 4 or 8 doubles at a time, not SSE2's 2); the cache key then holds
#: the CPU's identity (:func:`host_cpu`), so a cache shared between machines never hands
#: one a library built for another. -ffp-contract=off: no fused multiply-add where the
#: expression has a multiply then an add, so results round as NumPy's do.
#: -fopenmp-simd: the "omp simd" and "declare simd" pragmas, without OpenMP's run time
#: (threads are exprc's own pool, see pool.c).
_X86 = os.uname().machine in ("x86_64", "AMD64", "i386", "i686")
FLAGS = ("-O2", "-std=gnu11", "-fPIC", "-shared", "-fopenmp-simd", "-fno-math-errno", "-pipe") + (
    ("-mno-mmx", "-march=native", "-ffp-contract=off") if _X86 else ()
)

#: ``$EXPRC_PARALLEL``: ``pool`` (the default) runs kernels on exprc's thread pool;
#: ``openmp`` is a comparison build for benchmarks only: the same pieces under
#: ``#pragma omp parallel for`` with libgomp. Its flags are part of every program's cache key.
PARALLEL_MODES = {"pool": (), "openmp": ("-fopenmp", "-DEXPRC_OPENMP")}

#: The function of every program's prelude that binds it to the run-time library.
BIND = "exprc_bind_runtime"

#: The start of the run-time library's file name in the cache, where threadpoolctl looks.
RUNTIME_PREFIX = "libexprc_runtime-"


def parallel_flags():
    """The flags ``$EXPRC_PARALLEL`` asks for (see :data:`PARALLEL_MODES`).

    >>> parallel_flags() if not os.environ.get("EXPRC_PARALLEL") else ()
    ()
    """
    name = os.environ.get("EXPRC_PARALLEL", "").strip() or "pool"
    if name not in PARALLEL_MODES:
        raise ValueError(f"$EXPRC_PARALLEL is {name!r}; expected one of {sorted(PARALLEL_MODES)} or nothing")
    return PARALLEL_MODES[name]


#: ``$EXPRC_SANITIZE`` names a sanitizer to build with (``address``: AddressSanitizer), for
#: running the test suite under it; see docs/checking.md. Its flags are part of every build's
#: cache key, so sanitized and plain libraries never mix.
SANITIZERS = {"address": ("-fsanitize=address", "-fno-omit-frame-pointer")}


def sanitize_flags():
    """The extra flags ``$EXPRC_SANITIZE`` asks for (none when unset), or a ValueError naming
    the sanitizers known.

    >>> sanitize_flags() if not os.environ.get("EXPRC_SANITIZE") else ()
    ()
    """
    name = os.environ.get("EXPRC_SANITIZE", "").strip()
    if not name:
        return ()
    if name not in SANITIZERS:
        raise ValueError(f"$EXPRC_SANITIZE is {name!r}; expected one of {sorted(SANITIZERS)} or nothing")
    return SANITIZERS[name]


def libraries():
    """The libraries to link: libm, and glibc's vector math library where there is glibc."""
    libs = ["-lm"]
    if sys.platform.startswith("linux") and _glibc():
        libs.append("-lmvec")
    return libs


def _glibc():
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (AttributeError, ValueError, OSError):
        return False


# subprocess, tempfile and shutil are imported where they are used: a process that finds
# its libraries in the cache needs none of them (together about 15 ms of imports).


def _which(name):
    """``shutil.which(name)`` for the compiler's path, without importing shutil."""
    if os.sep in name:
        return name if os.access(name, os.X_OK) and not os.path.isdir(name) else None
    for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(folder or os.curdir, name)
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    return None


def compiler_missing(command=None):
    """None when the C compiler ``command`` (default :func:`compiler`) can be found, else a
    sentence saying why not.

    >>> compiler_missing(["/nonexistent/cc"])
    "the C compiler '/nonexistent/cc' is not found (set $CC to choose one)"
    """
    command = compiler() if command is None else command
    if not command:
        return "$CC is set but empty"
    if _which(command[0]) is None:
        return f"the C compiler {command[0]!r} is not found (set $CC to choose one)"
    return None


class CompileError(RuntimeError):
    """The C compiler rejected generated source; the message has its output and the source path."""

    def __init__(self, message, source_path=None, stderr=""):
        super().__init__(message)
        self.source_path = source_path
        self.stderr = stderr


#: How many libraries this process compiled and loaded from the disk cache (for tests and tuning).
stats = {"compiled": 0, "loaded_from_disk": 0}

_warned = set()  # refused cache roots already reported

#: key -> Library, while something holds it (a compiled function holds its Library; one
#: nothing holds is unloaded with its cffi lib object).
_loaded = weakref.WeakValueDictionary()
_lock = threading.Lock()
_runtime = None  # the run-time Library of this process: loaded once, never unloaded
_runtime_roots = set()  # cache roots whose run-time entry this process has checked


@dataclass
class Library:
    """A loaded library: ``lib`` has the declared functions; ``path`` is the file loaded."""

    ffi: object
    lib: object
    path: str
    key: str
    #: For the run-time library: the address of the table programs are bound to.
    table: int = 0


def compiler():
    """The C compiler command: ``$CC`` split as a shell would, else ``cc``."""
    return shlex.split(os.environ.get("CC") or "cc")


@cache
def host_cpu():
    """What ``-march=native`` compiles for: the processor's model and feature flags, as the
    first processor of ``/proc/cpuinfo`` lists them (the machine name elsewhere)."""
    lines = []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # the first processor is enough: they are alike
                if line.split(":")[0].strip() in (
                    "vendor_id",
                    "model name",
                    "cpu family",
                    "model",
                    "flags",
                    "Features",
                    "CPU implementer",
                    "CPU part",
                ):
                    lines.append(" ".join(line.split()))
    except OSError:
        pass
    return "\n".join(lines) or os.uname().machine


@cache
def compiler_identity(command, cache_root=None):
    """What identifies the compiler (``command``, a tuple) for the cache key: its path, the
    size, time and inode of the file it resolves to, and its ``--version`` output, read
    from the cache at ``cache_root`` when it was recorded there for that very file."""
    command = list(command)
    path = _which(command[0]) or command[0]
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
        file_id = f"{real} size={st.st_size} mtime={st.st_mtime_ns} inode={st.st_ino}"
    except OSError:
        file_id = f"{real} (missing)"
    signature = f"{path}\n{' '.join(command)}\n{file_id}"
    memo_name = "compiler-" + sha256(signature.encode()).hexdigest()[:32]
    cache = DiskCache(cache_root) if cache_root is not None else None
    if cache is not None:
        known = cache.remembered(memo_name)
        if isinstance(known, dict) and known.get("signature") == signature and isinstance(known.get("version"), str):
            return f"{signature}\n{known['version']}"
    import subprocess

    try:
        done = subprocess.run(command + ["--version"], capture_output=True, text=True, timeout=60)
    except OSError as err:
        raise CompileError(f"cannot run the C compiler {command[0]!r} (set $CC to choose one): {err}") from None
    version = done.stdout.strip() or done.stderr.strip()
    if cache is not None and done.returncode == 0:
        cache.remember(memo_name, {"signature": signature, "version": version})
    return f"{signature}\n{version}"


def clear_loaded():
    """Forget the libraries loaded in this process, so the next load reads the disk cache (the
    run-time library stays: its pool serves the whole process)."""
    with _lock:
        _loaded.clear()
        _runtime_roots.clear()


def runtime_library():
    """The run-time :class:`Library` loaded in this process, or None before the first program."""
    return _runtime


def parallel_units():
    """How many translation units of one program may compile at the same time: the CPUs
    this process may use."""
    return pool.cpu_count()


def load_library(source, cdef, cache=None, graph="", units=None, runtime=None):
    """Compile ``source`` (or find it in the disk cache) and load it; ``cdef`` declares its
    functions; ``graph`` is the normalised graph text the source was rendered from.

    ``units``, when given, is the same program split into translation units (see
    :func:`exprc.codegen.c.render.render_sources`): they are compiled at the same time, one
    compiler process each, and linked, which is what is built then.

    ``runtime``, for a program (a source rendered with the prelude, which has
    ``exprc_bind_runtime``), is the run-time library's source
    (:func:`exprc.codegen.c.runtime.runtime_source`): the program is bound to that library
    right after it is loaded. The run time is built once per compiler and cache, as an entry
    of its own, and loaded once per process. A plain library (``runtime`` None) is only loaded."""
    cache = cache or DiskCache()
    refusal = cache.refusal()
    if refusal is not None and str(cache.root) not in _warned:
        _warned.add(str(cache.root))
        warnings.warn(f"{refusal}; compiling into a private temporary directory instead", CacheWarning, stacklevel=3)
    command = compiler()
    base = list(FLAGS) + list(sanitize_flags()) + libraries()
    flags = base + list(parallel_flags())
    identity = compiler_identity(tuple(command), None if refusal else str(cache.root)) + "\n" + host_cpu()
    units = list(units) if units and len(units) > 1 else None
    bound = runtime is not None
    if bound:
        cdef = f"{cdef}\nint {BIND}(const void *table);"
    extra_flags = ([f"units={len(units)}"] if units else []) + ([f"runtime={_digest(runtime)}"] if bound else [])
    key = cache_key(source, identity, flags + extra_flags, graph, __version__)
    with _lock:
        library = _loaded.get(key)
        if library is not None:
            return library
        table = _load_runtime(runtime, cache, refusal, command, base, identity) if bound else None
        path, meta = _build(source, key, command, flags, cache, refusal, cdef, units)
        ffi = _ffi_from_description(meta.get("ffi"), cdef) if meta else None
        if ffi is None:
            ffi = _parsed_ffi(cdef)
        library = _loaded_library(ffi, path, key)
        if bound and getattr(library.lib, BIND)(ffi.cast("const void *", table)) != 0:
            raise RuntimeError(f"{library.path}: the program does not match the run-time library")
        _loaded[key] = library
        return library


def _build(source, key, command, flags, cache, refusal, cdef, units=None, prefix="", counted=True):
    """``(path, meta)`` of the library built from ``source``: the cache's entry (``meta`` its
    reference), built first when missing, or with the cache refused a private build."""
    if refusal is not None:
        path = _compile(
            source,
            key,
            command,
            flags,
            DiskCache(_private_dir()),
            store=False,
            units=units,
            prefix=prefix,
            counted=counted,
        )
        return path, None
    build = lambda: _compile(  # noqa: E731
        source, key, command, flags, cache, cdef=cdef, units=units, prefix=prefix, counted=counted
    )
    (path, meta), built = cache.lookup_or_build(key, build)
    if not built and counted:
        stats["loaded_from_disk"] += 1
    return path, meta


def _load_runtime(source, cache, refusal, command, flags, identity):
    """The address of the run-time table programs are bound to. The library is loaded once
    per process (its pool is the process's); each cache a program is built in gets its own
    entry of it, so another process using that cache finds it there."""
    global _runtime
    root = str(cache.root)
    if _runtime is not None and (refusal is not None or root in _runtime_roots):
        return _runtime.table
    key = cache_key(source, identity, flags, "runtime", __version__)
    path, meta = _build(source, key, command, flags, cache, refusal, RUNTIME_CDEF, prefix=RUNTIME_PREFIX, counted=False)
    _runtime_roots.add(root)
    if _runtime is None:
        ffi = _ffi_from_description(meta.get("ffi"), RUNTIME_CDEF) if meta else None
        if ffi is None:
            ffi = _parsed_ffi(RUNTIME_CDEF)
        library = _loaded_library(ffi, path, key)
        library.table = int(ffi.cast("intptr_t", library.lib.exprc_runtime_table()))
        pool.attach(library)
        blas.attach(library)
        _runtime = library
    elif hasattr(path, "close"):
        path.close()
    return _runtime.table


@lru_cache(maxsize=4)
def _digest(text):
    """The start of ``text``'s SHA-256: the run time's, for every program's key (the same
    text object each time, so this hashes it once)."""
    return sha256(text.encode()).hexdigest()[:16]


def _loaded_library(ffi, path, key):
    """The :class:`Library` of ``ffi.dlopen`` of ``path``: for a cache entry, a name used once
    in the process that opens exactly the verified bytes (so a reused descriptor number can
    never alias two libraries in dlopen). The entry is closed once loaded, so that a process
    holding thousands of functions holds no descriptor for each."""
    try:
        lib = ffi.dlopen(os.fspath(path))
    finally:
        if hasattr(path, "close"):
            path.close()
    return Library(ffi, lib, str(getattr(path, "path", path)), key)


def _parsed_ffi(cdef):
    import cffi  # its C parser (pycparser) is imported only here: in a process that compiles

    ffi = cffi.FFI()
    ffi.cdef(cdef)
    return ffi


def _cdef_digest(cdef):
    return sha256(cdef.encode()).hexdigest()


def ffi_description(cdef):
    """cffi's parsed form of the declarations ``cdef``, as JSON data: what cffi's out-of-line
    ABI mode writes into a generated Python module. :func:`_ffi_from_description` makes an
    FFI of it without parsing C, so a process loading a cached library imports neither
    cffi's parser nor pycparser (together most of a warm ``exprc.function`` call)."""
    builder = _parsed_ffi(cdef)
    builder.set_source("_exprc_kernels", None)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="exprc-ffi-") as tmp:
        module = Path(tmp) / "ffi.py"
        with contextlib.redirect_stdout(io.StringIO()):  # cffi says "generating ..."
            builder.emit_python_code(str(module))
        tree = ast.parse(module.read_text())
    call = next(
        node for node in ast.walk(tree) if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "FFI"
    )
    return {
        "cdef_sha256": _cdef_digest(cdef),
        "name": ast.literal_eval(call.args[0]),
        "arguments": {k.arg: _to_json(ast.literal_eval(k.value)) for k in call.keywords},
    }


def _ffi_from_description(description, cdef):
    """The FFI described by :func:`ffi_description`, or None when ``description`` is missing,
    is for other declarations than ``cdef``, or does not load."""
    try:
        if description["cdef_sha256"] != _cdef_digest(cdef):
            return None
        import _cffi_backend

        arguments = {k: _from_json(v) for k, v in description["arguments"].items()}
        return _cffi_backend.FFI(description["name"], **arguments)
    except Exception:  # noqa: BLE001 - an old or damaged description: parse the declarations
        return None


def _to_json(value):
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    if isinstance(value, tuple):
        return {"tuple": [_to_json(v) for v in value]}
    return value


def _from_json(value):
    if isinstance(value, dict):
        if "bytes" in value:
            return bytes.fromhex(value["bytes"])
        return tuple(_from_json(v) for v in value["tuple"])
    return value


@cache
def _private_dir():
    """A directory only this process uses, for builds when the cache is refused."""
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="exprc-private-")
    atexit.register(shutil.rmtree, path, True)
    return path


def _compile(source, key, command, flags, cache, store=True, cdef=None, units=None, prefix="", counted=True):
    """Build ``source`` (or its translation ``units``, compiled at the same time, then
    linked); returns the library's path, or with ``store`` ``(path, reference)`` of the new
    cache entry (keeping cffi's parsed ``cdef`` with it), its file name starting with
    ``prefix`` where the cache takes one. ``counted``: counted in :data:`stats`."""
    import shutil

    source_path = cache.save_source(key, source)
    scratch = cache.scratch_dir()
    try:
        libs = [f for f in flags if f.startswith("-l")]
        options = [f for f in flags if not f.startswith("-l")]
        compile_only = [f for f in options if f != "-shared"] + ["-c"]
        out = scratch / "kernels.so"
        if units is None:
            src = scratch / "kernels.c"
            src.write_text(source)
            jobs, link = [command + options + ["-o", str(out), str(src)] + libs], None
        else:
            objects, jobs = [], []
            for i, unit in enumerate(units):
                src, obj = scratch / f"unit{i}.c", scratch / f"unit{i}.o"
                src.write_text(unit)
                objects.append(str(obj))
                jobs.append(command + compile_only + ["-o", str(obj), str(src)])
            link = command + options + ["-o", str(out)] + objects + libs
        running = _start_compilers(jobs, command, source_path)
        try:  # parse the declarations while the compiler runs
            extra = {"ffi": ffi_description(cdef)} if cdef is not None and store else None
        finally:
            _finish_compilers(running, source_path, scratch)
        if link is not None:
            _finish_compilers(_start_compilers([link], command, source_path), source_path)
        if counted:
            stats["compiled"] += 1
        if not store:
            kept = Path(source_path).with_name(f"{prefix}{Path(source_path).stem}.so")
            os.replace(out, kept)
            return kept
        library = cache.store(key, out, extra, prefix=prefix)
        return library, dict(extra or {})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _start_compilers(jobs, command, source_path):
    """Start the compiler command lines ``jobs``, all at the same time."""
    import subprocess

    running = []
    try:
        for argv in jobs:
            running.append((argv, subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    except OSError as err:
        for _, process in running:
            process.kill()
            process.communicate()
        raise CompileError(
            f"cannot run the C compiler {command[0]!r} (set $CC to choose one): {err}\n"
            f"the source is saved at {source_path}",
            source_path,
        ) from None
    return running


def _finish_compilers(running, source_path, scratch=None):
    """Wait for the compilers :func:`_start_compilers` started; a CompileError for the first
    that failed (for a translation unit, its source is kept next to the program's)."""
    import subprocess

    failed = None
    for argv, process in running:
        try:
            stdout, stderr = process.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
        if process.returncode != 0 and failed is None:
            failed = (argv, process.returncode, stdout, stderr)
    if failed is None:
        return
    argv, returncode, stdout, stderr = failed
    message = (stderr or stdout).strip()
    where = f"the source is saved at {source_path}"
    unit = next((Path(a) for a in argv if a.endswith(".c")), None)
    if scratch is not None and unit is not None and unit.name.startswith("unit"):
        kept = Path(source_path).with_name(f"{Path(source_path).stem}-{unit.name}")
        kept.write_text(unit.read_text())
        where += f" (this translation unit of it at {kept})"
    raise CompileError(
        f"C compilation failed (exit status {returncode}) running:\n  {shlex.join(argv)}\n{message}\n{where}",
        source_path,
        stderr,
    )
