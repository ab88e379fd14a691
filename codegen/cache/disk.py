"""The on-disk cache of compiled shared libraries, CUBINs and rewritten graphs.

:class:`DiskCache` keeps entries keyed by :func:`cache_key`, written atomically under a
lock and checked before they are read; a directory another user could write to is refused
(:meth:`DiskCache.refusal`).
See docs/internals/disk-cache.md.

>>> import tempfile
>>> cache = DiskCache(tempfile.mkdtemp())
>>> cache.refusal() is None
True
>>> cache.lookup(cache_key("int f;", "cc 12", ["-O3"])) is None
True
"""

import contextlib
import json
import os
import stat
from pathlib import Path

try:  # CPython's own SHA-256 (as the random module takes its SHA-512): importing hashlib
    from _sha2 import sha256  # loads OpenSSL, a few milliseconds of a warm process's start
except ImportError:
    try:
        from _sha256 import sha256
    except ImportError:
        from hashlib import sha256

try:
    import fcntl
except ImportError:  # not POSIX: renames alone keep entries whole
    fcntl = None

#: Changes when the layout of entries or the meaning of keys changes.
FORMAT = "exprc-c-cache-2"


def default_root():
    """``$EXPRC_CACHE_DIR``, else ``$XDG_CACHE_HOME/exprc``, else ``~/.cache/exprc``."""
    if os.environ.get("EXPRC_CACHE_DIR"):
        return Path(os.environ["EXPRC_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "exprc"


def cache_key(source, compiler, flags, graph="", version=""):
    """The SHA-256 (hex) of the normalised ``graph`` text, the C ``source``, the compiler's
    identity, its ``flags``, the ``version`` of exprc that built it and :data:`FORMAT`."""
    h = sha256()
    for part in (FORMAT, version, graph, source, compiler, "\0".join(flags)):
        h.update(part.encode())
        h.update(b"\0\0")
    return h.hexdigest()


def atomic_write(path, data):
    """Write ``data`` (bytes) to ``path`` through a temporary file renamed into place."""
    import tempfile  # only a process that writes needs it

    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def sha256_file(path):
    with open(path, "rb") as f:
        return sha256(f.read()).hexdigest()


def unsafe_reason(path):
    """Why directory ``path`` must not be trusted (None when it may): not a directory, not
    owned by this user, or writable by its group or by others."""
    try:
        st = os.stat(path)
    except OSError as err:
        return f"cannot inspect it: {err}"
    if not stat.S_ISDIR(st.st_mode):
        return "it is not a directory"
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return f"it belongs to user id {st.st_uid}, not to this user ({os.getuid()})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"other users may write to it (mode {stat.S_IMODE(st.st_mode):04o}); chmod 700 it to use it"
    return None


class CacheWarning(UserWarning):
    """The disk cache is not used (see :meth:`DiskCache.refusal`)."""


class DiskCache:
    """A directory of compiled libraries; see the module docstring."""

    def __init__(self, root=None):
        self.root = Path(root) if root is not None else default_root()

    def refusal(self):
        """None when the cache may be used (creating it, mode 0700, if missing), else why not."""
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as err:
            return f"cannot create {self.root}: {err}"
        reason = unsafe_reason(self.root)
        return None if reason is None else f"the cache directory {self.root} is refused: {reason}"

    def _dir(self, key, create=False):
        path = self.root / key[:2]
        if create:
            path.mkdir(mode=0o700, exist_ok=True)
        return path

    def source_path(self, key, suffix=".c"):
        """Where the source (C, or ``.cu`` for CUDA) of entry ``key`` is kept."""
        return self._dir(key) / f"{key}{suffix}"

    def save_source(self, key, source, suffix=".c"):
        """Keep ``source`` in the cache (also for failed builds, to show in the error); returns its path."""
        path = self._dir(key, create=True) / f"{key}{suffix}"
        atomic_write(path, source.encode())
        return path

    def lookup(self, key):
        """The path of the verified library for ``key``, or None when it is absent or damaged."""
        found = self.lookup_entry(key)
        return None if found is None else found[0]

    def lookup_entry(self, key):
        """``(path of the verified library, its reference)`` for ``key`` (the reference is the
        JSON object of the ``.ref`` file, with what :meth:`store` was given as ``extra``), or
        None when the entry is absent or damaged."""
        ref = self._dir(key) / f"{key}.ref"
        try:
            meta = json.loads(ref.read_text())
            if meta["key"] != key or Path(meta["library"]).name != meta["library"]:
                return None
            library = self._dir(key) / meta["library"]
            if library.stat().st_size != meta["size"] or sha256_file(library) != meta["sha256"]:
                return None
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return library, meta

    @contextlib.contextmanager
    def locked(self, key):
        """Hold the exclusive lock of entry ``key`` (between processes) while building it."""
        path = self._dir(key, create=True) / f"{key}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def lookup_or_build(self, key, build):
        """``(entry, built)``: the verified entry for ``key`` as :meth:`lookup_entry` gives it,
        or, when it is absent or damaged, what ``build()`` returns, called under the entry's
        lock after looking once more (another process may have just built it)."""
        found = self.lookup_entry(key)
        if found is None:
            with self.locked(key):
                found = self.lookup_entry(key)
                if found is None:
                    return build(), True
        return found, False

    def store(self, key, built_library, extra=None, suffix=".so"):
        """Copy the freshly built ``built_library`` (a path, or the bytes themselves) into the
        cache; returns the cached path. ``extra`` (a dict of JSON values) is kept in the
        reference, for :meth:`lookup_entry`; ``suffix`` names the kind of file (a library, an
        object file to link with, or a CUDA ``.cubin``)."""
        data = (
            bytes(built_library) if isinstance(built_library, (bytes, bytearray)) else Path(built_library).read_bytes()
        )
        digest = sha256(data).hexdigest()
        library = self._dir(key, create=True) / f"{key}-{digest[:16]}{suffix}"
        atomic_write(library, data)
        meta = dict(extra or {})
        meta.update({"key": key, "library": library.name, "size": len(data), "sha256": digest})
        atomic_write(self._dir(key) / f"{key}.ref", json.dumps(meta).encode())
        return library

    def entries(self):
        """Every entry in the cache, as :class:`Entry` records, oldest first (by when it was
        last written)."""
        found = []
        if not self.root.is_dir():
            return found
        for folder in self.root.iterdir():
            if len(folder.name) != 2 or not folder.is_dir():
                continue
            files = {}
            for path in folder.iterdir():
                key = path.name[:64]
                if len(key) == 64 and not path.name.startswith("."):
                    files.setdefault(key, []).append(path)
            for key, paths in files.items():
                found.append(Entry(key, sorted(paths)))
        return sorted(found, key=lambda e: e.modified)

    def remove(self, entry):
        """Delete ``entry``'s files, unless a process is building it right now (then False)."""
        lock = self._dir(entry.key) / f"{entry.key}.lock"
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return False
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    return False
            for path in entry.files:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
        finally:
            os.close(fd)
        with contextlib.suppress(OSError):
            lock.parent.rmdir()  # only when it is empty
        return True

    def scratch_dir(self):
        """A fresh private directory inside the cache for a build (same file system as the entries)."""
        import tempfile

        return Path(tempfile.mkdtemp(dir=self.root, prefix=".build-"))

    def remembered(self, name):
        """The JSON value stored under ``name`` in ``<root>/memo/`` (such as a compiler's
        ``--version``), or None."""
        try:
            return json.loads((self.root / "memo" / f"{name}.json").read_text())
        except (OSError, ValueError):
            return None

    def remember(self, name, value):
        """Store ``value`` (JSON) under ``name`` for :meth:`remembered`."""
        folder = self.root / "memo"
        folder.mkdir(mode=0o700, exist_ok=True)
        atomic_write(folder / f"{name}.json", json.dumps(value).encode())


class Entry:
    """One cache entry: its key and its files (source, library or object file, reference)."""

    def __init__(self, key, files):
        self.key, self.files = key, files

    @property
    def size(self):
        """Bytes on disk, all files together."""
        return sum(_stat(p).st_size for p in self.files)

    @property
    def modified(self):
        """When the entry was last written (seconds since the epoch)."""
        return max((_stat(p).st_mtime for p in self.files), default=0.0)

    @property
    def kind(self):
        """``"library"``, ``"object"`` (the run time programs link with), ``"cubin"`` (CUDA
        kernels), ``"graph"`` (a rewritten graph, see :mod:`exprc.remembered`) or
        ``"source only"`` (a failed or unfinished build)."""
        suffixes = {p.suffix for p in self.files}
        for suffix, kind in ((".so", "library"), (".o", "object"), (".cubin", "cubin"), (".graph", "graph")):
            if suffix in suffixes:
                return kind
        return "source only"

    @property
    def title(self):
        """What the entry computes, from its source's summary comment (its ``outputs:`` line)."""
        source = next((p for p in self.files if p.name in (f"{self.key}.c", f"{self.key}.cu")), None)
        try:
            head = source.read_text(errors="replace")[:4000] if source else ""
        except OSError:
            return ""
        for line in head.splitlines():
            line = line.strip(" */")
            if line.startswith("outputs:"):
                return line[len("outputs:") :].strip()
        return {"object": "the entry points' run time", "graph": "a rewritten graph"}.get(self.kind, "")


def _stat(path):
    try:
        return path.stat()
    except OSError:
        return os.stat_result((0,) * 10)
