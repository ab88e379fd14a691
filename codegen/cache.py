"""The on-disk cache of compiled shared libraries.

Entries are keyed by the SHA-256 of what decides the binary: the C source,
the compiler's identity and the flags (:func:`cache_key`). The cache lives in
``$EXPRC_CACHE_DIR``, or ``~/.cache/exprc``. An entry is three files in
``<root>/<key[:2]>/``:

- ``<key>.c``: the source, for people reading or debugging;
- ``<key>-<digest>.so``: the library, named by the SHA-256 of its own bytes,
  so a file of that name never changes once written;
- ``<key>.ref``: JSON naming the library and its SHA-256.

Every file is written to a temporary file in the same directory and renamed
into place (``os.replace``), so a reader sees a whole file or none, and two
processes storing the same entry at once each leave a consistent one. A
reader checks the library's SHA-256 against the reference before trusting
it; a missing or corrupted entry reads as absent and is built again.

>>> import tempfile
>>> cache = DiskCache(tempfile.mkdtemp())
>>> cache.lookup(cache_key("int f;", "cc 12", ["-O3"])) is None
True
"""
import hashlib
import json
import os
import tempfile
from pathlib import Path


def default_root():
    """``$EXPRC_CACHE_DIR`` when set, else ``~/.cache/exprc``."""
    return Path(os.environ.get("EXPRC_CACHE_DIR") or Path.home() / ".cache" / "exprc")


def cache_key(source, compiler, flags):
    """The SHA-256 (hex) of ``source``, the compiler's identity and its ``flags``."""
    h = hashlib.sha256()
    for part in (source, compiler, "\0".join(flags)):
        h.update(part.encode())
        h.update(b"\0\0")
    return h.hexdigest()


def atomic_write(path, data):
    """Write ``data`` (bytes) to ``path`` through a temporary file renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class DiskCache:
    """A directory of compiled libraries; see the module docstring for the layout."""

    def __init__(self, root=None):
        self.root = Path(root) if root is not None else default_root()

    def _dir(self, key):
        return self.root / key[:2]

    def source_path(self, key):
        """Where the C source of entry ``key`` is kept."""
        return self._dir(key) / f"{key}.c"

    def save_source(self, key, source):
        """Keep ``source`` in the cache (also for failed builds, to show in the error); returns its path."""
        path = self.source_path(key)
        atomic_write(path, source.encode())
        return path

    def lookup(self, key):
        """The path of the verified library for ``key``, or None when it is absent or corrupted."""
        ref = self._dir(key) / f"{key}.ref"
        try:
            meta = json.loads(ref.read_text())
            library = self._dir(key) / meta["library"]
            if Path(meta["library"]).name != meta["library"]:
                return None
            if sha256_file(library) != meta["sha256"]:
                return None
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return library

    def store(self, key, built_library):
        """Copy the freshly built ``built_library`` into the cache; returns the cached path."""
        data = Path(built_library).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        library = self._dir(key) / f"{key}-{digest[:16]}.so"
        atomic_write(library, data)
        meta = {"library": library.name, "sha256": digest}
        atomic_write(self._dir(key) / f"{key}.ref", json.dumps(meta).encode())
        return library

    def scratch_dir(self):
        """A fresh private directory inside the cache for a build (same file system as the entries)."""
        self.root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=self.root, prefix=".build-"))
