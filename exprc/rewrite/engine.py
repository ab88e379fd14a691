"""The rewrite engine: rules that replace a node by a simpler or safer graph, run to a fixed point.

A rule is a function of one :class:`~exprc.graph.Apply` node that returns the variable to
use instead of the node's output, or None. It is registered for a phase (:data:`PHASES`)
and for the ops it looks at::

    @rule("canonicalize", Elemwise, scalar="negative")
    def double_negation(node):
        \"\"\"-(-x) -> x\"\"\"
        inner = node.inputs[0]
        if is_elemwise(inner, "negative"):
            return inner.owner.inputs[0]

See docs/internals/rewrite-engine.md.
"""

from collections.abc import Callable
from dataclasses import dataclass

from ..graph import apply, toposort
from .algebra_sympy import simplify_regions
from .patterns import same_type
from .report import Fired, RewriteReport, short_infix  # noqa: F401 - RewriteReport: pickles name it here

#: The phases, in the order they run.
PHASES = ("canonicalize", "stabilize", "specialize")

#: The rewrite levels ``exprc.function`` and :func:`exprc.simplify` accept.
MODES = ("fast", "exact", "none")


@dataclass(frozen=True)
class Rule:
    """A registered rule: its function, phase, the op class it matches and whether it is exact."""

    fn: Callable
    phase: str
    op_class: type
    scalar: tuple
    exact: bool

    @property
    def name(self):
        return self.fn.__name__

    @property
    def doc(self):
        return (self.fn.__doc__ or "").strip().splitlines()[0] if self.fn.__doc__ else ""


#: Every rule, in the order registered.
RULES = []


def rule(phase, op_class, scalar=None, exact=True):
    """Register the decorated function as a rule of ``phase`` for nodes of ``op_class``.

    ``scalar`` (a name or tuple of names) restricts an Elemwise rule to those scalar
    operations; ``exact=False`` marks a rule that changes some values.
    """
    if phase not in PHASES:
        raise ValueError(f"rewrite phase {phase!r} is not one of {PHASES}")
    names = (scalar,) if isinstance(scalar, str) else tuple(scalar or ())

    def register(fn):
        RULES.append(Rule(fn, phase, op_class, names, exact))
        return fn

    return register


def check_mode(rewrites):
    """``rewrites`` as one of :data:`MODES` (None means "none"), or a ValueError."""
    mode = "none" if rewrites is None or rewrites is False else rewrites
    if mode not in MODES:
        raise ValueError(f"rewrites={rewrites!r} is not known; expected one of {MODES} or None")
    return mode


def rewrite(outputs, rewrites="fast", report=None):
    """``outputs`` rewritten through every phase; each rule that fires is appended to ``report``.

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> [str(v) for v in rewrite([-(-x) * 1.0])]
    ['x']
    """
    mode = check_mode(rewrites)
    if mode == "none":
        return list(outputs)
    for phase in PHASES:
        chosen = [r for r in RULES if r.phase == phase and (r.exact or mode == "fast")]
        outputs = _Phase(chosen, report).run(outputs)
        if phase == "canonicalize" and mode == "fast":
            simplified = simplify_regions(outputs, report)
            if any(a is not b for a, b in zip(simplified, outputs)):
                outputs = _Phase(chosen, report).run(simplified)
    return outputs


#: A phase gives up after this many rewrites per node of the graph (a cycle between rules).
MAX_FIRINGS_PER_NODE = 50


class _Phase:
    """One phase over one graph: each variable mapped to its rewritten form."""

    def __init__(self, rules, report):
        self.report = report
        self.by_op = {}
        for r in rules:
            self.by_op.setdefault(r.op_class, []).append(r)
        self.memo = {}  # variable -> its rewritten form
        self.candidates = {}  # (op class, scalar op name) -> the rules to try, in order
        self.budget = None

    def run(self, outputs):
        order = toposort(outputs)
        self.budget = MAX_FIRINGS_PER_NODE * (len(order) + 1)
        self._rewrite_nodes(order)
        return [self.memo.get(v, v) for v in outputs]

    def _rewrite_nodes(self, order):
        memo = self.memo
        for node in order:
            if all(v in memo for v in node.outputs):
                continue
            inputs = [memo.get(v, v) for v in node.inputs]
            new = node if all(a is b for a, b in zip(inputs, node.inputs)) else apply(node.op, inputs)
            for old, out in zip(node.outputs, new.outputs):
                result = self._apply_rules(out) if len(new.outputs) == 1 else out
                memo[old] = result
                memo.setdefault(out, result)
                memo.setdefault(result, result)

    def _apply_rules(self, var):
        """``var``, whose inputs are rewritten already, with rules applied until none fires."""
        while var.owner is not None and self.budget > 0:
            replacement, fired = self._first_match(var.owner)
            if replacement is None:
                return var
            self.budget -= 1
            if self.report is not None:
                self.report.append(Fired(fired.name, var, replacement))
            # The replacement's new nodes have not met the rules yet.
            self._rewrite_nodes(_new_nodes(replacement, self.memo))
            var = self.memo.get(replacement, replacement)
        return var

    def _rules_for(self, op):
        """The rules that may match a node of ``op``, the general ones (folding) first; one
        list per op class and scalar operation."""
        scalar = getattr(getattr(op, "scalar_op", None), "name", None)
        key = (type(op), scalar)
        found = self.candidates.get(key)
        if found is None:
            found = self.candidates[key] = tuple(
                r
                for cls in reversed(type(op).__mro__)
                for r in self.by_op.get(cls, ())
                if not r.scalar or scalar in r.scalar
            )
        return found

    def _first_match(self, node):
        for r in self._rules_for(node.op):
            replacement = r.fn(node)
            if replacement is not None and replacement is not node.outputs[0]:
                if not same_type(replacement, node.outputs[0]):
                    raise TypeError(
                        f"rewrite rule {r.name} replaced {short_infix(node.outputs[0])} ({node.outputs[0].type}) "
                        f"with {short_infix(replacement)} ({replacement.type}), of another type"
                    )
                return replacement, r
        return None, None


def _new_nodes(var, memo):
    """The nodes computing ``var`` that ``memo`` has not seen, inputs first."""
    order, seen, stack = [], set(), []
    if var.owner is not None and var not in memo:
        stack.append((var.owner, iter(var.owner.inputs)))
        seen.add(var.owner)
    while stack:
        node, pending = stack[-1]
        for v in pending:
            if v.owner is not None and v not in memo and v.owner not in seen:
                seen.add(v.owner)
                stack.append((v.owner, iter(v.owner.inputs)))
                break
        else:
            stack.pop()
            order.append(node)
    return order
