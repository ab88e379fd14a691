"""The on-disk cache of compiled shared libraries, CUBINs and rewritten graphs.

:class:`DiskCache` keeps entries keyed by :func:`cache_key`, written atomically under a
lock and checked before they are read, in a directory only this user can write to (it and
every folder above it are checked; :meth:`DiskCache.refusal`). Everything in it is reached
through descriptors, without following links, and a library is read once, verified, and
loaded through the very descriptor it was read from (:class:`CachedFile`). Past
``$EXPRC_CACHE_MAX_MB`` the least recently used entries go. When it cannot be used,
builds go to a private temporary folder instead.
See docs/internals/disk-cache.md.

>>> import tempfile
>>> cache = DiskCache(tempfile.mkdtemp())
>>> cache.refusal() is None
True
>>> key = cache_key("int f;", "cc 12", ["-O3"])
>>> cache.lookup(key) is None
True
>>> file = cache.store(key, b"not really a library")
>>> found, meta = cache.lookup_entry(key)
>>> found.read_bytes(), meta["size"], found.name == file.name
(b'not really a library', 20, True)
>>> found.close(), file.close()
(None, None)
"""

import contextlib
import json
import math
import os
import re
import stat
import threading
import time
import warnings
from pathlib import Path

from .cached_file import CachedFile
from .listing import BINARY, FILE_LIMIT, LEFTOVER_AGE, REF_LIMIT, Entry, Leftover, entry_key, listing, scan
from .safety import (
    DIR_FLAGS,
    Refused,
    forget_root,
    lock,
    open_dir,
    open_root,
    own_reason,
    parent_reason,
    read_file,
    remove_any,
    trusted,
    unlock,
    write_atomic,
)

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

__all__ = [
    "LEFTOVER_AGE",
    "CacheWarning",
    "CachedFile",
    "DiskCache",
    "Entry",
    "Leftover",
    "cache_key",
    "default_root",
    "max_bytes",
    "sha256",
]

#: Changes when the layout of entries or the meaning of keys changes.
FORMAT = "exprc-c-cache-2"

#: The size limit when ``$EXPRC_CACHE_MAX_MB`` is not set, in MiB.
DEFAULT_MAX_MB = 1024

#: The running total of the cache's size (bytes), in the cache directory.
USAGE = "usage.json"
LINKS = "exprc-links-"

_KEY = re.compile(r"[0-9a-f]{64}")
_BINARY_SUFFIXES = (".so", ".o", ".cubin", ".graph")
_SOURCE_SUFFIXES = (".c", ".cu")
_PREFIX = re.compile(r"(?:[A-Za-z][A-Za-z0-9_]*-)?")
_MEMO_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")

_warned = set()  # (what, cache root) already reported
_held = {}  # (real root, key) -> how many exclusive locks this process holds on it
_held_lock = threading.Lock()
_scratch_locks = {}  # path of a build folder of this process -> descriptor holding its lock
_scratch_lock = threading.Lock()
_links = {}  # (process id, real root) -> this process's folder for the names CachedFile makes
_links_lock = threading.Lock()
_private = None


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


class CacheWarning(UserWarning):
    """The disk cache is not used (see :meth:`DiskCache.refusal`), or not for one entry."""


def _warn_once(what, root, message):
    if (what, str(root)) not in _warned:
        _warned.add((what, str(root)))
        warnings.warn(message, CacheWarning, stacklevel=4)


def max_bytes():
    """The cache's size limit: ``$EXPRC_CACHE_MAX_MB`` MiB (default :data:`DEFAULT_MAX_MB`).
    A value that is not a positive number warns (:class:`CacheWarning`) and the default is
    used.

    >>> max_bytes() == DEFAULT_MAX_MB << 20 if "EXPRC_CACHE_MAX_MB" not in os.environ else True
    True
    """
    text = os.environ.get("EXPRC_CACHE_MAX_MB", "").strip()
    if not text:
        return DEFAULT_MAX_MB << 20
    try:
        mib = float(text)
    except ValueError:
        mib = math.nan
    if not (mib > 0 and math.isfinite(mib)):
        _warn_once(
            "limit",
            text,
            f"$EXPRC_CACHE_MAX_MB is {text!r}; expected a positive number of MiB: "
            f"the default limit, {DEFAULT_MAX_MB} MiB, is used",
        )
        return DEFAULT_MAX_MB << 20
    return int(mib * (1 << 20))


def _check_key(key):
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ValueError(f"cache key {key!r} is not a key of the cache (64 lowercase hex digits, as cache_key gives)")


def _private_root():
    """A folder only this process uses (mode 0700), removed when it exits."""
    global _private
    if _private is None:
        import atexit
        import shutil
        import tempfile

        _private = tempfile.mkdtemp(prefix="exprc-private-")
        atexit.register(shutil.rmtree, _private, True)
    return _private


def _private_folder():
    import tempfile

    return tempfile.mkdtemp(dir=_private_root())


class _Held:
    """Marks an entry locked exclusively by this process, so that its lookups inside the
    lock do not wait for it."""

    def __init__(self, root, key):
        self.token = (root.real, key)

    def __enter__(self):
        with _held_lock:
            _held[self.token] = _held.get(self.token, 0) + 1

    def __exit__(self, *exc):
        with _held_lock:
            _held[self.token] -= 1
            if not _held[self.token]:
                del _held[self.token]


def _holding(root, key):
    return (root.real, key) in _held


class DiskCache:
    """A directory of compiled libraries; see the module docstring."""

    def __init__(self, root=None):
        self._no_home = None
        if root is None:
            try:
                root = default_root()
            except (RuntimeError, KeyError, OSError) as err:  # no $HOME, a uid without a passwd entry
                self._no_home = str(err) or type(err).__name__
                root = Path("~/.cache/exprc")
        self.root = Path(root)

    # --- the directory ------------------------------------------------------------------------

    def _open(self, create=True):
        if self._no_home is not None:
            raise Refused(f"the home folder is unknown ({self._no_home}); set $EXPRC_CACHE_DIR or $XDG_CACHE_HOME")
        return open_root(self.root, create)

    def refusal(self, create=True):
        """None when the cache may be used (creating it, mode 0700, if missing, unless not
        ``create``), else why not: it or a folder above it may be written by another user,
        it cannot be created, opened or written, or there is no home folder to put it in.
        Without ``create``, a directory that does not exist yet is not refused."""
        if not create and self._no_home is None and not os.path.lexists(self.root):
            return None
        try:
            root = self._open(create)
            st = root.status()  # the folders above it were checked once; it, at every call
            if st.st_nlink == 0:  # removed since this process opened it
                forget_root(self.root)
                root = self._open(create)
                st = root.status()
            reason = own_reason(st)
            if reason is not None:
                forget_root(self.root)
                raise Refused(reason)
        except Refused as err:
            return f"the cache directory {self.root} is refused: {err}"
        return None

    def _usable(self):
        """The open :class:`~exprc.codegen.cache.safety.Root`, or None when the cache is
        refused (:meth:`refusal` says why, and the callers warn): then files go private."""
        try:
            return self._open()
        except Refused:
            return None

    def _cannot_write(self, err):
        """Warn once that the cache could not be written (``err``); the caller goes private."""
        _warn_once(
            "write",
            self.root,
            f"cannot write to the cache directory {self.root} ({err}); compiling into a private temporary directory instead",
        )

    def _entry_folder(self, root, key, create=False):
        return open_dir(root.fd, key[:2], create=create)

    def _in_folder(self, root, key, action):
        """``action(descriptor of the entry folder)``, the folder made when missing, and made
        and done again when it was removed meanwhile (``clear`` removes empty ones)."""
        for attempt in range(3):
            sub = self._entry_folder(root, key, create=True)
            try:
                return action(sub)
            except FileNotFoundError:
                if attempt == 2:
                    raise
            finally:
                os.close(sub)

    def source_path(self, key, suffix=".c"):
        """Where the source (C, or ``.cu`` for CUDA) of entry ``key`` is kept."""
        try:
            base = self._open(create=False).real
        except Refused:
            base = self.root
        return Path(base) / key[:2] / f"{key}{suffix}"

    # --- reading ------------------------------------------------------------------------------

    def lookup(self, key):
        """The verified library for ``key`` (a :class:`CachedFile`), or None when it is absent
        or damaged."""
        found = self.lookup_entry(key)
        return None if found is None else found[0]

    def lookup_entry(self, key):
        """``(file, reference)`` for ``key``: the verified library as a :class:`CachedFile`
        (close it once loaded) and the JSON object of its ``.ref`` file (with what
        :meth:`store` was given as ``extra``); None when the entry is absent or damaged.
        The entry's use is recorded (for eviction, least recently used first)."""
        _check_key(key)
        try:
            root = self._open(create=False)
            sub = self._entry_folder(root, key)
        except OSError:
            return None
        if sub is None:
            return None
        try:
            held = None
            if not _holding(root, key):  # else this process is building it: no waiting for itself
                with contextlib.suppress(OSError):
                    held = lock(sub, f"{key}.lock", exclusive=False, create=False)
            try:
                return self._read_entry(root, sub, key)
            finally:
                unlock(held)
        finally:
            os.close(sub)

    def _read_entry(self, root, sub, key):
        ref = read_file(sub, f"{key}.ref", REF_LIMIT)
        if ref is None:
            return None
        fd, _, data = ref
        try:
            meta = json.loads(data)
            name = meta["library"]
            match = BINARY.fullmatch(name) if isinstance(name, str) else None
            if meta["key"] != key or match is None or match["key"] != key:
                return None
            size, digest = meta["size"], meta["sha256"]
            if not isinstance(size, int) or not isinstance(digest, str):
                return None
            with contextlib.suppress(OSError):
                os.utime(fd)  # the entry's last use: eviction goes by it
        except (ValueError, KeyError, TypeError):
            return None
        finally:
            os.close(fd)
        library = read_file(sub, name, FILE_LIMIT)
        if library is None:
            return None
        fd, _, data = library
        if len(data) != size or sha256(data).hexdigest() != digest:
            os.close(fd)
            return None
        return CachedFile(os.path.join(root.real, key[:2], name), data, fd, _links_of(root)), meta

    # --- writing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self, key, shared=False):
        """Hold the lock of entry ``key`` (between processes): exclusive while building it,
        ``shared`` while using it (linking with it); ``remove`` and eviction leave an entry
        whose lock is held. Where it cannot be taken (the cache cannot be written), the
        block runs unlocked."""
        _check_key(key)
        fd = sub = marked = None
        root = self._usable()
        if root is not None:
            try:
                for _ in range(3):  # again when the folder was removed meanwhile (by clear: it was empty)
                    sub = self._entry_folder(root, key, create=True)
                    fd = lock(sub, f"{key}.lock", exclusive=not shared)
                    if fd is not None:
                        break
                    os.close(sub)
                    sub = None
            except OSError as err:
                self._cannot_write(err)
            if fd is not None and not shared:
                marked = _Held(root, key)
                marked.__enter__()
        try:
            yield
        finally:
            if marked is not None:
                marked.__exit__()
                if not any(_exists(sub, f"{key}{end}") for end in (".ref", ".c", ".cu")):
                    with contextlib.suppress(OSError):  # nothing was kept: no lock file stays either
                        os.unlink(f"{key}.lock", dir_fd=sub)
            unlock(fd)
            if sub is not None:
                os.close(sub)

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

    def store(self, key, data_or_path, extra=None, suffix=".so", prefix=""):
        """Keep the freshly built ``data_or_path`` (the bytes, or a path to read them from) as
        the entry ``key``; returns it as a :class:`CachedFile`. ``extra`` (a dict of JSON
        values) is kept in the reference, for :meth:`lookup_entry`; ``suffix`` names the kind
        of file (``.so``, ``.o``, ``.cubin``, ``.graph``) and ``prefix`` starts its name
        (``libexprc_runtime-`` names the run time's library ``libexprc_runtime-<key>-<digest>.so``).
        Where the cache cannot be written, the file goes to a private temporary folder
        (with a :class:`CacheWarning`). Past the size limit, least recently used entries
        are removed."""
        _check_key(key)
        if suffix not in _BINARY_SUFFIXES:
            raise ValueError(f"cache file suffix {suffix!r} is not one of {_BINARY_SUFFIXES}")
        if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
            raise ValueError(f"cache file prefix {prefix!r}: expected letters, digits and '_' ending in '-', or ''")
        if isinstance(data_or_path, (bytes, bytearray, memoryview)):
            data = bytes(data_or_path)
        else:
            data = Path(data_or_path).read_bytes()
        digest = sha256(data).hexdigest()
        name = f"{prefix}{key}-{digest[:16]}{suffix}"
        meta = dict(extra or {})
        meta.update({"key": key, "library": name, "size": len(data), "sha256": digest})
        root = self._usable()
        if root is None:
            return self._private_file(name, data)

        def write(sub):
            fd = write_atomic(sub, name, data, keep_open=True)
            try:
                write_atomic(sub, f"{key}.ref", json.dumps(meta).encode())
            except BaseException:
                os.close(fd)
                raise
            _remove_replaced(sub, prefix, key, suffix, name)
            return fd, max(_size(sub, f"{key}{end}") for end in _SOURCE_SUFFIXES)

        try:
            fd, source = self._in_folder(root, key, write)
        except OSError as err:
            self._cannot_write(err)
            return self._private_file(name, data)
        file = CachedFile(os.path.join(root.real, key[:2], name), data, fd, _links_of(root))
        with contextlib.suppress(OSError):
            self._account(root, key, len(data) + len(json.dumps(meta)) + source)
        return file

    def _private_file(self, name, data):
        path = os.path.join(_private_folder(), name)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        return CachedFile(path, data, fd)

    def save_source(self, key, source, suffix=".c"):
        """Keep ``source`` in the cache (also for failed builds, to show in the error); returns
        its path (in a private temporary folder where the cache cannot be written)."""
        _check_key(key)
        if suffix not in _SOURCE_SUFFIXES:
            raise ValueError(f"source suffix {suffix!r} is not one of {_SOURCE_SUFFIXES}")
        name = f"{key}{suffix}"
        root = self._usable()
        if root is not None:
            try:
                self._in_folder(root, key, lambda sub: write_atomic(sub, name, source.encode()))
                return Path(root.real) / key[:2] / name
            except OSError as err:
                self._cannot_write(err)
        path = Path(_private_folder()) / name
        path.write_text(source)
        return path

    def scratch_dir(self):
        """A fresh private folder inside the cache for a build (same file system as the
        entries), locked while this process may use it, so that ``clear`` leaves it; in a
        private temporary folder where the cache cannot be written."""
        _release_scratch_locks()
        root = self._usable()
        if root is not None:
            try:
                return Path(_new_build_folder(root))
            except OSError as err:
                self._cannot_write(err)
        import tempfile

        return Path(tempfile.mkdtemp(dir=_private_root(), prefix=".build-"))

    # --- small JSON values ----------------------------------------------------------------------

    def remembered(self, name):
        """The JSON value stored under ``name`` in ``<root>/memo/`` (such as a compiler's
        ``--version``), or None."""
        if not _MEMO_NAME.fullmatch(name):
            raise ValueError(f"memo name {name!r}: expected letters, digits, '_', '.' and '-'")
        try:
            root = self._open(create=False)
            folder = open_dir(root.fd, "memo")
        except OSError:
            return None
        if folder is None:
            return None
        try:
            found = read_file(folder, f"{name}.json", REF_LIMIT)
        finally:
            os.close(folder)
        if found is None:
            return None
        os.close(found[0])
        try:
            return json.loads(found[2])
        except ValueError:
            return None

    def remember(self, name, value):
        """Store ``value`` (JSON) under ``name`` for :meth:`remembered` (nothing where the
        cache cannot be written)."""
        if not _MEMO_NAME.fullmatch(name):
            raise ValueError(f"memo name {name!r}: expected letters, digits, '_', '.' and '-'")
        root = self._usable()
        if root is None:
            return
        try:
            folder = open_dir(root.fd, "memo", create=True)
            try:
                write_atomic(folder, f"{name}.json", json.dumps(value).encode())
            finally:
                os.close(folder)
        except OSError as err:
            self._cannot_write(err)

    # --- listing, removing, the size limit -----------------------------------------------------

    def entries(self):
        """Every entry in the cache, as :class:`Entry` records, least recently used first."""
        return self.scan()[0]

    def scan(self):
        """``(entries, leftovers)``: :meth:`entries`, and the build folders (``.build-*``) and
        temporary files that builds left, as :class:`Leftover` records (those of running
        builds included: see ``Leftover.stale``)."""
        try:
            return scan(self._open(create=False))
        except Refused:
            return [], []

    def remove(self, entry):
        """Delete ``entry``'s files (only names exprc writes, owned by this user, never
        following a link), unless its lock is held: a process is building or loading it
        right now (then False)."""
        try:
            root = self._open(create=False)
            sub = self._entry_folder(root, entry.key)
        except OSError:
            return False
        if sub is None:
            return True
        try:
            if _holding(root, entry.key):
                return False
            fd = lock(sub, f"{entry.key}.lock", exclusive=True, wait=False)
            if fd is None:
                return False
            try:
                for name, st in listing(sub):
                    if entry_key(name) == entry.key and trusted(st) and not stat.S_ISDIR(st.st_mode):
                        if not name.endswith(".lock"):
                            with contextlib.suppress(FileNotFoundError):
                                os.unlink(name, dir_fd=sub)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{entry.key}.lock", dir_fd=sub)  # last, still held: see safety.lock
            finally:
                unlock(fd)
        except OSError:
            return False
        finally:
            os.close(sub)
        with contextlib.suppress(OSError):
            os.rmdir(entry.key[:2], dir_fd=root.fd)  # only when it is empty
        return True

    def remove_leftover(self, leftover):
        """Delete a build folder or temporary file a stopped build left; False when it may
        belong to a running build (its lock is held, or it is younger than
        :data:`LEFTOVER_AGE`)."""
        if not leftover.stale:
            return False
        try:
            root = self._open(create=False)
            if leftover.folder is None:
                remove_any(root.fd, leftover.name)
            else:
                sub = open_dir(root.fd, leftover.folder)
                if sub is not None:
                    try:
                        os.unlink(leftover.name, dir_fd=sub)
                    finally:
                        os.close(sub)
        except OSError:
            return False
        return True

    def _account(self, root, key, added):
        """Add the ``added`` bytes of entry ``key`` to the cache's running total
        (``usage.json``, under its ``flock``), and past :func:`max_bytes` evict. The total is
        counted again by listing the cache only then, when it is missing, or once a day (files
        written by other means are counted then): not at every store."""
        limit = max_bytes()
        fd = os.open(USAGE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=root.fd)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or not trusted(st):
                return
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                usage = json.loads(os.pread(fd, 4096, 0))
                total, counted = int(usage["bytes"]), float(usage["counted"])
            except (ValueError, KeyError, TypeError, OSError):
                total, counted = None, 0.0
            now = time.time()
            if total is None or now - counted > 86400 or total + added > limit:
                total, counted = self._evict(keep=key, limit=limit), now
            else:
                total += added
            text = json.dumps({"bytes": total, "counted": counted}).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, text, 0)
        finally:
            os.close(fd)  # releases the lock

    def forget_usage(self):
        """Drop the running total (after removing entries): the next store counts the cache."""
        with contextlib.suppress(Refused, OSError):
            os.unlink(USAGE, dir_fd=self._open(create=False).fd)

    def _evict(self, keep, limit):
        """List the cache; past ``limit``, remove what stopped builds left and then the least
        recently used entries (never ``keep``, nor those in use) until it is within 90% of
        it (room for the next stores); returns the bytes left."""
        found, left = self.scan()
        total = sum(e.size for e in found) + sum(x.size for x in left)
        if total <= limit:
            return total
        target = int(limit * 0.9)
        for leftover in left:
            size = leftover.size
            if self.remove_leftover(leftover):
                total -= size
        for entry in found:
            if total <= target:
                break
            if entry.key == keep:
                continue
            size = entry.size
            if self.remove(entry):
                total -= size
        return total


def _links_of(root):
    """What gives (made once per process) the folder where :class:`CachedFile` puts the names
    it loads by: a private folder on a memory file system (``$XDG_RUNTIME_DIR``,
    ``/dev/shm``) where one is safe, else ``.links-*`` in the cache ``root``; locked while
    the process lives and removed when it exits."""

    def folder():
        with _links_lock:
            token = (os.getpid(), root.real)
            path = _links.get(token) or _links.get((os.getpid(), None))
            if path is None:
                path = _memory_folder()
                token = (os.getpid(), None) if path is not None else token
                if path is None:
                    try:
                        path = _new_build_folder(root, ".links-")
                    except OSError:
                        return None
                import atexit
                import shutil

                atexit.register(shutil.rmtree, path, True)
                _links[token] = path
            return path

    return folder


def _memory_folder():
    """A fresh private folder on a memory file system, where making a name costs microseconds
    (on a disk, up to a millisecond), locked while this process lives; or None where there is
    no safe one. Such folders that no process holds any more (their process was killed, or
    forked and never ran its exit handlers) are removed."""
    for base in (os.environ.get("XDG_RUNTIME_DIR"), "/dev/shm"):
        if not base or not os.path.isabs(base):
            continue
        base = os.path.realpath(base)
        name = f"{LINKS}{os.urandom(8).hex()}"
        try:
            os.mkdir(os.path.join(base, name), 0o700)
        except OSError:
            continue
        path = os.path.join(base, name)
        if own_reason(os.lstat(path)) is not None or parent_reason(path) is not None:
            os.rmdir(path)
            continue
        _hold_folder(path, os.open(path, DIR_FLAGS))
        _remove_stale_memory_folders(base, keep=name)
        return path
    return None


def _remove_stale_memory_folders(base, keep):
    import shutil

    with contextlib.suppress(OSError), os.scandir(base) as it:
        for item in it:
            if not item.name.startswith(LINKS) or item.name == keep or not item.is_dir(follow_symlinks=False):
                continue
            st = item.stat(follow_symlinks=False)
            if st.st_uid != os.geteuid() or time.time() - st.st_mtime < 60:
                continue  # another user's, or one its process may be about to lock
            with contextlib.suppress(OSError):
                fd = os.open(item.path, DIR_FLAGS)
                try:
                    if fcntl is not None:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    shutil.rmtree(item.path)
                finally:
                    os.close(fd)


def _new_build_folder(root, prefix=".build-"):
    """A fresh folder ``<prefix><random>`` in ``root``, locked (shared) while this process may use it."""
    name = f"{prefix}{os.urandom(8).hex()}"
    os.mkdir(name, 0o700, dir_fd=root.fd)
    path = os.path.join(root.real, name)
    _hold_folder(path, os.open(name, DIR_FLAGS, dir_fd=root.fd))
    return path


def _hold_folder(path, fd):
    """Keep a shared lock on folder ``path`` (its descriptor ``fd``) while it exists."""
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_SH)
    with _scratch_lock:
        _scratch_locks[path] = fd


def _release_scratch_locks():
    """Close the locks of this process's build folders that are gone."""
    with _scratch_lock:
        for path, fd in list(_scratch_locks.items()):
            try:
                gone = os.fstat(fd).st_nlink == 0
            except OSError:
                gone = True
            if gone:
                del _scratch_locks[path]
                with contextlib.suppress(OSError):
                    os.close(fd)


def _remove_replaced(dir_fd, prefix, key, suffix, kept):
    """Delete the files an entry stored over left (same key and kind, another digest): a
    loader that opened one keeps reading it; one that read the old reference misses."""
    replaced = re.compile(re.escape(f"{prefix}{key}-") + "[0-9a-f]{16}" + re.escape(suffix))
    for other in os.listdir(dir_fd):
        if other != kept and replaced.fullmatch(other):
            with contextlib.suppress(OSError):
                os.unlink(other, dir_fd=dir_fd)


def _size(dir_fd, name):
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_size
    except OSError:
        return 0


def _exists(dir_fd, name):
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        return True
    except (OSError, TypeError):
        return False
