"""Lowering a graph to a program: fused kernels, and NumPy steps for everything else.

:func:`lower` walks the graph in dependency order and groups it:

- an *elementwise kernel* computes one elementwise value that must be
  stored (a program output, or an input of a NumPy step) from the chain of
  elementwise nodes feeding it, in one loop nest; elementwise values that are
  not stored are recomputed where they are used, never written to memory;
- a *reduction kernel* computes a Sum, Prod, Max, Min, All or Any together
  with the elementwise work that feeds it (the prologue) and the elementwise
  work on its result that follows it (the epilogue, while the result keeps
  the reduced shape);
- with ``row_pass=True``, a *row pass* computes a matrix-vector product, the
  elementwise work on its rows and what reads the matrix again (``X.T @ g``,
  sums over the rows) in one pass over the matrix (see :mod:`exprc.codegen.ir.row_pass`);
  the C back end asks for them, the CUDA renderer has no form for them;
- every other node (views, reshape, matmul, indexing, ...) is a *NumPy step*
  running the op's own ``perform``, as do elementwise and reduction nodes
  whose dtypes or operations the back end has no form for (its
  :class:`~exprc.codegen.ir.target.Target` says).

Each step runs at the position of its last node in the graph's order, or later
where it reads a value a row pass stores.

>>> import exprc as ex
>>> from exprc.codegen.c.target import TARGET
>>> x = ex.matrix("x")
>>> program = lower([x], [ex.exp(-x ** 2).sum(axis=1)], TARGET)
>>> [type(s).__name__ for s in program.steps]
['KernelStep']
>>> program.steps[0].kernel.name
'k0_sum_exp_neg_power_x'
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from exprc.codegen.ir import kernel as ir
from exprc.codegen.ir import row_pass as row_passes
from exprc.codegen.ir.constants import parameterize
from exprc.codegen.ir.names import identifier, slug, unique
from exprc.codegen.ir.steps import (
    NOTE_LIMIT,
    KernelStep,
    NumpyStep,
    Program,
    Step,
    accumulator_dtype,
    cast,
    elemwise_expr,
    note,
    step_reads,
    step_writes,
)
from exprc.graph import toposort
from exprc.printing import infix_texts
from exprc.tensor import TensorConstant

if TYPE_CHECKING:
    from exprc.codegen.ir.row_pass import RowPassGroup
    from exprc.codegen.ir.target import Target
    from exprc.graph import Apply, Variable
    from exprc.tensor import TensorVariable

__all__ = ["lower", "KernelStep", "NumpyStep", "Program", "note", "slug"]


# --- grouping ------------------------------------------------------------------------


def _consumers(order: Sequence[Apply]) -> dict[Variable, list[Apply]]:
    users: dict[Variable, list[Apply]] = {}
    for node in order:
        for var in dict.fromkeys(node.inputs):
            users.setdefault(var, []).append(node)
    return users


#: The most elementwise nodes one kernel's expression takes before a value inside it is stored
#: (the C compiler's time grows faster than the body; the pieces of a long chain have the same
#: structure, so their code is written and compiled once).
MAX_KERNEL_NODES = 128


def _epilogue_ok(node: Apply, reduced: TensorVariable) -> bool:
    """Whether elementwise ``node`` keeps the shape of the reduction result ``reduced``:
    the same rank, and length 1 wherever the result is statically 1."""
    out = node.outputs[0]
    if out.ndim != reduced.ndim:
        return False
    return all(r != 1 or o == 1 for r, o in zip(reduced.type.shape, out.type.shape))


def lower(
    inputs: Sequence[Variable],
    outputs: Sequence[TensorVariable],
    target: Target,
    row_pass: bool = False,
    constant_args: bool = True,
    max_nodes: int | None = None,
) -> Program:
    """Group the graph computing ``outputs`` into a :class:`Program` of kernels and NumPy steps
    for the back end ``target`` (a :class:`~exprc.codegen.ir.target.Target`); with
    ``row_pass``, row-pass kernels too (only the C renderer has a form for them); with
    ``constant_args``, floating-point constants become scalar arguments of the kernels
    (:func:`~exprc.codegen.ir.constants.parameterize`); an elementwise expression of more than
    ``max_nodes`` nodes (default :data:`MAX_KERNEL_NODES`) is cut into kernels of at most that
    many (:func:`_cuts`)."""
    order = toposort(outputs)
    position = {node: i for i, node in enumerate(order)}
    users = _consumers(order)
    is_output = set(outputs)
    can_fuse = {node: target.fusable(node) for node in order}

    groups: list[RowPassGroup] = []
    if row_pass:
        groups = row_passes.find(order, outputs, fusable=can_fuse.__getitem__)
    internal: set[Apply] = set().union(*(g.internal for g in groups))  # nodes only a row pass needs
    anchors = {g.nodes[-1]: g for g in groups}

    # Reduction chains: a Reduce and the elementwise nodes after it that keep its shape.
    chain_of: dict[Apply, Apply] = {}  # node -> the Reduce heading its chain
    chains: dict[Apply, list[Apply]] = {}  # Reduce node -> list of epilogue nodes
    for node in order:
        if not (can_fuse[node] and not target.is_elementwise(node)) or node in internal:
            continue
        chain, current = [], node.outputs[0]
        while current not in is_output:
            following = users.get(current, [])
            if len(following) != 1:
                break
            nxt = following[0]
            if not (target.is_elementwise(nxt) and can_fuse[nxt]) or nxt in chain_of or nxt in internal:
                break
            if not _epilogue_ok(nxt, node.outputs[0]):
                break
            chain.append(nxt)
            chain_of[nxt] = node
            current = nxt.outputs[0]
        chains[node] = chain

    # Values that must be stored: outputs, inputs of NumPy steps, and chain results.
    stored: set[Variable] = set(outputs)
    for node in order:
        if not can_fuse[node] and node not in internal:
            stored.update(node.inputs)
    for head, chain in chains.items():
        stored.add((chain[-1] if chain else head).outputs[0])
    for group in groups:  # what a row pass reads, and what it stores for others
        stored.update(v for n in group.nodes for v in n.inputs if v.owner not in group.nodes)
        stored.update(group.outputs)
    # Reduction epilogues and row passes keep their shape; they are not cut inside.
    skip = internal.union(chain_of, *(g.nodes for g in groups))
    stored.update(_cuts(order, stored, users, skip, target, can_fuse, max_nodes or MAX_KERNEL_NODES))

    program = Program(list(inputs), list(outputs), target=target)
    texts = infix_texts(outputs, limit=NOTE_LIMIT)
    builder = _KernelBuilder(stored, chain_of, target, texts)
    for node in order:
        if node in anchors:
            program.steps.append(row_passes.build(anchors[node], len(program.kernels), target, texts))
        if node in internal:
            continue
        if not can_fuse[node]:
            program.steps.append(NumpyStep(node))
        elif node in chains:
            if not chains[node]:
                program.steps.append(builder.reduction(node, [], len(program.kernels)))
        elif node in chain_of:
            head = chain_of[node]
            if chains[head][-1] is node:
                program.steps.append(builder.reduction(head, chains[head], len(program.kernels)))
        elif node.outputs[0] in stored:
            program.steps.append(builder.elementwise(node, len(program.kernels)))
    program.steps = _ordered(program.steps, position)
    if constant_args:
        program.steps = [parameterize(s) if isinstance(s, KernelStep) else s for s in program.steps]
    return program


def _cuts(
    order: Sequence[Apply],
    stored: set[Variable],
    users: Mapping[Variable, list[Apply]],
    skip: set[Apply],
    target: Target,
    can_fuse: Mapping[Apply, bool],
    max_nodes: int,
) -> set[Variable]:
    """Values to store so that no kernel recomputes more than ``max_nodes`` elementwise nodes
    of a tree that only it uses.

    A node's size is one plus the sizes of the inputs its kernel would recompute (a shared
    input counted at each use); while it is over ``max_nodes``, its largest input that is a
    tree of its own (every value in it used once, by the node above) of at least a quarter of
    ``max_nodes`` nodes is stored. Storing such
    a value makes no kernel compute anything twice; a value that others use too is left where
    it is, since storing what feeds it would have each user recompute the rest (the gradient
    of a deep chain stays one kernel). A stored value has the dtype its register had, so the
    results are the same bits."""
    size: dict[Variable, int] = {}
    tree: set[Variable] = set()  # values whose whole kernel expression only their user needs
    cuts: set[Variable] = set()
    for node in order:
        if len(node.outputs) != 1 or not can_fuse[node] or not target.is_elementwise(node) or node in skip:
            continue
        inner = [v for v in dict.fromkeys(node.inputs) if v in size and v not in stored and v not in cuts]
        total = 1 + sum(size[v] for v in inner)
        # A small tree saves the kernel little and costs a pass over memory: not worth a cut.
        movable = [v for v in inner if v in tree and len(users.get(v, ())) == 1 and size[v] >= max_nodes // 4]
        while total > max_nodes and movable:
            biggest = max(movable, key=size.__getitem__)
            cuts.add(biggest)
            total -= size[biggest]
            inner.remove(biggest)
            movable.remove(biggest)
        size[node.outputs[0]] = total
        if all(v in tree and len(users.get(v, ())) == 1 for v in inner):
            tree.add(node.outputs[0])
    return cuts


def _anchor(step: Step) -> Apply:
    if isinstance(step, NumpyStep):
        return step.node
    return step.nodes[-1]


def _ordered(steps: Sequence[Step], position: Mapping[Apply, int]) -> list[Step]:
    """``steps`` by the position of their last node, except that a step comes after the steps
    whose values it reads: a row pass stores values that nodes before its last one may read."""
    writer: dict[Variable, int] = {}
    for step in steps:
        for var in step_writes(step):
            writer[var] = id(step)
    waiting = {id(s): {writer[v] for v in step_reads(s) if v in writer} - {id(s)} for s in steps}
    readers: dict[int, list[Step]] = {}
    for step in steps:
        for w in waiting[id(step)]:
            readers.setdefault(w, []).append(step)
    key = {id(s): position[_anchor(s)] for s in steps}
    ready = [(key[id(s)], n, s) for n, s in enumerate(steps) if not waiting[id(s)]]
    heapq.heapify(ready)
    count = {id(s): n for n, s in enumerate(steps)}
    result: list[Step] = []
    while ready:
        _, _, step = heapq.heappop(ready)
        result.append(step)
        for reader in readers.get(id(step), []):
            waiting[id(reader)].discard(id(step))
            if not waiting[id(reader)]:
                heapq.heappush(ready, (key[id(reader)], count[id(reader)], reader))
    if len(result) != len(steps):
        raise AssertionError("lowering made steps that wait on each other")
    return result


# --- building the kernel IR -----------------------------------------------------------------


class _KernelBuilder:
    """Turns groups of graph nodes into kernels."""

    def __init__(
        self,
        stored: set[Variable],
        chain_of: Mapping[Apply, Apply],
        target: Target,
        texts: Mapping[Variable, str] | None = None,
    ) -> None:
        self.stored = stored
        self.target = target
        self.chain_of = chain_of
        self.texts = texts or {}

    def note(self, var: Variable) -> str:
        return note(var, self.texts)

    def _leaf(self, var: Variable) -> bool:
        """Whether ``var`` is read from memory (or is a constant) rather than recomputed."""
        node = var.owner
        if node is None or var in self.stored:
            return True
        return not (self.target.is_elementwise(node) and self.target.elemwise_signature(node) is not None)

    def elementwise(self, node: Apply, index: int) -> KernelStep:
        out = node.outputs[0]
        state = _State(out.ndim, self.target, outer=False, note=self.note)
        value = self._expr(out, state, compute_root=True)
        out_buffer = ir.Buffer("out", out.dtype, out.ndim, output=True)
        kernel = ir.Kernel(
            name=f"k{index}_{slug(out)}",
            ndim=out.ndim,
            buffers=tuple(b for b, _ in state.inputs) + (out_buffer,),
            stores=((out_buffer, cast(value, out.dtype)),),
            note=self.note(out),
            computes=tuple(self.note(n.outputs[0]) for n in state.nodes),
        )
        axes = {b.name: tuple(range(var.ndim)) for b, var in state.inputs}
        axes["out"] = tuple(range(out.ndim))
        return KernelStep(kernel, state.inputs, [(out_buffer, out)], axes, state.nodes)

    def reduction(self, node: Apply, epilogue: Sequence[Apply], index: int) -> KernelStep:
        x, reduced = node.inputs[0], node.outputs[0]
        op_name = self.target.reduce_signature(node)
        assert op_name is not None  # only fusable Reduce nodes get here
        axes_r = node.op.axis
        kept = [a for a in range(x.ndim) if a not in axes_r]
        # The prologue: the elementwise work feeding the reduction, over the full index space.
        inner = _State(x.ndim, self.target, outer=False, note=self.note, reduced_axes=axes_r)
        value = self._expr(x, inner)
        if op_name in ("and", "or"):
            value, acc_dtype = cast(value, "bool"), "bool"
        else:
            value = cast(value, reduced.dtype)
            acc_dtype = accumulator_dtype(op_name, reduced.dtype)
        initial = getattr(node.op, "initial", None)
        if initial is not None:
            with np.errstate(all="ignore"):
                initial = np.asarray(initial).astype(acc_dtype).item()
        reduction = ir.Reduction(op_name, value, len(axes_r), reduced.dtype, acc_dtype, self.note(reduced), initial)
        # The epilogue: elementwise work on the result, read at kept indices.
        outer = _State(x.ndim, self.target, outer=True, prefix="e", names=inner.names, note=self.note)
        outer.memo[reduced] = ir.Acc(reduced.dtype, self.note(reduced))
        final = epilogue[-1].outputs[0] if epilogue else reduced
        result = self._expr(final, outer, compute_root=True) if epilogue else outer.memo[reduced]
        out_buffer = ir.Buffer("out", final.dtype, x.ndim, output=True, outer=True)
        buffers = tuple(b for b, _ in inner.inputs) + tuple(b for b, _ in outer.inputs) + (out_buffer,)
        nodes = inner.nodes + [node] + outer.nodes
        kernel = ir.Kernel(
            name=f"k{index}_{slug(final)}",
            ndim=x.ndim,
            buffers=buffers,
            stores=((out_buffer, cast(result, final.dtype)),),
            reduction=reduction,
            note=self.note(final),
            computes=tuple(self.note(n.outputs[0]) for n in nodes),
        )
        # Index space axes are the axes of x; the reduced result's axes are its kept axes
        # (or all of them, of length 1 where reduced, with keepdims).
        if node.op.keepdims:
            out_axes: tuple[int | None, ...] = tuple(range(x.ndim))
        else:
            out_axes = tuple(kept.index(a) if a in kept else None for a in range(x.ndim))
        axes: dict[str, tuple[int | None, ...]] = {b.name: tuple(range(x.ndim)) for b, _ in inner.inputs}
        for b, _var in outer.inputs:
            axes[b.name] = out_axes
        axes["out"] = out_axes
        return KernelStep(
            kernel,
            inner.inputs + outer.inputs,
            [(out_buffer, final)],
            axes,
            nodes,
            reduced_axes=tuple(axes_r),
            keepdims=node.op.keepdims,
            reduce_op=op_name if initial is None else f"{op_name} with initial",
            epilogue_inputs=tuple(b.name for b, _ in outer.inputs),
        )

    def _expr(self, root: TensorVariable, state: _State, compute_root: bool = False) -> ir.Expr:
        """The expression computing graph variable ``root``, adding leaves to ``state``.

        ``root`` itself is computed (not loaded) when ``compute_root``, as a stored value
        is in the kernel that stores it."""
        if root in state.memo:
            return state.memo[root]
        stack = [root]
        while stack:
            var = stack[-1]
            if var in state.memo:
                stack.pop()
                continue
            if var.owner is None or (self._leaf(var) and not (compute_root and var is root)):
                state.memo[var] = state.leaf(var)
                stack.pop()
                continue
            pending = [v for v in var.owner.inputs if v not in state.memo]
            if pending:
                stack.extend(reversed(pending))
                continue
            stack.pop()
            node = var.owner
            args = [state.memo[v] for v in node.inputs]
            state.memo[var] = elemwise_expr(node, args, self.target, self.note)
            state.nodes.append(node)
        return state.memo[root]


class _State:
    """The leaves and nodes gathered while building one kernel region."""

    def __init__(
        self,
        ndim: int,
        target: Target,
        outer: bool,
        prefix: str = "",
        names: set[str] | None = None,
        note: Callable[[Variable], str] = note,
        reduced_axes: Sequence[int] = (),
    ) -> None:
        self.ndim, self.target, self.outer, self.prefix, self.note = ndim, target, outer, prefix, note
        self.reduced_axes = reduced_axes
        self.memo: dict[Variable, ir.Expr] = {}
        self.inputs: list[tuple[ir.Buffer, TensorVariable]] = []
        self.nodes: list[Apply] = []
        self.names = names if names is not None else set()

    def _outer(self, var: TensorVariable) -> bool:
        """Whether ``var`` is read at kept indices only: in an epilogue, or, feeding a
        reduction, when its static length is 1 on every reduced axis (a keepdims result
        such as softmax's row maximum), so it is read and used once per row."""
        if var.ndim == 0:
            return False
        return self.outer or (
            bool(self.reduced_axes) and var.ndim == self.ndim and all(var.type.shape[a] == 1 for a in self.reduced_axes)
        )

    def leaf(self, var: TensorVariable) -> ir.Expr:
        if isinstance(var, TensorConstant) and var.ndim == 0:  # the only kind of Constant
            value = var.python_value() if var.type.weak else var.value.item()
            return ir.Const(value, var.dtype, self.note(var))
        name = unique(identifier(var.name or f"{self.prefix}t{len(self.inputs)}", self.target.reserves), self.names)
        buffer = ir.Buffer(name, var.dtype, 0 if var.ndim == 0 else self.ndim, outer=self._outer(var))
        self.inputs.append((buffer, var))
        return ir.Load(buffer, self.note(var))
