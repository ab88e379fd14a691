"""SymPy for the algebra of elementwise regions: like terms collected, cancelled, powers merged.

A *region*, a maximal connected piece of elementwise arithmetic of one floating dtype,
becomes one SymPy expression, whose canonical form replaces the region when it has fewer
operations; :data:`MAX_REGION` and :data:`TIME_BUDGET` bound the time it takes. SymPy's
answer for a region is remembered by the region's shape, so SymPy is imported only for a
shape not met before in the process. See docs/internals/rewrite-engine.md.
"""

import time

from ..graph import Constant, substitute, toposort
from ..ops.elemwise import Elemwise, formula_graph
from .patterns import same_type
from .report import Fired

#: The arithmetic SymPy's canonical form handles. Functions (exp, log, ...) are leaves: what
#: matters about them is stability, which the stabilize phase sees to.
ALGEBRA = {"add", "subtract", "multiply", "true_divide", "negative", "square", "sqrt", "power"}

#: Regions larger than this many nodes are split (SymPy's cost grows faster than linearly).
MAX_REGION = 64

#: Seconds the pass may spend on one graph.
TIME_BUDGET = 0.5

#: Region shapes whose SymPy answer is kept in the process (the oldest is forgotten first).
MEMO_SIZE = 4096

_memo = {}  # region shape -> SymPy's formula over the leaves' names, or None: no gain


def _in_region(var, dtype):
    node = var.owner
    return (
        node is not None
        and isinstance(node.op, Elemwise)
        and node.op.scalar_op.name in ALGEBRA
        and var.dtype == dtype
        and not var.type.weak
    )


def simplify_regions(outputs, report=None):
    """``outputs`` with each elementwise region replaced by SymPy's form when that is smaller.

    >>> import exprc as ex
    >>> x, y = ex.vector("x"), ex.vector("y")
    >>> [str(v) for v in simplify_regions([x * y + y * x - x * y])]
    ['y * x']
    """
    order = toposort(outputs)
    consumers = {}
    for node in order:
        for v in node.inputs:
            consumers.setdefault(v, []).append(node)
    roots = [n.outputs[0] for n in order if len(n.outputs) == 1 and _is_root(n.outputs[0], consumers, outputs)]
    replacements, deadline = {}, time.monotonic() + TIME_BUDGET
    for root in roots:
        if time.monotonic() > deadline:
            break
        new = _simplify_region(root)
        if new is not None:
            replacements[root] = new
            if report is not None:
                report.append(Fired("sympy_algebra", root, new))
    if not replacements:
        return list(outputs)
    return substitute(outputs, replacements)


def _is_root(var, consumers, outputs):
    """A region's top: in a region, and used by something outside it (or an output)."""
    if not var.dtype.startswith("float") or not _in_region(var, var.dtype):
        return False
    users = consumers.get(var, [])
    return var in outputs or not users or any(not _in_region(u.outputs[0], var.dtype) for u in users)


def _region(root):
    """The region's nodes under ``root`` (at most MAX_REGION) and its leaves."""
    if root.owner is None:
        return [], [root]  # SymPy's form of a region may be one of its leaves: x * x / x is x
    nodes, leaves, stack, seen = [], [], [root], set()
    while stack:
        v = stack.pop()
        if v in seen:
            continue
        seen.add(v)
        if v is root or (_in_region(v, root.dtype) and len(nodes) < MAX_REGION):
            nodes.append(v.owner)
            stack.extend(v.owner.inputs)
        else:
            leaves.append(v)
    return nodes, leaves


def _may_gain(nodes, leaves):
    """Whether SymPy can shorten the region: a leaf used twice, or two numbers to combine."""
    uses = {}
    for node in nodes:
        for v in node.inputs:
            uses[v] = uses.get(v, 0) + 1
    numbers = sum(1 for v in leaves if isinstance(v, Constant) and v.ndim == 0)
    return numbers >= 2 or any(uses[v] > 1 for v in leaves)


def _operations(expr):
    """The operations in SymPy ``expr`` as exprc would compute them: an n-ary sum or product
    costs n - 1, a function or power 1 (far cheaper than ``sympy.count_ops``)."""
    total = 0
    for e in _preorder(expr):
        if e.is_Add or e.is_Mul:
            # A product with coefficient -1 in a sum is a subtraction: no operation of its own.
            total += len(e.args) - 1 - (e.is_Mul and e.args[0] == -1)
        elif e.is_Pow or e.is_Function:
            total += 1
    return total


def _preorder(expr):
    stack = [expr]
    while stack:
        e = stack.pop()
        yield e
        stack.extend(e.args)


def _simplify_region(root):
    nodes, leaves = _region(root)
    if len(nodes) < 2 or not _may_gain(nodes, leaves):
        return None  # decided before importing SymPy: most processes never need it
    shape = _shape(root, nodes, leaves)
    if shape is None:
        return None  # a leaf of another dtype: promotion would have to be redone
    if shape not in _memo:
        if len(_memo) >= MEMO_SIZE:
            del _memo[next(iter(_memo))]
        _memo[shape] = _sympy_formula(root, nodes, leaves)
    formula = _memo[shape]
    if formula is None:
        return None
    new = formula_graph(formula, {f"v{k}": leaf for k, leaf in enumerate(leaves)})
    if not same_type(new, root) or len(_region(new)[0]) >= len(nodes):
        return None  # SymPy's count can hide operations the graph needs (a shared term, a cast)
    return new


def _number_leaf(leaf):
    return isinstance(leaf, Constant) and leaf.ndim == 0


def _shape(root, nodes, leaves):
    """What SymPy's answer for the region depends on: its operations and how they connect,
    each leaf's value (a number) or whether it has axes (a symbol), and whether the root
    may broadcast. None when a leaf has another dtype."""
    described = []
    for leaf in leaves:
        if _number_leaf(leaf):
            value = leaf.value.item()
            described.append((type(value).__name__, repr(value)))  # repr: -0.0 is not 0.0
        elif leaf.dtype == root.dtype or leaf.type.weak:
            described.append(leaf.ndim > 0)
        else:
            return None
    index = {node.outputs[0]: k for k, node in enumerate(nodes)}
    leaf_index = {leaf: k for k, leaf in enumerate(leaves)}
    ops = tuple(
        (node.op.scalar_op.name, *(("n", index[v]) if v in index else ("v", leaf_index[v]) for v in node.inputs))
        for node in nodes
    )
    return root.dtype, None in root.type.shape, tuple(described), ops


def _sympy_formula(root, nodes, leaves):
    """SymPy's form of the region as a formula over ``"v0"``, ``"v1"``... (its leaves), or None
    when it is not shorter or has no exprc form."""
    import sympy as sp

    from ..ops.from_sympy import to_formula  # imports SymPy

    symbols, values = {}, {}
    for k, leaf in enumerate(leaves):
        if _number_leaf(leaf):
            value = leaf.value.item()
            values[leaf] = sp.Integer(value) if isinstance(value, int) else sp.Float(value, 17)
        else:
            symbol = sp.Symbol(f"v{k}")  # no assumptions: asking them is most of SymPy's time
            symbols[symbol], values[leaf] = f"v{k}", symbol

    def convert(var):  # the region is at most MAX_REGION deep
        if var not in values:
            node = var.owner
            values[var] = node.op.scalar_op.sympy(*(convert(v) for v in node.inputs))
        return values[var]

    convert(root)
    expr = values[root]
    if _operations(expr) >= len(nodes):
        return None
    kept = expr.free_symbols
    if None in root.type.shape and any(leaves[int(name[1:])].ndim and s not in kept for s, name in symbols.items()):
        return None  # a leaf SymPy drops may broadcast the result: x + (y - x) is y only where y has its shape
    try:
        return to_formula(expr, symbols)
    except NotImplementedError:
        return None
