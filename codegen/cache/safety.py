"""The cache directory opened so that no other user can swap what is read from it.

:func:`open_root` checks the directory and every folder above it once per process (owned
by this user or root, not writable by others unless sticky, as OpenSSH checks ``~/.ssh``),
then keeps one descriptor of it; everything else is done relative to descriptors, never
following a symbolic link. See docs/internals/disk-cache.md.

>>> import tempfile
>>> root = open_root(tempfile.mkdtemp())
>>> fd = open_dir(root.fd, "ab", create=True)
>>> write_atomic(fd, "x.txt", b"hi")
>>> opened, status, data = read_file(fd, "x.txt", 100)
>>> data, status.st_size
(b'hi', 2)
>>> os.close(opened), os.close(fd)
(None, None)
"""

import contextlib
import errno
import os
import stat
import threading
import weakref
from collections import OrderedDict

try:
    import fcntl
except ImportError:  # not POSIX: renames alone keep entries whole
    fcntl = None

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
# O_NONBLOCK: a FIFO put where a file should be does not block the open
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
WRITE_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_SYMLINK_ERRNOS = (errno.ELOOP, errno.ENOTDIR, getattr(errno, "EMLINK", errno.ELOOP))


class Refused(OSError):
    """The cache directory (or a folder in it) may not be used; the message says why."""


def supported():
    """Whether this platform opens files relative to a directory's descriptor."""
    return os.open in os.supports_dir_fd and os.scandir in os.supports_fd and hasattr(os, "geteuid")


def _mode(st):
    return f"{stat.S_IMODE(st.st_mode):04o}"


def own_reason(st):
    """Why a folder of the cache with status ``st`` is not this user's private folder, or None."""
    if not stat.S_ISDIR(st.st_mode):
        return "it is not a directory"
    if st.st_uid != os.geteuid():
        return f"it belongs to user id {st.st_uid}, not to this user ({os.geteuid()})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"other users may write to it (mode {_mode(st)}); chmod 700 it to use it"
    return None


def parent_reason(real):
    """Why a folder above the real path ``real`` lets another user replace it, or None: a
    parent owned by another user than this one or root, or writable by its group or by
    others without the sticky bit."""
    path = real
    while True:
        parent = os.path.dirname(path)
        if parent == path:
            return None
        try:
            st = os.lstat(parent)
        except OSError as err:
            return f"cannot inspect {parent}, which holds it: {err.strerror}"
        if stat.S_ISLNK(st.st_mode):
            return f"{parent}, which holds it, changed while it was checked"
        if st.st_uid not in (0, os.geteuid()):
            return f"{parent}, which holds it, belongs to user id {st.st_uid}, who could replace it"
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX:
            return (
                f"other users may write to {parent}, which holds it (mode {_mode(st)}, no sticky bit), "
                f"and so replace it; chmod go-w {parent} or choose another $EXPRC_CACHE_DIR"
            )
        path = parent


class Root:
    """The checked cache directory: ``fd``, its descriptor, and ``real``, its real path."""

    def __init__(self, fd, real):
        self.fd, self.real = fd, real
        weakref.finalize(self, os.close, fd)  # once no operation uses it any more

    def status(self):
        """``os.fstat`` of the directory now (its mode may have changed since it was checked;
        ``st_nlink`` is 0 once it is removed)."""
        return os.fstat(self.fd)


_roots = OrderedDict()  # (absolute path as given, user id) -> Root, most recently used last
_roots_lock = threading.Lock()
_ROOTS_KEPT = 16


def open_root(path, create=True):
    """The :class:`Root` of cache directory ``path``, created (mode 0700) when missing with
    ``create``, checked and opened once per process; :class:`Refused` when it may not be
    used."""
    path = os.path.abspath(os.fspath(path))
    token = (path, os.geteuid())  # a process that changed user checks again
    with _roots_lock:
        root = _roots.get(token)
        if root is not None:
            _roots.move_to_end(token)
            return root
    root = _open_root(path, create)
    with _roots_lock:
        _roots[token] = root
        while len(_roots) > _ROOTS_KEPT:
            _roots.popitem(last=False)  # closed when the last operation using it ends
    return root


def forget_root(path):
    """Check ``path`` again when it is next opened (it was removed, or its mode changed)."""
    with _roots_lock:
        _roots.pop((os.path.abspath(os.fspath(path)), os.geteuid()), None)


def _open_root(path, create):
    if not supported():
        raise Refused("this platform cannot open files relative to a directory")
    if create:
        try:
            os.makedirs(path, mode=0o700, exist_ok=True)
        except FileExistsError:
            pass  # not a directory: said below
        except OSError as err:
            raise Refused(f"cannot create it: {err.strerror}") from None
    real = os.path.realpath(path)
    try:
        st = os.lstat(real)
    except OSError as err:
        raise Refused(f"cannot inspect it: {err.strerror}") from None
    reason = own_reason(st) or parent_reason(real)
    if reason is not None:
        raise Refused(reason)
    try:
        fd = os.open(real, DIR_FLAGS)
    except OSError as err:
        raise Refused(f"cannot open it: {err.strerror}") from None
    try:
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
            raise Refused("it changed while it was checked")
        if os.geteuid() != 0 and opened.st_mode & 0o300 != 0o300:
            raise Refused(f"this user may not write to it (mode {_mode(opened)})")
        with contextlib.suppress(AttributeError, OSError):
            if os.fstatvfs(fd).f_flag & os.ST_RDONLY:
                raise Refused("it is on a read-only file system")
    except BaseException:
        os.close(fd)
        raise
    return Root(fd, real)


def trusted(st):
    """Whether a file or folder with status ``st`` was written by this user and is not
    writable by others."""
    return st.st_uid == os.geteuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def open_dir(dir_fd, name, create=False):
    """A descriptor of this user's folder ``name`` in ``dir_fd``, or None when there is none
    (without ``create``). With ``create`` it is made (mode 0700) when missing, and a file or
    link in its way is removed; a folder in it that is not this user's is :class:`Refused`."""
    for _ in range(4):
        try:
            fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
        except FileNotFoundError:
            if not create:
                return None
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o700, dir_fd=dir_fd)
            continue
        except OSError as err:
            if err.errno not in _SYMLINK_ERRNOS:
                raise
            if not create:
                return None
            remove_any(dir_fd, name)  # a file or a link where the folder belongs
            continue
        if trusted(os.fstat(fd)):
            return fd
        os.close(fd)
        if not create:
            return None
        raise Refused(f"the folder {name} in the cache belongs to another user or others may write to it")
    raise OSError(errno.EAGAIN, f"the folder {name} in the cache keeps changing")


def read_file(dir_fd, name, limit):
    """``(fd, status, bytes)`` of this user's regular file ``name`` in ``dir_fd``, read
    through the descriptor (left open, for the caller to close); None when it is absent,
    not a regular file, not this user's, or longer than ``limit`` bytes."""
    try:
        fd = os.open(name, FILE_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or not trusted(st) or st.st_size > limit:
            os.close(fd)
            return None
        chunks, left = [], st.st_size + 1  # one byte more: a file that grew is seen
        while left > 0:
            chunk = os.read(fd, left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) != st.st_size:
            os.close(fd)
            return None
        return fd, st, data
    except OSError:
        os.close(fd)
        return None


def write_atomic(dir_fd, name, data, keep_open=False):
    """Write ``data`` to ``name`` in ``dir_fd`` through a temporary file renamed into place
    (whatever was in the way is replaced); with ``keep_open``, returns the new file's
    descriptor."""
    tmp = f".{name}.{os.urandom(6).hex()}.tmp"
    fd = os.open(tmp, WRITE_FLAGS, 0o600, dir_fd=dir_fd)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
        try:
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except OSError as err:
            if err.errno not in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST):
                raise
            remove_any(dir_fd, name)  # a folder where the file belongs
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    if keep_open:
        return fd
    os.close(fd)
    return None


def remove_any(dir_fd, name):
    """Remove ``name`` from ``dir_fd``, a folder with everything in it, never following a link."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        import shutil  # only a damaged cache needs it

        shutil.rmtree(name, dir_fd=dir_fd)  # with descriptors: links inside are removed, not followed
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dir_fd)


def lock(dir_fd, name, exclusive=True, create=True, wait=True):
    """A descriptor holding ``flock`` on lock file ``name`` in ``dir_fd`` (closing it
    releases it); None when it does not exist (without ``create``), or is held by another
    (without ``wait``). A lock file removed while it was awaited is not held: the new one
    is locked, so removing a lock file under its exclusive lock is safe."""
    if fcntl is None:
        return -1
    flags = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0) | (os.O_CREAT if create else 0)
    mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | (0 if wait else fcntl.LOCK_NB)
    for _ in range(100):
        try:
            fd = os.open(name, flags, 0o600, dir_fd=dir_fd)
        except FileNotFoundError:
            return None
        except OSError as err:
            if not create or err.errno not in (errno.EISDIR, *_SYMLINK_ERRNOS):
                raise
            remove_any(dir_fd, name)  # a folder or a link where the lock file belongs
            continue
        try:
            fcntl.flock(fd, mode)
        except BlockingIOError:
            os.close(fd)
            return None
        held = os.fstat(fd)
        try:
            now = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            now = None
        if now is not None and (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
            return fd
        os.close(fd)
        if not create:
            return None
    raise OSError(errno.EAGAIN, f"the lock file {name} keeps changing")


def unlock(fd):
    """Release a lock :func:`lock` took."""
    if fd is not None and fd >= 0:
        os.close(fd)
