"""The C run time of the entry points: arrays, broadcasting, and calling a kernel.

An entry point (see :mod:`exprc.codegen.c.entry`) runs a *segment*, a run of
consecutive kernels, in one call from Python. It works on *slots*, one
:c:type:`exprc_array` per array the segment touches (its inputs, constants,
outputs, then its temporaries), and runs each kernel through
:c:func:`exprc_step_run` with a static table, :c:type:`exprc_step`, saying
which slot each kernel buffer reads and which array axis it walks per index
axis. ``exprc_step_run`` does in C what the Python runner does per kernel:

- the index space is the broadcast of the lengths the kernel's inputs give
  each index axis (NumPy's rule: a length of 1 broadcasts); lengths that
  disagree are a shape error with a message naming the arrays;
- the output shapes follow (reduced axes dropped, or 1 with keepdims); an
  output given by Python is checked against it, a temporary is allocated
  (a row pass has several outputs; other kernels one);
- buffers marked ``full`` (the matrix and vector of a row pass, which NumPy's
  ``matmul`` does not broadcast) set the index space's lengths first: where
  they disagree, or another array would broadcast them, ``EXPRC_FALLBACK``;
- the strides are turned into elements (an unaligned array, or a stride that
  is not a whole number of items, sends the segment back to Python, which
  copies), the axes ordered and merged as ``canonical_axes`` in
  :mod:`exprc.codegen.ir.call_plan` does (except for a kernel whose axes have roles,
  ``fixed``: a row pass gets rows and columns as they are), and the kernel
  called with its packed arguments.

The run time is the same for every program: it is compiled once, as a translation
unit of its own (:func:`runtime_source`), kept in the disk cache and linked into each
program, which only includes its declarations (:func:`runtime_header`). That keeps
the run time out of every program's compile time.

``run`` 0 computes shapes only (what :c:func:`shapes_*` entry points return to
Python so it can allocate the outputs). Cases the kernels do not cover
(an epilogue input that broadcasts the reduced result to a larger shape,
max/min over an empty axis) return ``EXPRC_FALLBACK``: Python then runs the segment kernel by
kernel, with NumPy where needed, exactly as before.

The C text is in ``runtime.h`` (the declarations) and ``runtime.c`` (the functions).

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
