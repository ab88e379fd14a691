"""The disk cache of compiled programs, from the command line.

::

    python -m exprc.cache            # where it is, how big, its limit, and each entry
    python -m exprc.cache size       # where it is, how big, its limit
    python -m exprc.cache clear      # delete every entry not in use
    python -m exprc.cache clear --older-than 30   # only entries not used for 30 days

A cache directory that is refused (see :meth:`DiskCache.refusal`) is neither listed nor
cleared: the command says why and exits with status 1.
See docs/internals/disk-cache.md.

>>> import tempfile
>>> main(["size", "--dir", tempfile.mkdtemp()])  # doctest: +ELLIPSIS
cache: ...
0 entries, 0 B (limit ...)
0
"""

import argparse
import os
import sys
import time

from exprc.codegen.cache.disk import DiskCache, max_bytes


def _bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def _summary(cache, entries, leftovers):
    print(f"cache: {cache.root}")
    print(f"{len(entries)} entries, {_bytes(sum(e.size for e in entries))} (limit {_bytes(max_bytes())})")
    if leftovers:
        print(f"{len(leftovers)} build folders and files left by builds, {_bytes(sum(x.size for x in leftovers))}")


def _list(cache, entries, leftovers):
    _summary(cache, entries, leftovers)
    for e in entries:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.modified))
        print(f"  {e.key[:12]}  {_bytes(e.size):>10}  {when}  {e.kind:<11}  {e.title}")


def _clear(cache, entries, leftovers, older_than):
    cutoff = time.time() - older_than * 86400 if older_than is not None else None
    chosen = [e for e in entries if cutoff is None or e.modified < cutoff]
    sizes = [e.size for e in chosen]  # read before the files go
    removed = [e for e in chosen if cache.remove(e)]
    freed = sum(size for e, size in zip(chosen, sizes) if e in removed)
    gone = [x for x in leftovers if (cutoff is None or x.modified < cutoff) and cache.remove_leftover(x)]
    cache.forget_usage()
    print(f"cache: {cache.root}")
    print(
        f"removed {len(removed)} of {len(entries)} entries, {_bytes(freed + sum(x.size for x in gone))} freed"
        + (f"; {len(chosen) - len(removed)} in use were left" if len(removed) < len(chosen) else "")
        + (f"; {len(gone)} left by stopped builds removed" if gone else "")
    )


def main(argv=None):
    """Run the command with ``argv`` (default: the command line); returns the exit status.

    >>> main(["list", "--dir", "/nonexistent/exprc-cache"])  # doctest: +ELLIPSIS
    cache: /nonexistent/exprc-cache
    0 entries, 0 B (limit ...)
    0
    """
    parser = argparse.ArgumentParser(
        prog="python -m exprc.cache",
        description="List, size or clear exprc's disk cache. Its size limit is $EXPRC_CACHE_MAX_MB MiB (default 1024).",
    )
    parser.add_argument("action", nargs="?", default="list", choices=("list", "size", "clear"))
    parser.add_argument(
        "--older-than", type=float, metavar="DAYS", help="with clear: only entries last used more than DAYS days ago"
    )
    parser.add_argument(
        "--dir", help="the cache directory (default: $EXPRC_CACHE_DIR, $XDG_CACHE_HOME/exprc or ~/.cache/exprc)"
    )
    args = parser.parse_args(argv)
    if args.older_than is not None and args.action != "clear":
        parser.error("--older-than goes with clear")
    cache = DiskCache(args.dir)
    refusal = cache.refusal(create=False)
    if refusal is not None:
        print(f"cache: {cache.root} ({refusal})")
        return 1
    entries, leftovers = cache.scan()
    try:
        if args.action == "clear":
            _clear(cache, entries, leftovers, args.older_than)
        elif args.action == "size":
            _summary(cache, entries, leftovers)
        else:
            _list(cache, entries, leftovers)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader stopped early (`| head`). As Python's docs advise, the rest goes to
        # /dev/null, so that flushing at exit does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
