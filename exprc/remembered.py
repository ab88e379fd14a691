"""Rewritten graphs remembered, in the process and in the disk cache.

Rewriting a training step's graph takes milliseconds, most of what ``exprc.function``
costs when the compiled code is already on disk, so the result is kept, under a key that
a changed rule or op never finds.
See docs/internals/rewrite-engine.md and docs/internals/disk-cache.md.

>>> import exprc as ex
>>> x = ex.vector("x")
>>> report = ex.RewriteReport()
>>> [str(v) for v in rewrite_remembered([x], [x * 1.0], "fast", report)], report.rules()
(['x'], ['multiply_by_one'])
"""

from functools import cache
from pathlib import Path

from .codegen.cache.memo import Memo
from .graph import canonical_text
from .rewrite import RewriteReport, rewrite
from .version import __version__

#: Rewritten graphs kept in this process, most recently used last.
MEMO_SIZE = 256

_memo = None  # a Memo, made on first use

#: Changes when what an entry holds changes (2: exprc.graph_format's JSON; 1, pickle, is never read).
FORMAT = "exprc-rewritten-graph-2"


def rewrite_remembered(leaves, outputs, mode, report):
    """``rewrite(outputs, mode, report)``, remembered. ``leaves`` are every variable the
    outputs depend on other than constants, in a fixed order (a function's inputs, then
    the shared variables it reads): a graph found on disk is rebuilt over them."""
    if mode == "none":
        return list(outputs)
    key = (tuple(leaves), tuple(outputs), mode)
    found = _the_memo().get_or_build(key, lambda: _from_disk(leaves, outputs, mode))
    rewritten, fired = found
    report.extend(fired)
    return list(rewritten)


def _the_memo():
    global _memo
    if _memo is None:
        _memo = Memo(MEMO_SIZE)
    return _memo


def clear_memo():
    """Forget the graphs rewritten in this process (the disk cache keeps its entries)."""
    _the_memo().clear()


def _from_disk(leaves, outputs, mode):
    """``(rewritten outputs, fired rules)`` from the disk cache, or rewritten and stored there."""
    # Imported on the first build, not by ``import exprc``: the cache and the format cost
    # a tenth of its time.
    from .codegen.cache.disk import DiskCache, cache_key, sha256

    cache = DiskCache()
    key = None
    if cache.refusal() is None:
        key = cache_key(
            canonical_text(list(leaves), list(outputs), sha256),
            FORMAT,
            [mode, source_fingerprint()],
            version=__version__,
        )
        loaded = _load(cache, key, leaves)
        if loaded is not None:
            return loaded
    fired = RewriteReport()
    rewritten = rewrite(outputs, mode, fired)
    if key is not None:
        _store(cache, key, leaves, rewritten, fired)
    return rewritten, list(fired)


def _load(cache, key, leaves):
    from .graph_format import GraphFormatError, loads

    found = cache.lookup_entry(key)
    if found is None:
        return None
    try:
        return loads(found[0].read_bytes(), leaves)
    except (OSError, GraphFormatError):
        return None  # damaged or hostile: only a miss, rewritten and stored over


def _store(cache, key, leaves, rewritten, fired):
    from .graph_format import GraphFormatError, dumps

    try:
        data = dumps(rewritten, leaves, fired)
    except GraphFormatError:
        return  # an op the format cannot describe: the next process rewrites again
    try:
        with cache.locked(key):
            cache.store(key, data, suffix=".graph")
    except OSError:
        pass  # not remembered on disk; the next process rewrites again


@cache
def source_fingerprint():
    """Names, sizes and modification times of exprc's own source files: what decides a
    rewritten graph, so a changed rule or op makes new keys."""
    root = Path(__file__).resolve().parent
    parts = []
    for path in sorted(root.rglob("*.py")):
        stat = path.stat()
        parts.append(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}")
    return "\n".join(parts)
