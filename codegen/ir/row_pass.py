"""Row passes: a matrix-vector product, the work on each of its rows, and what reads the
matrix again, in one pass over the matrix.

:func:`find` recognises the pattern in a simplified graph and :func:`build` makes it one
:class:`~exprc.codegen.ir.kernel.RowPassKernel`, which the C back end renders.
See docs/internals/row-passes.md.

>>> import exprc as ex
>>> from exprc.graph import toposort
>>> from exprc.codegen.c.target import TARGET
>>> X, w, t = ex.matrix("X"), ex.vector("w"), ex.vector("t")
>>> grad = X.T @ ex.sigmoid(t * (X @ w))
>>> (group,) = find(toposort([grad]), [grad], TARGET.fusable)
>>> [role for _, role in group.results], group.outputs == [grad]
(['contraction'], True)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from exprc.codegen.ir import kernel as ir
from exprc.codegen.ir.names import identifier, slug, unique
from exprc.codegen.ir.steps import KernelStep, accumulator_dtype, cast, elemwise_expr, note
from exprc.ops.elemwise import Elemwise
from exprc.ops.linalg import MatMul
from exprc.ops.reduction import Sum, SumToShape
from exprc.ops.shape import DimShuffle, ShapeI
from exprc.tensor import TensorConstant

if TYPE_CHECKING:
    from exprc.codegen.ir.target import Target
    from exprc.graph import Apply, Variable
    from exprc.tensor import TensorVariable

#: Value classes: per row (one element per row of X), per column (of X), and scalars computed
#: before the pass (from the number of rows) or after it (from the sums).
ROW, COLUMN, BEFORE, AFTER = "row", "column", "before", "after"

FLOATS = ("float32", "float64")


@dataclass
class RowPassGroup:
    """What one row pass computes: see the module docstring.

    ``kinds`` maps each value the group computes to its class; ``nodes`` are the
    graph nodes in order (the NumPy fallback runs them); ``shared`` the nodes of
    ``nodes`` that only look at the matrix (its transpose, its number of rows):
    computed outside the group too where other nodes need them. ``outputs`` are
    the values the kernel stores, ``results`` the sums and products it forms.
    """

    product: Apply
    matrix: TensorVariable
    row_axis: int
    kinds: dict[TensorVariable, str]
    nodes: list[Apply]
    shared: set[Apply]
    outputs: list[TensorVariable] = field(default_factory=list)
    results: list[tuple[Apply, str]] = field(default_factory=list)
    #: The nodes whose values nothing outside the group needs: the usual lowering skips them.
    internal: set[Apply] = field(default_factory=set)

    @property
    def exclusive(self) -> list[Apply]:
        """The nodes only this group computes (the shared ones are computed outside too)."""
        return [n for n in self.nodes if n not in self.shared]


def matrix_axis(var: TensorVariable, axis: int) -> tuple[TensorVariable, int]:
    """``(base, base_axis)``: the matrix ``var`` is a transpose of (or ``var``), and which of its
    axes ``axis`` of ``var`` is.

    >>> import exprc as ex
    >>> X = ex.matrix("X")
    >>> matrix_axis(X.T, 0) == (X, 1)
    True
    """
    while var.owner is not None and isinstance(var.owner.op, DimShuffle) and var.owner.op.new_order == (1, 0):
        var, axis = var.owner.inputs[0], 1 - axis
    return var, axis


def _transposes(var: TensorVariable) -> list[Apply]:
    """The DimShuffle nodes between ``var`` and the matrix it is a transpose of."""
    nodes: list[Apply] = []
    while var.owner is not None and isinstance(var.owner.op, DimShuffle) and var.owner.op.new_order == (1, 0):
        nodes.append(var.owner)
        var = var.owner.inputs[0]
    return nodes[::-1]


def _product(node: Apply) -> tuple[TensorVariable, int] | None:
    """``(matrix, row_axis)`` when ``node`` is a float matrix-vector MatMul, else None."""
    if not isinstance(node.op, MatMul):
        return None
    a, b = node.inputs
    if {a.ndim, b.ndim} != {1, 2} or a.dtype != b.dtype or a.dtype not in FLOATS:
        return None
    if node.outputs[0].dtype != a.dtype:
        return None
    # X @ w: the rows are X's axis 0; w @ A: A's axis 1 (A's columns).
    return matrix_axis(a, 0) if a.ndim == 2 else matrix_axis(b, 1)


def _contraction(
    node: Apply, matrix: TensorVariable, row_axis: int, kinds: Mapping[TensorVariable, str]
) -> TensorVariable | None:
    """The per-row operand ``g`` when ``node`` is ``X.T @ g`` or ``g @ X`` over this matrix's rows."""
    if not isinstance(node.op, MatMul):
        return None
    a, b = node.inputs
    if a.ndim == 2 and b.ndim == 1:
        mat, contracted, g = a, 1, b
    elif a.ndim == 1 and b.ndim == 2:
        mat, contracted, g = b, 0, a
    else:
        return None
    if kinds.get(g) != ROW or matrix_axis(mat, contracted) != (matrix, row_axis):
        return None
    if not (g.dtype == mat.dtype == node.outputs[0].dtype == matrix.dtype):
        return None
    return g


def _counts_rows(node: Apply, matrix: TensorVariable, row_axis: int, kinds: Mapping[TensorVariable, str]) -> bool:
    """Whether ``node`` is ``shape[0]`` of a per-row value or the matrix's number of rows."""
    if not isinstance(node.op, ShapeI):
        return False
    (var,) = node.inputs
    return (node.op.axis == 0 and kinds.get(var) == ROW) or matrix_axis(var, node.op.axis) == (matrix, row_axis)


def _elemwise_kind(node: Apply, kinds: Mapping[TensorVariable, str], fusable: Callable[[Apply], bool]) -> str | None:
    """The class of an elementwise node's result from its inputs', or None when it has none."""
    if not (isinstance(node.op, Elemwise) and fusable(node)):
        return None
    found = {kinds[v] for v in node.inputs if v in kinds}
    out = node.outputs[0]
    if ROW in found:
        return ROW if found <= {ROW, BEFORE} and out.ndim == 1 else None
    if COLUMN in found:
        return COLUMN if found <= {COLUMN, BEFORE, AFTER} and out.ndim == 1 else None
    if AFTER in found:
        return AFTER if out.ndim == 0 else None
    if found == {BEFORE}:
        return BEFORE if out.ndim == 0 else None
    return None


def find(order: Sequence[Apply], outputs: Iterable[Variable], fusable: Callable[[Apply], bool]) -> list[RowPassGroup]:
    """The row passes in the graph whose nodes are ``order`` (a topological order), computing
    ``outputs``; ``fusable(node)`` says whether an elementwise node has a C form.

    Each matrix-vector product starts at most one group; groups do not overlap.
    """
    users: dict[Variable, list[Apply]] = {}
    for node in order:
        for var in dict.fromkeys(node.inputs):
            users.setdefault(var, []).append(node)
    taken: set[Apply] = set()
    groups: list[RowPassGroup] = []
    for position, node in enumerate(order):
        if node in taken:
            continue
        found = _product(node)
        if found is None:
            continue
        group = _grow(node, found, order[position + 1 :], fusable, taken)
        if group is not None and _finish(group, users, set(outputs)):
            groups.append(group)
            taken.update(group.exclusive)
    return groups


def _grow(
    product: Apply,
    found: tuple[TensorVariable, int],
    later: Sequence[Apply],
    fusable: Callable[[Apply], bool],
    taken: set[Apply],
) -> RowPassGroup | None:
    """Classify the nodes after ``product`` that the pass can compute."""
    matrix, row_axis = found
    kinds: dict[TensorVariable, str] = {product.outputs[0]: ROW}
    nodes = _transposes(product.inputs[0] if product.inputs[0].ndim == 2 else product.inputs[1]) + [product]
    shared = set(nodes[:-1])
    results: list[tuple[Apply, str]] = []
    for node in later:
        if node in taken:
            continue
        out = node.outputs[0]
        kind = None
        if _counts_rows(node, matrix, row_axis, kinds):
            kind = BEFORE
            if kinds.get(node.inputs[0]) != ROW:
                shared.add(node)  # the matrix's own length: others may compute it too
        elif isinstance(node.op, Sum):
            (x,) = node.inputs
            if (
                kinds.get(x) == ROW
                and node.op.axis == (0,)
                and not node.op.keepdims
                and out.dtype in FLOATS
                and getattr(node.op, "initial", None) is None
            ):
                kind = AFTER
                results.append((node, "sum"))
        elif isinstance(node.op, SumToShape):
            g, *lengths = node.inputs
            # The number of rows of X as the target: at run time every per-row value has it.
            if (
                kinds.get(g) == ROW
                and node.op.axis == (0,)
                and len(lengths) == 1
                and lengths[0].owner is not None
                and lengths[0].owner in nodes
                and _counts_rows(lengths[0].owner, matrix, row_axis, kinds)
            ):
                kind = ROW
        elif isinstance(node.op, MatMul):
            if _contraction(node, matrix, row_axis, kinds) is not None:
                kind = COLUMN
                results.append((node, "contraction"))
                mat = node.inputs[0] if node.inputs[0].ndim == 2 else node.inputs[1]
                transposes = [n for n in _transposes(mat) if n not in nodes]
                nodes.extend(transposes)
                shared.update(transposes)
        else:
            kind = _elemwise_kind(node, kinds, fusable)
            if kind == BEFORE and all(v not in kinds or v.owner in shared for v in node.inputs):
                shared.add(node)  # only from the matrix's length: others may compute it too
        if kind is not None:
            kinds[out] = kind
            nodes.append(node)
    if not results:
        return None
    return RowPassGroup(product, matrix, row_axis, kinds, nodes, shared, results=results)


def _finish(group: RowPassGroup, users: Mapping[Variable, list[Apply]], outputs: set[Variable]) -> bool:
    """Drop what the group need not compute, find what it must store, and check that none of
    its inputs depends on what it computes. False when no group is left."""
    claimed = set(group.nodes)
    # Shared nodes nothing in the group uses (a length only other nodes need).
    for node in reversed(list(group.nodes)):
        if node in group.shared and not any(u in claimed for u in users.get(node.outputs[0], [])):
            claimed.discard(node)
    group.nodes = [n for n in group.nodes if n in claimed]
    group.shared &= claimed
    group.kinds = {v: k for v, k in group.kinds.items() if v.owner in claimed}
    exclusive = set(group.exclusive)

    def needed_outside(node: Apply) -> bool:
        var = node.outputs[0]
        return var in outputs or any(u not in claimed for u in users.get(var, []))

    group.outputs = [n.outputs[0] for n in group.exclusive if needed_outside(n)]
    group.internal = {n for n in group.nodes if n in exclusive or not needed_outside(n)}
    # The inputs of the group must not depend on its own results.
    depends: dict[Apply, bool] = {}
    for node in _ancestors([v for n in group.nodes for v in n.inputs if v.owner not in claimed]):
        depends[node] = node in exclusive or any(v.owner in depends and depends[v.owner] for v in node.inputs)
        if depends[node]:
            return False
    return True


def _ancestors(variables: Iterable[Variable]) -> list[Apply]:
    """The nodes computing ``variables``, each after its inputs' nodes."""
    from exprc.graph import toposort

    return toposort([v for v in variables if v.owner is not None])


def may_write_over(step: KernelStep, out: Variable, source: Variable) -> bool:
    """Whether the row pass of ``step`` may write its result ``out`` into the array of its input
    ``source`` (an update written in place), as far as the pass itself goes (whether later steps
    read ``source`` is the caller's to check): a result written per column or once is written
    after every row has been read, and then the pass reads ``source`` only where it writes (a
    per-column input of the epilogue, or a scalar read before the rows); a per-row result is
    written while other rows are still being read.

    >>> import exprc as ex
    >>> from exprc.codegen.ir.lower import lower
    >>> from exprc.codegen.c.target import TARGET
    >>> X, w = ex.matrix("X"), ex.vector("w")
    >>> new_w = w - 0.1 * (X.T @ ex.tanh(X @ w))
    >>> (step,) = lower([X, w], [new_w], TARGET, row_pass=True).steps
    >>> may_write_over(step, new_w, w), may_write_over(step, new_w, X)
    (True, False)
    """
    buffer = next((b for b, v in step.outputs if v is out), None)
    if buffer is None or source.type != out.type:
        return False
    kernel = step.kernel
    assert isinstance(kernel, ir.RowPassKernel)  # the step of a row pass
    walks = kernel.walks[buffer.name]
    if walks == "row":
        return False
    return all(
        kernel.walks[b.name] in ("matrix", "row", "scalar") or step.axes[b.name] == step.axes[buffer.name]
        for b, v in step.inputs
        if v is source
    )


# --- building the kernel ---------------------------------------------------------------------


def build(group: RowPassGroup, index: int, target: Target, texts: Mapping[Variable, str] | None = None) -> KernelStep:
    """The :class:`~exprc.codegen.ir.lower.KernelStep` computing ``group``, a
    :class:`~exprc.codegen.ir.kernel.RowPassKernel` named ``k{index}_…``."""
    return _Builder(group, target, texts or {}).build(index)


class _Builder:
    def __init__(self, group: RowPassGroup, target: Target, texts: Mapping[Variable, str]) -> None:
        self.group = group
        self.target = target
        self.note: Callable[[Variable], str] = lambda var: note(var, texts)
        self.names: set[str] = set()
        self.buffers: list[tuple[ir.Buffer, TensorVariable, str]] = []  # (buffer, graph variable, walks)
        self.leaves: dict[tuple[TensorVariable, str], ir.Load] = {}  # (variable, walks) -> Load
        self.memo: dict[TensorVariable, ir.Expr] = {}
        self.sums: list[ir.Reduction] = []
        self.contractions: list[ir.Contraction] = []

    def buffer(self, var: TensorVariable, walks: str, output: bool = False) -> ir.Buffer:
        base = "out" if output else identifier(var.name or f"t{len(self.buffers)}", self.target.reserves)
        name = unique(base, self.names)
        buffer = ir.Buffer(name, var.dtype, 0 if walks == "scalar" else 2, output=output)
        self.buffers.append((buffer, var, walks))
        return buffer

    def leaf(self, var: TensorVariable, walks: str) -> ir.Expr:
        if isinstance(var, TensorConstant) and var.ndim == 0:  # the only kind of Constant
            value = var.python_value() if var.type.weak else var.value.item()
            return ir.Const(value, var.dtype, self.note(var))
        walks = "scalar" if var.ndim == 0 else walks
        key = (var, walks)
        if key not in self.leaves:
            self.leaves[key] = ir.Load(self.buffer(var, walks), self.note(var))
        return self.leaves[key]

    def expr(self, var: TensorVariable, walks: str) -> ir.Expr:
        """The expression of ``var``, read per ``walks`` ("row" or "column") where it is an input."""
        if var in self.memo:
            return self.memo[var]
        if var not in self.group.kinds:
            return self.leaf(var, walks)
        return self.memo[var]  # nodes are built in order: a computed input is in the memo

    def build(self, index: int) -> KernelStep:
        group = self.group
        matrix = self.buffer(group.matrix, "matrix")
        product = group.product
        vector_var = product.inputs[1] if product.inputs[0].ndim == 2 else product.inputs[0]
        vector = self.buffer(vector_var, "column")
        for node in group.nodes:
            out = node.outputs[0]
            kind = group.kinds.get(out)
            walks = COLUMN if kind in (COLUMN, AFTER) else ROW
            if node is product:
                self.memo[out] = ir.RowDot(out.dtype, self.note(out))
            elif isinstance(node.op, DimShuffle):
                continue  # a transpose of the matrix: the strides say it
            elif isinstance(node.op, ShapeI):
                self.memo[out] = ir.Extent(0, note=self.note(out))
            elif isinstance(node.op, SumToShape):
                self.memo[out] = self.expr(node.inputs[0], walks)
            elif isinstance(node.op, Sum):
                value = cast(self.expr(node.inputs[0], ROW), out.dtype)
                reduction = ir.Reduction(
                    "add", value, 1, out.dtype, accumulator_dtype("add", out.dtype), self.note(out)
                )
                self.sums.append(reduction)
                self.memo[out] = ir.Acc(out.dtype, self.note(out), of=reduction)
            elif isinstance(node.op, MatMul):
                g = _contraction(node, group.matrix, group.row_axis, group.kinds)
                assert g is not None  # the group took the node as a contraction
                contraction = ir.Contraction(self.expr(g, ROW), out.dtype, self.note(out))
                self.contractions.append(contraction)
                self.memo[out] = ir.Acc(out.dtype, self.note(out), of=contraction)
            else:
                args = [self.expr(v, walks) for v in node.inputs]
                self.memo[out] = elemwise_expr(node, args, self.target, self.note)
        stores: list[tuple[ir.Buffer, ir.Expr]] = []
        outputs: list[tuple[ir.Buffer, TensorVariable]] = []
        for var in group.outputs:
            kind = group.kinds[var]
            walks = {ROW: "row", COLUMN: "column"}.get(kind, "scalar")
            buffer = self.buffer(var, walks, output=True)
            stores.append((buffer, cast(self.memo[var], var.dtype)))
            outputs.append((buffer, var))
        inputs = [(b, v) for b, v, _ in self.buffers if not b.output]
        walks_of = {b.name: w for b, _, w in self.buffers}
        last = group.outputs[-1]
        kernel = ir.RowPassKernel(
            name=f"k{index}_rowpass_{slug(last)}"[:64].rstrip("_"),
            buffers=tuple(b for b, _ in inputs) + tuple(b for b, _ in outputs),
            matrix=matrix,
            vector=vector,
            stores=tuple(stores),
            sums=tuple(self.sums),
            contractions=tuple(self.contractions),
            walks=walks_of,
            note=f"one pass over the rows of {self.note(group.matrix)}: "
            + ", ".join(self.note(v) for v in group.outputs),
            computes=tuple(self.note(n.outputs[0]) for n in group.nodes if not isinstance(n.op, DimShuffle)),
        )
        axes: dict[str, tuple[int | None, ...]] = {}
        for buffer, _var, how in self.buffers:
            if how == "matrix":
                axes[buffer.name] = (group.row_axis, 1 - group.row_axis)
            elif how == "row":
                axes[buffer.name] = (0, None)
            elif how == "column":
                axes[buffer.name] = (None, 0)
            else:
                axes[buffer.name] = ()
        column_inputs = tuple(
            b.name for b, _, how in self.buffers if how == "column" and not b.output and b is not vector
        )
        return KernelStep(kernel, inputs, outputs, axes, list(group.nodes), epilogue_inputs=column_inputs)
