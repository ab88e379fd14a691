"""A small, backend-neutral kernel IR: what one fused loop nest computes.

A :class:`Kernel` is a loop nest over an *index space* of ``ndim`` axes whose
lengths are known only at run time. It reads and writes named
:class:`Buffer` objects (a dtype; shape and strides are passed at run time,
strides in elements, 0 where an axis broadcasts) and computes a DAG of scalar
expressions:

- :class:`Load` reads a buffer at the current (broadcast) index;
- :class:`Const` is a literal of some dtype;
- :class:`Call` applies an exprc scalar operation, by its ``ScalarOp`` name,
  to arguments that already have the operation's loop dtypes;
- :class:`Cast` converts a value to another dtype (NumPy's ``astype``);
- :class:`Acc` is the value a :class:`Reduction` accumulated.

A kernel with a reduction reduces the *last* ``reduction.naxes`` axes of its
index space: the runner reorders axes so that kept axes come first. Buffers
marked ``outer`` are indexed by the kept axes only (their strides on reduced
axes are 0): the reduction's outputs, and inputs of the work that follows it.

Renderers (C now, CUDA later) turn a kernel into source text; the runner
passes the run-time lengths, pointers and strides.

>>> x = Buffer("x", "float64", ndim=1)
>>> out = Buffer("out", "float64", ndim=1, output=True)
>>> e = Call("exp", (Load(x),), "float64")
>>> k = Kernel("k0_exp_x", ndim=1, buffers=(x, out), stores=((out, e),))
>>> [b.name for b in k.inputs], [b.name for b in k.outputs]
(['x'], ['out'])
"""
from dataclasses import dataclass, field
from typing import Optional


@dataclass(frozen=True)
class Buffer:
    """An array a kernel reads or writes.

    ``ndim`` is 0 for a scalar (read once, no strides) or the kernel's index
    space rank (one stride per index axis). ``outer`` buffers are indexed by
    the kept axes of a reduction only.
    """

    name: str
    dtype: str
    ndim: int
    output: bool = False
    outer: bool = False


class Expr:
    """A scalar expression node. Nodes compare by identity: the DAG shares them.

    ``note`` is the graph expression the node computes, for comments.
    """

    dtype: str
    note: str

    @property
    def args(self):
        return ()


@dataclass(eq=False)
class Load(Expr):
    """The element of ``buffer`` at the current index (converted to nothing: same dtype)."""

    buffer: Buffer
    note: str = ""

    @property
    def dtype(self):
        return self.buffer.dtype


@dataclass(eq=False)
class Const(Expr):
    """A literal; ``value`` is a Python scalar already representable in ``dtype``."""

    value: object
    dtype: str
    note: str = ""


@dataclass(eq=False)
class Call(Expr):
    """``op(*args)`` for the exprc scalar op named ``op``; ``dtype`` is its result dtype.

    Arguments carry the op's loop input dtypes (casts are explicit :class:`Cast` nodes).
    """

    op: str
    call_args: tuple
    dtype: str
    note: str = ""

    @property
    def args(self):
        return self.call_args


@dataclass(eq=False)
class Cast(Expr):
    """``arg`` converted to ``dtype`` with NumPy's (unsafe) ``astype`` semantics."""

    arg: Expr
    dtype: str
    note: str = ""

    @property
    def args(self):
        return (self.arg,)


@dataclass(eq=False)
class Acc(Expr):
    """The result of the kernel's reduction, in the reduction's output dtype."""

    dtype: str
    note: str = ""


#: The reduction operations a kernel may perform.
REDUCTION_OPS = ("add", "mul", "max", "min", "and", "or")


@dataclass(eq=False)
class Reduction:
    """Reduce ``value`` (an expression over the full index space) over the last ``naxes`` axes.

    The accumulator has dtype ``acc_dtype`` (wider than ``dtype`` where that is
    more accurate, such as float64 for a float32 sum); :class:`Acc` gives the
    result converted to ``dtype``.
    """

    op: str
    value: Expr
    naxes: int
    dtype: str
    acc_dtype: str
    note: str = ""
    #: A value included in the reduction (NumPy's ``initial``), in ``acc_dtype``; None for none.
    initial: Optional[object] = None

    def __post_init__(self):
        if self.op not in REDUCTION_OPS:
            raise ValueError(f"reduction op {self.op!r} is not one of {REDUCTION_OPS}")


@dataclass(eq=False)
class Kernel:
    """One loop nest: ``buffers`` in argument order, ``stores`` (buffer, expression) pairs
    written at every index (at every kept index when there is a reduction)."""

    name: str
    ndim: int
    buffers: tuple
    stores: tuple
    reduction: Optional[Reduction] = None
    note: str = ""
    #: The graph nodes the kernel computes, as text, for the comment above it.
    computes: tuple = field(default=())

    @property
    def inputs(self):
        return [b for b in self.buffers if not b.output]

    @property
    def outputs(self):
        return [b for b in self.buffers if b.output]


def walk(roots):
    """The expression nodes reachable from ``roots``, each after its arguments.

    >>> a = Const(1.0, "float64"); b = Call("negative", (a,), "float64")
    >>> [type(n).__name__ for n in walk([b, a])]
    ['Const', 'Call']
    """
    order, seen = [], set()
    for root in roots:
        stack = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if id(node) in seen:
                continue
            if expanded:
                seen.add(id(node))
                order.append(node)
                continue
            stack.append((node, True))
            for arg in reversed(node.args):
                if id(arg) not in seen:
                    stack.append((arg, False))
    return order
