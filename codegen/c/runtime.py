"""The C run time of the entry points: arrays, broadcasting, and calling a kernel.

An entry point (:mod:`exprc.codegen.c.entry`) runs a segment's kernels on *slots*, one
:c:type:`exprc_array` per array, through :c:func:`exprc_step_run` and a static table per
kernel. The C text is ``runtime.h`` and ``runtime.c``, compiled once and linked into each program.
See docs/internals/c-call-path.md.

>>> "exprc_step_run" in runtime_source(2, 16), "exprc_step_run" in runtime_header(2, 16)
(True, False)
"""

from exprc.codegen.cfamily import templates

RETURN_CODES = {"OK": 0, "SHAPE_ERROR": 1, "FALLBACK": 2, "NO_MEMORY": 3, "BAD_OUTPUT": 4}

#: The run time's C: declarations (``@EXPRC_...@`` filled in per program), then functions.
_HEADER = templates.read(__package__, "runtime.h").strip("\n")
_BODY = templates.read(__package__, "runtime.c").strip("\n")


#: NumPy's largest rank (NPY_MAXDIMS): a program may have arrays of up to this many axes.
MAX_RANK = 64

#: The ranks the run time is compiled for: a program uses the smallest that covers its
#: arrays, so there are at most two run-time objects per compiler, and the common one keeps
#: its per-array records (and what a call clears of them) small.
RUNTIME_RANKS = (8, MAX_RANK)


def runtime_rank(maxdim):
    """The :data:`RUNTIME_RANKS` entry for a program whose arrays have at most ``maxdim`` axes."""
    return next(r for r in RUNTIME_RANKS if r >= maxdim) if maxdim <= MAX_RANK else int(maxdim)


def runtime_header(maxdim, object_head):
    """The declarations a program shares with the run time (types, return codes, entry
    points), for arrays of at most ``maxdim`` axes and a Python whose object header is
    ``object_head`` bytes (``object.__basicsize__``)."""
    return templates.fill(_HEADER, EXPRC_MAXDIM=runtime_rank(maxdim), EXPRC_OBJECT_HEAD=int(object_head))


def runtime_source(maxdim, object_head):
    """The run time as a translation unit of its own: compiled once per compiler and flags,
    kept in the disk cache, and linked into every program (see :func:`runtime_header`)."""
    return f"{runtime_header(maxdim, object_head)}\n\n{_BODY}\n"
