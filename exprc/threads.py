"""How many threads compiled C kernels use: :func:`set_num_threads`, :func:`get_num_threads`
and :func:`num_threads` (a context manager). See docs/threads.md.

>>> import exprc as ex
>>> with ex.num_threads(1):
...     ex.get_num_threads()
1
"""

import contextlib
from collections.abc import Iterator

__all__ = ["get_num_threads", "num_threads", "set_num_threads"]


def set_num_threads(n: int) -> None:
    """Let C kernels use ``n`` threads from now on, the calling thread included (``n >= 1``).

    >>> import exprc as ex
    >>> before = ex.get_num_threads()
    >>> ex.set_num_threads(2)
    >>> ex.get_num_threads()
    2
    >>> ex.set_num_threads(before)
    """
    from exprc.codegen.c import pool  # the back end loads only when asked

    pool.set_num_threads(n)


def get_num_threads() -> int:
    """The number of threads C kernels may use: what :func:`set_num_threads` (or
    threadpoolctl) set, else ``$EXPRC_NUM_THREADS``, else ``$OMP_NUM_THREADS``, else the CPUs
    this process may run on.

    >>> import exprc as ex
    >>> ex.get_num_threads() >= 1
    True
    """
    from exprc.codegen.c import pool

    return pool.get_num_threads()


@contextlib.contextmanager
def num_threads(n: int) -> Iterator[None]:
    """Within the block, C kernels use ``n`` threads; the count before is restored after it.

    >>> import exprc as ex
    >>> with ex.num_threads(1):
    ...     ex.get_num_threads()
    1
    """
    before = get_num_threads()
    set_num_threads(n)
    try:
        yield
    finally:
        set_num_threads(before)
