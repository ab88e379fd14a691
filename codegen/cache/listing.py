"""Listing the disk cache: its entries and what stopped builds left, by the exact names
exprc writes, owned by this user, never following a link.

>>> import tempfile
>>> from exprc.codegen.cache.safety import open_root
>>> scan(open_root(tempfile.mkdtemp()))
([], [])
"""

import contextlib
import os
import re
import stat
import time
from pathlib import Path

from .safety import DIR_FLAGS, open_dir, read_file, trusted

try:
    import fcntl
except ImportError:  # not POSIX
    fcntl = None

#: Build folders and temporary files younger than this (seconds) may belong to a running build.
LEFTOVER_AGE = 600

#: The largest reference file and binary read (bytes).
REF_LIMIT = 64 << 20
FILE_LIMIT = 1 << 32

SUBFOLDER = re.compile(r"[0-9a-f]{2}")
# Every name exprc writes into an entry folder: nothing else is listed, counted or removed.
BINARY = re.compile(
    r"(?P<prefix>[A-Za-z][A-Za-z0-9_]*-)?(?P<key>[0-9a-f]{64})-[0-9a-f]{16}(?:\.so|\.o|\.cubin|\.graph)"
)
OTHER = re.compile(r"(?P<key>[0-9a-f]{64})(?:\.ref|\.lock|\.c|\.cu|-unit[0-9]+\.c)")
TEMPORARY = re.compile(r"\.(?P<name>[^/]+)\.[A-Za-z0-9_]{6,32}\.tmp")
SCRATCH = re.compile(r"\.(?:build|links)-[A-Za-z0-9_]{6,32}")


def scan(root):
    """``(entries, leftovers)`` of the open cache ``root``: :class:`Entry` records, least
    recently used first, and :class:`Leftover` records."""
    found, left = [], []
    for name, st in listing(root.fd):
        if SCRATCH.fullmatch(name) and stat.S_ISDIR(st.st_mode) and trusted(st):
            left.append(Leftover(root, None, name, st))
        elif (SUBFOLDER.fullmatch(name) or name == "memo") and stat.S_ISDIR(st.st_mode):
            sub = open_dir(root.fd, name)
            if sub is None:
                continue
            try:
                files = {}
                for file, fst in listing(sub):
                    if not stat.S_ISREG(fst.st_mode) or not trusted(fst):
                        continue
                    key = entry_key(file)
                    if key is not None and name != "memo" and key[:2] == name:
                        files.setdefault(key, []).append((file, fst))
                    elif TEMPORARY.fullmatch(file):
                        left.append(Leftover(root, name, file, fst))
            finally:
                os.close(sub)
            for key, named in files.items():
                named.sort()
                found.append(Entry(key, [Path(root.real, name, f) for f, _ in named], [s for _, s in named], root))
    return sorted(found, key=lambda e: e.modified), left


def entry_key(name):
    match = BINARY.fullmatch(name) or OTHER.fullmatch(name)
    return match["key"] if match else None


def listing(dir_fd):
    """``[(name, lstat)]`` of folder ``dir_fd``, read through a descriptor of its own (one
    shared with another reader would share its position)."""
    fd = os.open(".", DIR_FLAGS, dir_fd=dir_fd)
    found = []
    try:
        with os.scandir(fd) as it:
            for item in it:
                with contextlib.suppress(OSError):
                    found.append((item.name, item.stat(follow_symlinks=False)))
    finally:
        os.close(fd)
    return found


def folder_size(dir_fd, name):
    total = 0
    with contextlib.suppress(OSError):
        for _, _, files, fd in os.fwalk(name, dir_fd=dir_fd, follow_symlinks=False):
            for file in files:
                with contextlib.suppress(OSError):
                    st = os.stat(file, dir_fd=fd, follow_symlinks=False)
                    if stat.S_ISREG(st.st_mode):
                        total += st.st_size
    return total


class Leftover:
    """A build folder (``folder`` None) or temporary file (in entry folder ``folder``) that a
    build left: ``name``, ``size`` (bytes), ``modified`` (seconds since the epoch)."""

    def __init__(self, root, folder, name, st):
        self.folder, self.name, self.modified = folder, name, st.st_mtime
        self._root = root
        self.size = folder_size(root.fd, name) if folder is None else st.st_size

    @property
    def stale(self):
        """Whether no build uses it any more: older than :data:`LEFTOVER_AGE` and, for a build
        folder, not locked by a running build."""
        if time.time() - self.modified < LEFTOVER_AGE:
            return False
        if self.folder is not None or fcntl is None:
            return True
        try:
            fd = os.open(self.name, DIR_FLAGS, dir_fd=self._root.fd)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False
        finally:
            os.close(fd)


class Entry:
    """One cache entry: its key and its files (source, library or object file, reference,
    lock), with their status when listed by :meth:`DiskCache.entries`."""

    def __init__(self, key, files, stats=None, root=None):
        self.key, self.files = key, files
        self._stats = stats if stats is not None else [stat_or_zero(p) for p in files]
        self._root = root

    @property
    def size(self):
        """Bytes on disk, all files together."""
        return sum(st.st_size for st in self._stats)

    @property
    def modified(self):
        """When the entry was last used (stored or looked up; seconds since the epoch): its
        reference's time, else its newest file's."""
        for path, st in zip(self.files, self._stats):
            if path.name == f"{self.key}.ref":
                return st.st_mtime
        return max((st.st_mtime for st in self._stats), default=0.0)

    @property
    def kind(self):
        """``"library"``, ``"runtime"`` (the run time's library, named with a prefix),
        ``"object"`` (the run time's object file), ``"cubin"`` (CUDA kernels), ``"graph"``
        (a rewritten graph, see :mod:`exprc.remembered`) or ``"source only"`` (a failed or
        unfinished build)."""
        binaries = [p.name for p in self.files if BINARY.fullmatch(p.name)]
        for suffix, kind in ((".so", "library"), (".o", "object"), (".cubin", "cubin"), (".graph", "graph")):
            named = [n for n in binaries if n.endswith(suffix)]
            if named:
                return "runtime" if kind == "library" and BINARY.fullmatch(named[0])["prefix"] else kind
        return "source only"

    @property
    def title(self):
        """What the entry computes, from its source's summary comment (its ``outputs:`` line)."""
        source = next((p for p in self.files if p.name in (f"{self.key}.c", f"{self.key}.cu")), None)
        head = ""
        if source is not None and self._root is not None:
            sub = open_dir(self._root.fd, self.key[:2])
            if sub is not None:
                try:
                    found = read_file(sub, source.name, FILE_LIMIT)
                finally:
                    os.close(sub)
                if found is not None:
                    os.close(found[0])
                    head = found[2][:4000].decode(errors="replace")
        for line in head.splitlines():
            line = line.strip(" */")
            if line.startswith("outputs:"):
                return line[len("outputs:") :].strip()
        return TITLES.get(self.kind, "")


TITLES = {
    "object": "the entry points' run time",
    "runtime": "the entry points' run time",
    "graph": "a rewritten graph",
}


def stat_or_zero(path):
    try:
        return os.lstat(path)
    except OSError:
        return os.stat_result((0,) * 10)
