"""A small, backend-neutral kernel IR: what one fused loop nest computes.

A :class:`Kernel` is a loop nest over an index space whose lengths are known only at run
time; it reads and writes :class:`Buffer` objects and computes a DAG of scalar expressions.
:class:`RowPassKernel` and :class:`RowChainKernel` are the kinds whose axes have roles.
See docs/internals/kernel-ir.md.

>>> x = Buffer("x", "float64", ndim=1)
>>> out = Buffer("out", "float64", ndim=1, output=True)
>>> e = Call("exp", (Load(x),), "float64")
>>> k = Kernel("k0_exp_x", ndim=1, buffers=(x, out), stores=((out, e),))
>>> [b.name for b in k.inputs], [b.name for b in k.outputs]
(['x'], ['out'])
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


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
    def args(self) -> tuple[Expr, ...]:
        return ()


@dataclass(eq=False)
class Load(Expr):
    """The element of ``buffer`` at the current index (converted to nothing: same dtype)."""

    buffer: Buffer
    note: str = ""

    @property
    def dtype(self) -> str:  # type: ignore[override]  # a Load has its buffer's dtype, not its own
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
    call_args: tuple[Expr, ...]
    dtype: str
    note: str = ""

    @property
    def args(self) -> tuple[Expr, ...]:
        return self.call_args


@dataclass(eq=False)
class Cast(Expr):
    """``arg`` converted to ``dtype`` with NumPy's (unsafe) ``astype`` semantics."""

    arg: Expr
    dtype: str
    note: str = ""

    @property
    def args(self) -> tuple[Expr, ...]:
        return (self.arg,)


@dataclass(eq=False)
class Acc(Expr):
    """The result of the kernel's reduction, in the reduction's output dtype; in a
    :class:`RowPassKernel`, of the :class:`Reduction` or :class:`Contraction` ``of``."""

    dtype: str
    note: str = ""
    of: Reduction | Contraction | None = None


@dataclass(eq=False)
class Extent(Expr):
    """The length of index axis ``axis``, an int64 (the same for every element)."""

    axis: int
    dtype: str = "int64"
    note: str = ""


@dataclass(eq=False)
class RowDot(Expr):
    """In a :class:`RowPassKernel`: the current row of the matrix times the vector,
    ``X[i, :] @ w``, accumulated in ``dtype`` (the dtype of both)."""

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
    initial: object | None = None

    def __post_init__(self) -> None:
        if self.op not in REDUCTION_OPS:
            raise ValueError(f"reduction op {self.op!r} is not one of {REDUCTION_OPS}")


@dataclass(eq=False)
class Contraction:
    """In a :class:`RowPassKernel`: ``sum over rows i of value_i * X[i, j]`` for every
    column ``j`` (``X.T @ g``), accumulated in ``dtype``, the dtype of ``value`` and ``X``."""

    value: Expr
    dtype: str
    note: str = ""


class _Buffers:
    """What every kind of kernel has: the buffers it reads and those it writes, in
    argument order."""

    buffers: tuple[Buffer, ...]

    @property
    def inputs(self) -> list[Buffer]:
        return [b for b in self.buffers if not b.output]

    @property
    def outputs(self) -> list[Buffer]:
        return [b for b in self.buffers if b.output]


@dataclass(eq=False)
class Kernel(_Buffers):
    """One loop nest: ``buffers`` in argument order, ``stores`` (buffer, expression) pairs
    written at every index (at every kept index when there is a reduction)."""

    name: str
    ndim: int
    buffers: tuple[Buffer, ...]
    stores: tuple[tuple[Buffer, Expr], ...]
    reduction: Reduction | None = None
    note: str = ""
    #: The graph nodes the kernel computes, as text, for the comment above it.
    computes: tuple[str, ...] = field(default=())

    @property
    def roots(self) -> list[Expr]:
        """The expressions the kernel evaluates: its stores and its reduction's value."""
        return [e for _, e in self.stores] + ([self.reduction.value] if self.reduction is not None else [])


#: What a buffer of a :class:`RowPassKernel` is indexed by.
ROW_PASS_WALKS = ("matrix", "row", "column", "scalar")


@dataclass(eq=False)
class RowPassKernel(_Buffers):
    """One pass over the rows of ``matrix``; see the module docstring.

    ``walks`` maps each buffer name to one of :data:`ROW_PASS_WALKS`: the matrix
    is indexed by (row, column), ``vector`` and the epilogue's per-column inputs
    and results by the column, per-row inputs and results by the row. Every
    non-scalar buffer has ``ndim`` 2 (a stride per index axis, 0 on the axis it
    does not walk). ``stores`` are written per row, per column or once, as the
    buffer walks; an expression stored per row may use :class:`RowDot` and
    per-row loads, one stored per column or once the :class:`Acc` of ``sums``
    and ``contractions`` and per-column loads; all may use constants, scalars
    and :class:`Extent`.

    >>> X = Buffer("X", "float64", 2); w = Buffer("w", "float64", 2)
    >>> out = Buffer("out", "float64", 2, output=True)
    >>> g = Contraction(RowDot("float64"), "float64")
    >>> k = RowPassKernel("k0_gram", (X, w, out), X, w, ((out, Acc("float64", of=g)),), (), (g,),
    ...                   {"X": "matrix", "w": "column", "out": "column"})
    >>> k.ndim, [b.name for b in k.outputs]
    (2, ['out'])
    """

    name: str
    buffers: tuple[Buffer, ...]
    matrix: Buffer
    vector: Buffer
    stores: tuple[tuple[Buffer, Expr], ...]
    sums: tuple[Reduction, ...]
    contractions: tuple[Contraction, ...]
    walks: dict[str, str]
    note: str = ""
    #: The graph nodes the kernel computes, as text, for the comment above it.
    computes: tuple[str, ...] = field(default=())
    ndim = 2
    reduction = None  # not a loop-nest kernel's single reduction

    def __post_init__(self) -> None:
        for buffer in self.buffers:
            if self.walks.get(buffer.name) not in ROW_PASS_WALKS:
                raise ValueError(f"row pass {self.name}: buffer {buffer.name} walks {self.walks.get(buffer.name)!r}")
        for reduction in self.sums:
            if reduction.op != "add" or reduction.naxes != 1:
                raise ValueError(f"row pass {self.name}: only sums over the rows, not {reduction.op}")

    @property
    def roots(self) -> list[Expr]:
        """The expressions the kernel evaluates: its stores, summands and contraction weights."""
        return [e for _, e in self.stores] + [r.value for r in self.sums] + [c.value for c in self.contractions]


@dataclass(eq=False)
class RowChainKernel(_Buffers):
    """Several reductions over the same rows, one after another, and what follows them, in
    one kernel (softmax: the row maximum, the sum of ``exp(x - max)``, then every element
    divided by it).

    The index space is that of a :class:`Kernel` whose reduction reduces the last
    ``naxes`` axes. ``reductions`` run in order, each over the whole row; the value
    of one may use the :class:`Acc` (``of`` it) of those before it. ``stores``
    write per row where the buffer is ``outer`` (after every reduction), at every
    index otherwise. Only the CUDA back end renders it (see :mod:`exprc.codegen.ir.row_chain`).

    >>> x = Buffer("x", "float64", 2); out = Buffer("out", "float64", 2, output=True)
    >>> top = Reduction("max", Load(x), 1, "float64", "float64")
    >>> k = RowChainKernel("k0_chain", 2, 1, (x, out), (top,),
    ...                    ((out, Call("subtract", (Load(x), Acc("float64", of=top)), "float64")),))
    >>> len(k.roots), k.kept
    (2, 1)
    """

    name: str
    ndim: int
    naxes: int
    buffers: tuple[Buffer, ...]
    reductions: tuple[Reduction, ...]
    stores: tuple[tuple[Buffer, Expr], ...]
    note: str = ""
    #: The graph nodes the kernel computes, as text, for the comment above it.
    computes: tuple[str, ...] = field(default=())
    reduction = None  # not a loop-nest kernel's single reduction

    @property
    def kept(self) -> int:
        """The number of kept (leading) axes."""
        return self.ndim - self.naxes

    @property
    def roots(self) -> list[Expr]:
        """The expressions the kernel evaluates: its stores and its reductions' values."""
        return [e for _, e in self.stores] + [r.value for r in self.reductions]


def walk(roots: Iterable[Expr], known: Iterable[int] = ()) -> list[Expr]:
    """The expression nodes reachable from ``roots``, each after its arguments; nodes whose
    ids are in ``known`` (values computed already) are neither listed nor walked through.

    >>> a = Const(1.0, "float64"); b = Call("negative", (a,), "float64")
    >>> [type(n).__name__ for n in walk([b, a])]
    ['Const', 'Call']
    """
    order: list[Expr] = []
    seen: set[int] = set(known)
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
