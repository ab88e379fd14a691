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
  whose dtypes or operations have no C form.

Each step runs at the position of its last node in the graph's order, or later
where it reads a value a row pass stores.

>>> import exprc as ex
>>> x = ex.matrix("x")
>>> program = lower([x], [ex.exp(-x ** 2).sum(axis=1)])
>>> [type(s).__name__ for s in program.steps]
['KernelStep']
>>> program.steps[0].kernel.name
'k0_sum_exp_neg_power_x'
"""
import heapq
import re
import weakref
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from exprc.graph import Constant, toposort
from exprc.ops.elemwise import Elemwise
from exprc.ops.reduction import All, Any, Max, Min, Prod, Sum
from exprc.printing import infix_texts, to_infix

from exprc.codegen.ir import kernel as ir
from exprc.codegen.cfamily.formulas import C_DTYPES, has_c

#: Reduce op class -> kernel reduction op.
REDUCTIONS = {Sum: "add", Prod: "mul", Max: "max", Min: "min", All: "and", Any: "or"}

#: Scalar ops NumPy lacks: the reference computes them in float64 and rounds once.
FLOAT64_OPS = ("sigmoid", "softplus", "erf", "erfc", "gammaln")

#: How long a graph expression may get in a comment.
NOTE_LIMIT = 70


@dataclass
class KernelStep:
    """A fused kernel and how it binds to the graph.

    ``inputs`` and ``outputs`` pair each kernel buffer with its graph variable
    (one output, except for a row pass).
    ``axes`` maps each buffer name to, per index-space axis (in the axis order
    of the graph), the array axis it reads or None. ``nodes`` are the graph
    nodes the kernel computes, in order: the NumPy fallback runs them.
    """

    kernel: ir.Kernel
    inputs: list
    outputs: list
    axes: dict
    nodes: list
    #: For a reduction kernel: the reduced axes of the index space, whether the
    #: reduction keeps them, and its op; None for an elementwise kernel.
    reduced_axes: Optional[tuple] = None
    keepdims: bool = False
    reduce_op: Optional[str] = None
    #: The buffers read at every kept index only (a reduction's epilogue inputs).
    epilogue_inputs: tuple = ()


@dataclass
class NumpyStep:
    """A graph node run through its op's NumPy reference."""

    node: object


@dataclass
class Program:
    """The steps that compute ``outputs`` from ``inputs``, in order."""

    inputs: list
    outputs: list
    steps: list = field(default_factory=list)

    @property
    def kernels(self):
        return [s.kernel for s in self.steps if isinstance(s, KernelStep)]


# --- which nodes lower to C ------------------------------------------------------


def _is_float16(dtype):
    return dtype == "float16"


def elemwise_signature(node):
    """The loop dtypes ``(input dtypes, output dtype)`` an Elemwise node computes in, or None
    when it has no C form. Casts (``astype_*``) have the signature ``((in,), out)``.

    The loop dtypes are NumPy's: the ufunc's own type resolution decides them,
    with weak (Python scalar) inputs passed as Python types, as NumPy sees them.

    >>> import exprc as ex
    >>> elemwise_signature((ex.ivector("i") < 2.5).owner)
    (('float64', 'float64'), 'bool')
    """
    try:
        return _signatures[node]
    except KeyError:
        pass
    signature = _signatures[node] = _elemwise_signature(node)
    return signature


#: Apply node -> its loop signature (NumPy's type resolution is slow enough to remember).
_signatures = weakref.WeakKeyDictionary()


def _elemwise_signature(node):
    op = node.op.scalar_op
    out = node.outputs[0].dtype
    dtypes = [v.dtype for v in node.inputs]
    if any(d not in C_DTYPES for d in dtypes + [out]):
        return None
    if op.name.startswith("astype_"):
        return (tuple(dtypes), out)
    if op.name in FLOAT64_OPS:
        signature = (("float64",), "float64")
    elif op.name == "where":
        signature = (("bool", out, out), out)
    elif op.name == "clip":
        signature = ((out, out, out), out)
    elif isinstance(op.numpy, np.ufunc):
        described = tuple(_python_type(v) if v.type.weak else np.dtype(v.dtype) for v in node.inputs)
        if any(d is None for d in described):  # not "None in": np.dtype("float64") == None
            return None
        try:
            resolved = op.numpy.resolve_dtypes(described + (None,))
        except (TypeError, ValueError):
            return None
        names = [d.name for d in resolved]
        signature = (tuple(names[:-1]), names[-1])
        # Mixed loops (such as int64 < uint64) need formulas of their own.
        if len(set(signature[0])) != 1 or names[-1] != out:
            return None
    else:
        return None
    if any(d not in C_DTYPES for d in signature[0]) or not has_c(op.name, signature[0][0]):
        return None
    return signature


def _python_type(var):
    """The Python type NumPy sees for a weak (Python scalar) input; None for other weak
    values (an integer beyond int64, held as uint64), which stay NumPy steps."""
    return {"bool": np.dtype("bool"), "int64": int, "float64": float}.get(var.dtype)


def reduce_signature(node):
    """The kernel reduction op for a Reduce node, or None when it stays a NumPy step."""
    op_name = REDUCTIONS.get(type(node.op))
    if op_name is None or not node.op.axis:
        return None
    x, out = node.inputs[0], node.outputs[0]
    if x.dtype not in C_DTYPES or out.dtype not in C_DTYPES:
        return None
    if op_name in ("add", "mul") and out.dtype == "bool":
        return None
    return op_name


def fusable(node):
    """Whether ``node`` can be part of a C kernel."""
    if isinstance(node.op, Elemwise):
        return elemwise_signature(node) is not None
    return reduce_signature(node) is not None


# --- grouping ------------------------------------------------------------------------


def _consumers(order):
    users = {}
    for node in order:
        for var in dict.fromkeys(node.inputs):
            users.setdefault(var, []).append(node)
    return users


def _epilogue_ok(node, reduced):
    """Whether elementwise ``node`` keeps the shape of the reduction result ``reduced``:
    the same rank, and length 1 wherever the result is statically 1."""
    out = node.outputs[0]
    if out.ndim != reduced.ndim:
        return False
    return all(r != 1 or o == 1 for r, o in zip(reduced.type.shape, out.type.shape))


def lower(inputs, outputs, row_pass=False):
    """Group the graph computing ``outputs`` into a :class:`Program` of kernels and NumPy steps;
    with ``row_pass``, row-pass kernels too (only the C renderer has a form for them)."""
    order = toposort(outputs)
    position = {node: i for i, node in enumerate(order)}
    users = _consumers(order)
    is_output = set(outputs)
    can_fuse = {node: fusable(node) for node in order}

    groups = []
    if row_pass:
        # Imported here: the row-pass module builds on this one's helpers.
        from exprc.codegen.ir import row_pass as row_passes

        groups = row_passes.find(order, outputs, fusable=can_fuse.__getitem__)
    internal = set().union(*(g.internal for g in groups))  # nodes only a row pass needs
    anchors = {g.nodes[-1]: g for g in groups}

    # Reduction chains: a Reduce and the elementwise nodes after it that keep its shape.
    chain_of = {}  # node -> the Reduce heading its chain
    chains = {}  # Reduce node -> list of epilogue nodes
    for node in order:
        if not (can_fuse[node] and not isinstance(node.op, Elemwise)) or node in internal:
            continue
        chain, current = [], node.outputs[0]
        while current not in is_output:
            following = users.get(current, [])
            if len(following) != 1:
                break
            nxt = following[0]
            if not (isinstance(nxt.op, Elemwise) and can_fuse[nxt]) or nxt in chain_of or nxt in internal:
                break
            if not _epilogue_ok(nxt, node.outputs[0]):
                break
            chain.append(nxt)
            chain_of[nxt] = node
            current = nxt.outputs[0]
        chains[node] = chain

    # Values that must be stored: outputs, inputs of NumPy steps, and chain results.
    stored = set(outputs)
    for node in order:
        if not can_fuse[node] and node not in internal:
            stored.update(node.inputs)
    for head, chain in chains.items():
        stored.add((chain[-1] if chain else head).outputs[0])
    for group in groups:  # what a row pass reads, and what it stores for others
        stored.update(v for n in group.nodes for v in n.inputs if v.owner not in group.nodes)
        stored.update(group.outputs)

    program = Program(list(inputs), list(outputs))
    texts = infix_texts(outputs, limit=NOTE_LIMIT)
    builder = _KernelBuilder(stored, chain_of, texts)
    for node in order:
        if node in anchors:
            program.steps.append(row_passes.build(anchors[node], len(program.kernels), texts))
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
    return program


def _anchor(step):
    if isinstance(step, NumpyStep):
        return step.node
    return step.nodes[-1]


def step_reads(step):
    """The graph values a step reads."""
    if isinstance(step, NumpyStep):
        return list(step.node.inputs)
    return [var for _, var in step.inputs]


def step_writes(step):
    """The graph values a step computes for other steps."""
    if isinstance(step, NumpyStep):
        return list(step.node.outputs)
    return [var for _, var in step.outputs]


def _ordered(steps, position):
    """``steps`` by the position of their last node, except that a step comes after the steps
    whose values it reads: a row pass stores values that nodes before its last one may read."""
    writer = {}
    for step in steps:
        for var in step_writes(step):
            writer[var] = id(step)
    waiting = {id(s): {writer[v] for v in step_reads(s) if v in writer} - {id(s)} for s in steps}
    readers = {}
    for step in steps:
        for w in waiting[id(step)]:
            readers.setdefault(w, []).append(step)
    key = {id(s): position[_anchor(s)] for s in steps}
    ready = [(key[id(s)], n, s) for n, s in enumerate(steps) if not waiting[id(s)]]
    heapq.heapify(ready)
    count = {id(s): n for n, s in enumerate(steps)}
    result = []
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


def note(var, texts=None):
    """The graph expression ``var`` computes, short enough for a comment (from ``texts``,
    the result of one ``infix_texts`` walk, where it has it)."""
    text = texts.get(var) if texts else None
    return text if text is not None else to_infix(var, limit=NOTE_LIMIT)


def _cast(expr, dtype):
    """``expr`` converted to ``dtype``; constants are converted now, as NumPy would."""
    if expr.dtype == dtype:
        return expr
    if isinstance(expr, ir.Const):
        with np.errstate(all="ignore"):
            value = np.asarray(expr.value, dtype=expr.dtype).astype(dtype).item()
        return ir.Const(value, dtype, expr.note)
    return ir.Cast(expr, dtype, expr.note)


class _KernelBuilder:
    """Turns groups of graph nodes into kernels."""

    def __init__(self, stored, chain_of, texts=None):
        self.stored = stored
        self.chain_of = chain_of
        self.texts = texts or {}

    def note(self, var):
        return note(var, self.texts)

    def _leaf(self, var):
        """Whether ``var`` is read from memory (or is a constant) rather than recomputed."""
        node = var.owner
        if node is None or var in self.stored:
            return True
        return not (isinstance(node.op, Elemwise) and elemwise_signature(node) is not None)

    def elementwise(self, node, index):
        out = node.outputs[0]
        state = _State(out.ndim, outer=False, note=self.note)
        value = self._expr(out, state, compute_root=True)
        out_buffer = ir.Buffer("out", out.dtype, out.ndim, output=True)
        kernel = ir.Kernel(
            name=f"k{index}_{slug(out)}",
            ndim=out.ndim,
            buffers=tuple(b for b, _ in state.inputs) + (out_buffer,),
            stores=((out_buffer, _cast(value, out.dtype)),),
            note=self.note(out),
            computes=tuple(self.note(n.outputs[0]) for n in state.nodes),
        )
        axes = {b.name: tuple(range(var.ndim)) for b, var in state.inputs}
        axes["out"] = tuple(range(out.ndim))
        return KernelStep(kernel, state.inputs, [(out_buffer, out)], axes, state.nodes)

    def reduction(self, node, epilogue, index):
        x, reduced = node.inputs[0], node.outputs[0]
        op_name = reduce_signature(node)
        axes_r = node.op.axis
        kept = [a for a in range(x.ndim) if a not in axes_r]
        # The prologue: the elementwise work feeding the reduction, over the full index space.
        inner = _State(x.ndim, outer=False, note=self.note, reduced_axes=axes_r)
        value = self._expr(x, inner)
        if op_name in ("and", "or"):
            value, acc_dtype = _cast(value, "bool"), "bool"
        else:
            value = _cast(value, reduced.dtype)
            acc_dtype = _accumulator(op_name, reduced.dtype)
        initial = getattr(node.op, "initial", None)
        if initial is not None:
            with np.errstate(all="ignore"):
                initial = np.asarray(initial).astype(acc_dtype).item()
        reduction = ir.Reduction(op_name, value, len(axes_r), reduced.dtype, acc_dtype, self.note(reduced), initial)
        # The epilogue: elementwise work on the result, read at kept indices.
        outer = _State(x.ndim, outer=True, prefix="e", names=inner.names, note=self.note)
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
            stores=((out_buffer, _cast(result, final.dtype)),),
            reduction=reduction,
            note=self.note(final),
            computes=tuple(self.note(n.outputs[0]) for n in nodes),
        )
        # Index space axes are the axes of x; the reduced result's axes are its kept axes
        # (or all of them, of length 1 where reduced, with keepdims).
        if node.op.keepdims:
            out_axes = tuple(range(x.ndim))
        else:
            out_axes = tuple(kept.index(a) if a in kept else None for a in range(x.ndim))
        axes = {b.name: tuple(range(x.ndim)) for b, _ in inner.inputs}
        for b, var in outer.inputs:
            axes[b.name] = out_axes
        axes["out"] = out_axes
        return KernelStep(
            kernel, inner.inputs + outer.inputs, [(out_buffer, final)], axes, nodes,
            reduced_axes=tuple(axes_r), keepdims=node.op.keepdims,
            reduce_op=op_name if initial is None else f"{op_name} with initial",
            epilogue_inputs=tuple(b.name for b, _ in outer.inputs),
        )

    def _expr(self, root, state, compute_root=False):
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
            state.memo[var] = _elemwise_expr(node, args, self.note)
            state.nodes.append(node)
        return state.memo[root]


class _State:
    """The leaves and nodes gathered while building one kernel region."""

    def __init__(self, ndim, outer, prefix="", names=None, note=note, reduced_axes=()):
        self.ndim, self.outer, self.prefix, self.note = ndim, outer, prefix, note
        self.reduced_axes = reduced_axes
        self.memo, self.inputs, self.nodes = {}, [], []
        self.names = names if names is not None else set()

    def _outer(self, var):
        """Whether ``var`` is read at kept indices only: in an epilogue, or, feeding a
        reduction, when its static length is 1 on every reduced axis (a keepdims result
        such as softmax's row maximum), so it is read and used once per row."""
        if var.ndim == 0:
            return False
        return self.outer or (bool(self.reduced_axes) and var.ndim == self.ndim
                              and all(var.type.shape[a] == 1 for a in self.reduced_axes))

    def leaf(self, var):
        if isinstance(var, Constant) and var.ndim == 0:
            value = var.python_value() if var.type.weak else var.value.item()
            return ir.Const(value, var.dtype, self.note(var))
        name = _unique(_identifier(var.name or f"{self.prefix}t{len(self.inputs)}"), self.names)
        buffer = ir.Buffer(name, var.dtype, 0 if var.ndim == 0 else self.ndim, outer=self._outer(var))
        self.inputs.append((buffer, var))
        return ir.Load(buffer, self.note(var))


def _elemwise_expr(node, args, note=note):
    out = node.outputs[0]
    name = node.op.scalar_op.name
    if name.startswith("astype_"):
        return ir.Cast(args[0], out.dtype, note(out)) if args[0].dtype != out.dtype else args[0]
    in_dtypes, loop_out = elemwise_signature(node)
    call = ir.Call(name, tuple(_cast(a, d) for a, d in zip(args, in_dtypes)), loop_out, note(out))
    return _cast(call, out.dtype) if loop_out != out.dtype else call


def _accumulator(op_name, dtype):
    """The dtype a reduction accumulates in: float64 for float32 sums, wrapping unsigned for integers."""
    kind = np.dtype(dtype).kind
    if kind == "f":
        return "float64" if op_name == "add" else dtype
    if kind == "i" and op_name in ("add", "mul"):
        return "u" + dtype
    return dtype


# --- names ----------------------------------------------------------------------------------------

_SHORT = {
    "negative": "neg", "subtract": "sub", "multiply": "mul", "true_divide": "div",
    "floor_divide": "floordiv", "maximum": "max", "minimum": "min", "logical_not": "not",
}
_RESERVED = {
    "out", "args", "size", "contiguous", "acc", "nan_seen", "result", "i",
    # locals of the loops (exprc.codegen.c.render, exprc.codegen.c.row_pass)
    "first", "last", "rest", "row", "rows", "cols", "from", "to", "unit", "blk", "nblocks", "start", "chunk",
    "rows_in_chunk", "col", "xc", "rowdot", "sums", "columns", "scratch",
    # C keywords and types
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum",
    "extern", "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return",
    "short", "signed", "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void",
    "volatile", "while", "bool", "true", "false", "NAN", "INFINITY",
    # libm functions the formulas call
    "exp", "exp2", "log", "log2", "log10", "log1p", "expm1", "sqrt", "sin", "cos", "tan", "asin", "acos",
    "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "rint", "floor", "ceil", "trunc", "erf",
    "erfc", "fabs", "fmod", "pow", "atan2", "hypot", "copysign", "isnan", "isinf", "isfinite", "lgamma_r",
    # what CUDA C++ defines in every kernel (the CUDA renderer uses the same names)
    "threadIdx", "blockIdx", "blockDim", "gridDim", "warpSize", "dim3", "lgamma", "tgamma", "min", "max",
    "half", "new", "delete", "this", "class", "template", "typename", "namespace", "operator", "private",
    "public", "protected", "virtual", "friend", "using", "try", "catch", "throw", "asm", "explicit", "mutable",
}


def _identifier(text):
    text = re.sub(r"[^0-9A-Za-z_]+", "_", text).strip("_") or "t"
    if (text[0].isdigit() or text in _RESERVED or text.startswith("exprc_")
            or re.fullmatch(r"[nicv]\d+|(sum|part|weight)\d+|.*_s\d+|.*_[vwt]|(u?(char|short|int|long|longlong)|float|double)[1-4]", text)):
        text = "in_" + text
    return text


def _unique(name, taken):
    candidate, k = name, 1
    while candidate in taken:
        candidate, k = f"{name}_{k}", k + 1
    taken.add(candidate)
    return candidate


def slug(var, limit=5):
    """A C-identifier summary of what ``var`` computes: op names then leaf names, prefix order.

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> slug(ex.exp(-x))
    'exp_neg_x'
    """
    words, stack = [], [var]
    while stack and len(words) < limit:
        v = stack.pop()
        if v.owner is None:
            word = v.name or ("c" if isinstance(v, Constant) else "in")
            if isinstance(v, Constant):
                continue
        else:
            op = v.owner.op
            if isinstance(op, Elemwise):
                word = _SHORT.get(op.scalar_op.name, op.scalar_op.name)
            else:
                word = type(op).__name__.lower()
            stack.extend(reversed(v.owner.inputs))
        word = re.sub(r"[^0-9A-Za-z_]+", "_", word).strip("_").lower()
        if word and not words or words[-1] != word:
            words.append(word)
    return "_".join(words)[:48].strip("_") or "value"  # the kernel name prefixes it: never a bare number
