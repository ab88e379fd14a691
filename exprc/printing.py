"""Showing graphs to people: readable infix (``str(expr)``) and ``debugprint`` trees.

Each op says how it reads in infix through its ``infix(node, show)`` method;
this module walks the graph (iteratively, so deep graphs print) and lays out
the text.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from html import escape
from typing import Any, Literal, TextIO

import numpy as np

from .graph import Constant, ancestors

#: Infix strings longer than this are cut, so a huge graph cannot flood an error message.
MAX_INFIX = 400
ATOM = 1000  # precedence of a name or a call: never needs parentheses
UNARY_MINUS = 30  # precedence of unary -, as the elementwise ops print it


def _leaf_text(var):
    if isinstance(var, Constant):
        value = var.value
        if value.ndim == 0:
            if value.dtype == np.float32:
                return str(value[()])  # the shortest text that is this float32: 0.1, not 0.10000000149011612
            return repr(value.item())
        if value.size <= 6:
            return repr(value.tolist())
        return f"<constant {var.type}>"
    if var.name:
        return var.name
    return f"<{var.type}>"


class lazy:
    """Message text formatted only if it is shown: ``lazy("sum of {}", x)``.

    Ops describe their inputs in error messages; formatting an expression
    walks its graph, which must not happen for every node built.

    >>> str(lazy("sum of {}", "x"))
    'sum of x'
    """

    __slots__ = ("template", "args")

    def __init__(self, template, *args):
        self.template, self.args = template, args

    def __str__(self):
        return self.template.format(*self.args)

    __format__ = lambda self, spec: format(str(self), spec)  # noqa: E731


def _cut(text, limit):
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def to_infix(var, limit=MAX_INFIX):
    """``var`` as a readable expression, e.g. ``'exp(-(x ** 2)).sum(axis=1)'``.

    With a ``limit``, only the nodes nearest ``var`` are expanded (deeper ones
    read ``…``), so the cost does not grow with the graph: error messages show
    expressions, and building a deep graph must stay linear. ``limit=None``
    gives the whole text.

    >>> import exprc as ex
    >>> x = ex.matrix("x")
    >>> to_infix(ex.exp(-x ** 2).sum(axis=1))
    'exp(-x ** 2).sum(axis=1)'
    """
    if limit is None:
        return infix_texts([var], None)[var]
    # Every expanded node adds at least a few characters, so a quarter of the
    # limit in nodes fills the text; it also bounds the recursion depth.
    budget = [max(limit // 4, 1)]
    texts = {}

    def render(v):
        if v not in texts:
            if v.owner is None or v.name:
                texts[v] = _own_text(v, show)
            elif budget[0] <= 0:
                texts[v] = ("…", ATOM)
            else:
                budget[0] -= 1
                text, precedence = _own_text(v, show)
                # Cut every text, not only the last: a value used twice doubles its text at each level.
                texts[v] = (_cut(text, limit), precedence)
        return texts[v]

    def show(v, min_precedence=0):
        text, precedence = render(v)
        return f"({text})" if precedence < min_precedence else text

    show.precedence = lambda v: render(v)[1]
    return _cut(render(var)[0], limit)


def _own_text(v, show):
    """``(text, precedence)`` of ``v``, its inputs shown through ``show``."""
    if v.owner is None:
        return (v.name if v.name and isinstance(v, Constant) else _leaf_text(v), _leaf_precedence(v))
    if v.name:
        return v.name, ATOM
    node = v.owner
    text, precedence = node.op.infix(node, show) if hasattr(node.op, "infix") else _call(node, show)
    if len(node.outputs) > 1:
        text = f"{text}[{v.index}]"
    return text, precedence


def infix_texts(outputs, limit=MAX_INFIX):
    """The infix text of ``outputs`` and of every variable they depend on, as a dict.

    One walk of the whole graph, nothing remembered.

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> y = ex.exp(x)
    >>> infix_texts([y + 1])[y]
    'exp(x)'
    """
    texts = {}
    _fill(ancestors(outputs), limit, texts)
    return {v: text for v, (text, _) in texts.items()}


def _fill(order, limit, texts):
    """Add to ``texts`` (variable -> (text, precedence)) each variable of ``order``, whose
    inputs are in ``texts`` or earlier in ``order``."""

    def show(v, min_precedence=0):
        text, precedence = texts[v]
        return f"({text})" if precedence < min_precedence else text

    show.precedence = lambda v: texts[v][1]
    for v in order:
        text, precedence = _own_text(v, show)
        texts[v] = (_cut(text, limit), precedence)


def _leaf_precedence(var):
    """A negative number reads as unary minus: ``(-2.0) ** x``, not ``-2.0 ** x``."""
    if isinstance(var, Constant) and not var.name and _leaf_text(var).startswith("-"):
        return UNARY_MINUS
    return ATOM


def _call(node, show):
    """The default infix form: ``opname(input, ...)``."""
    return f"{node.op.debug_name()}({', '.join(show(v) for v in node.inputs)})", ATOM


def _shape_text(var):
    return "" if var.type is None else str(var.type)


def call_text(name, *args, **kwargs):
    """``name(arg, ..., key=value)`` for an op's infix form; None-valued keywords are left out."""
    parts = [*args] + [f"{k}={v!r}" for k, v in kwargs.items() if v is not None]
    return f"{name}({', '.join(parts)})"


def debugprint(obj: Any, file: TextIO | Literal["str"] | None = None) -> str | None:
    """Print a graph as an indented tree, one node per line with its type and static shape.

    ``obj`` is a variable, a list of variables, or a compiled function (its outputs, then
    each update as ``w ← new value``). A subtree met a second time is shown by its id alone. With ``file="str"``
    the text is returned instead of printed.

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> print(ex.debugprint(ex.exp(x) + x, file="str"))
    Elemwise{add} [id A] float64 (?,)
     ├─ Elemwise{exp} [id B] float64 (?,)
     │  └─ x [id C] float64 (?,)
     └─ x [id C] ···
    """
    outputs = getattr(obj, "outputs", obj)
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    # A function's updates are outputs too: each tree starts with the variable it writes.
    roots = [(out, "") for out in outputs]
    roots += [(new, f"{_leaf_text(var)} ← ") for var, new in getattr(obj, "updates", ())]
    lines: list[str] = []
    ids: dict[Any, str] = {}

    def ident(v):
        if v not in ids:
            n, label = len(ids), ""
            while True:
                label = chr(ord("A") + n % 26) + label
                n = n // 26 - 1
                if n < 0:
                    break
            ids[v] = label
        return ids[v]

    for out, written in roots:
        # Iterative walk: (variable, prefix for its line, prefix for its children).
        stack = [(out, written, "")]
        while stack:
            var, head, tail = stack.pop()
            seen = var in ids
            label = ident(var)
            if var.owner is None:
                title = _leaf_text(var)
            else:
                title = var.owner.op.debug_name()
                if len(var.owner.outputs) > 1:
                    title += f".{var.index}"
                if var.name:
                    title += f" '{var.name}'"
            if seen:
                lines.append(f"{head}{title} [id {label}] ···")
                continue
            lines.append(f"{head}{title} [id {label}] {_shape_text(var)}")
            children = var.owner.inputs if var.owner is not None else ()
            for i in reversed(range(len(children))):
                last = i == len(children) - 1
                stack.append((children[i], tail + (" └─ " if last else " ├─ "), tail + ("   " if last else " │ ")))
    text = "\n".join(lines)
    if file == "str":
        return text
    print(text, file=file or sys.stdout)
    return None


#: Draws a variable or a compiled function as SVG text for the notebook views;
#: :mod:`exprc.draw`, which sits above the front end, sets it when imported.
svg_drawer: Callable[[Any], str] | None = None


def html_view(obj: Any, heading: str, type_text: str) -> str:
    """The notebook view of ``obj``: its text and type, and its picture behind a ``<details>``.

    >>> import exprc as ex
    >>> print(html_view(ex.vector("x"), "x", "float64 (?,)").splitlines()[0])
    <div class="exprc"><code>x</code> : <code>float64 (?,)</code>
    """
    parts = [f'<div class="exprc"><code>{escape(heading)}</code> : <code>{escape(type_text)}</code>']
    if svg_drawer is not None:
        parts.append(f"<details><summary>graph</summary>{svg_drawer(obj)}</details>")
    parts.append("</div>")
    return "\n".join(parts)


def format_value(value):
    """A short description of a run-time value for error messages: dtype and shape."""
    value = np.asarray(value)
    return f"{value.dtype} array of shape {value.shape}"
