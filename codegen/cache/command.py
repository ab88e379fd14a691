"""The disk cache of compiled programs, from the command line.

::

    python -m exprc.cache            # where it is, how big, and each entry
    python -m exprc.cache size       # where it is and how big
    python -m exprc.cache clear      # delete every entry
    python -m exprc.cache clear --older-than 30   # only entries not written for 30 days

See docs/internals/disk-cache.md.

>>> import tempfile
>>> main(["size", "--dir", tempfile.mkdtemp()])  # doctest: +ELLIPSIS
cache: ...
0 entries, 0 B
0
"""

import argparse
import sys
import time

from exprc.codegen.cache.disk import DiskCache


def _bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def _summary(cache, entries):
    refusal = cache.refusal() if cache.root.exists() else None
    print(f"cache: {cache.root}" + (f" ({refusal})" if refusal else ""))
    print(f"{len(entries)} entries, {_bytes(sum(e.size for e in entries))}")


def _list(cache, entries):
    _summary(cache, entries)
    for e in entries:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.modified))
        print(f"  {e.key[:12]}  {_bytes(e.size):>10}  {when}  {e.kind:<11}  {e.title}")


def _clear(cache, entries, older_than):
    cutoff = time.time() - older_than * 86400 if older_than is not None else None
    chosen = [e for e in entries if cutoff is None or e.modified < cutoff]
    sizes = [e.size for e in chosen]  # read before the files go
    removed = [e for e in chosen if cache.remove(e)]
    freed = sum(size for e, size in zip(chosen, sizes) if e in removed)
    print(f"cache: {cache.root}")
    print(
        f"removed {len(removed)} of {len(entries)} entries, {_bytes(freed)} freed"
        + (f"; {len(chosen) - len(removed)} being built were left" if len(removed) < len(chosen) else "")
    )


def main(argv=None):
    """Run the command with ``argv`` (default: the command line); returns the exit status.

    >>> main(["list", "--dir", "/nonexistent/exprc-cache"])
    cache: /nonexistent/exprc-cache
    0 entries, 0 B
    0
    """
    parser = argparse.ArgumentParser(
        prog="python -m exprc.cache", description="List, size or clear exprc's disk cache."
    )
    parser.add_argument("action", nargs="?", default="list", choices=("list", "size", "clear"))
    parser.add_argument(
        "--older-than", type=float, metavar="DAYS", help="with clear: only entries last written more than DAYS days ago"
    )
    parser.add_argument(
        "--dir", help="the cache directory (default: $EXPRC_CACHE_DIR, $XDG_CACHE_HOME/exprc or ~/.cache/exprc)"
    )
    args = parser.parse_args(argv)
    if args.older_than is not None and args.action != "clear":
        parser.error("--older-than goes with clear")
    cache = DiskCache(args.dir)
    entries = cache.entries()
    if args.action == "clear":
        _clear(cache, entries, args.older_than)
    elif args.action == "size":
        _summary(cache, entries)
    else:
        _list(cache, entries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
