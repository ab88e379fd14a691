"""A file read from the disk cache and verified: its bytes, and a path that opens exactly
those bytes (a link to ``/proc/self/fd/N`` of the descriptor they were read through, or a
private copy where there is no ``/proc``), for ``dlopen``.

>>> import tempfile
>>> folder = tempfile.mkdtemp()
>>> path = os.path.join(folder, "lib.so")
>>> with open(path, "wb") as f:
...     _ = f.write(b"verified")
>>> file = CachedFile(path, b"verified", os.open(path, os.O_RDONLY), links=lambda: folder)
>>> with open(path + ".new", "wb") as f:
...     _ = f.write(b"swapped!")
>>> os.replace(path + ".new", path)  # the file is replaced after it was verified
>>> open(file, "rb").read(), file.name
(b'verified', 'lib.so')
>>> file.close()
>>> sorted(os.listdir(folder))
['lib.so']
"""

import contextlib
import itertools
import os
import threading
import weakref
from pathlib import Path

_PROC_FD = None  # whether /proc/self/fd opens a descriptor's file (decided on first use)
_numbers = itertools.count()


def _proc_fd():
    global _PROC_FD
    if _PROC_FD is None:
        _PROC_FD = os.path.isdir("/proc/self/fd")
    return _PROC_FD


def _release(fd, link):
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
    if link is not None:
        with contextlib.suppress(OSError):
            os.unlink(link)


class CachedFile:
    """A verified file of the cache. ``os.fspath(file)`` opens exactly the verified bytes
    until :meth:`close`; :meth:`read_bytes` gives them; ``path`` is where the file is in the
    cache (for messages: ``str(file)`` is that path too) and ``name`` its file name.
    Closing is idempotent, and happens when the object is collected.

    The path is a name no other file had in this process: glibc's ``dlopen`` hands back a
    library already loaded under the same name without opening the file, and a library
    stays loaded after its descriptor is closed, so ``/proc/self/fd/N`` itself, with N
    reused, could load the wrong one. ``links()`` gives a folder only this user may write
    (in the cache), where the name is made: a link to ``/proc/self/fd/N`` (a copy where
    there is no ``/proc``). Without it (or a descriptor), the path is ``path`` itself."""

    _lock = threading.Lock()

    def __init__(self, path, data, fd=None, links=None):
        self.path = Path(path)
        self.name = self.path.name
        self._data, self._fd, self._links, self._link = data, fd, links, None
        self._finalizer = weakref.finalize(self, _release, fd, None)

    def read_bytes(self):
        """The verified bytes."""
        self._check_open()
        return self._data

    def fileno(self):
        """The descriptor the bytes were read through (its file is the cached one)."""
        self._check_open()
        return self._fd

    def __fspath__(self):
        with self._lock:
            self._check_open()
            if self._link is None:
                folder = self._links() if self._links is not None and self._fd is not None else None
                if folder is None:
                    return str(self.path)
                link = os.path.join(folder, f"{self.name}.{next(_numbers)}")
                if _proc_fd():
                    os.symlink(f"/proc/self/fd/{self._fd}", link)
                else:
                    fd = os.open(link, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                    with os.fdopen(fd, "wb") as f:
                        f.write(self._data)
                self._link = link
                self._finalizer.detach()
                self._finalizer = weakref.finalize(self, _release, self._fd, link)
            return self._link

    def _check_open(self):
        if self._data is None:
            raise ValueError(f"the cached file {self.path} is closed")

    def close(self):
        """Release the descriptor (and the name made for it); the path no longer opens the file."""
        self._data = None
        self._finalizer()

    @property
    def closed(self):
        """Whether :meth:`close` was called."""
        return self._data is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __str__(self):
        return str(self.path)

    def __repr__(self):
        return f"<CachedFile {self.path}{' (closed)' if self.closed else ''}>"
