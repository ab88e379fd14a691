"""Names in kernels: buffer names made from the graph's variable names, kept clear of the
names a renderer keeps for itself (each back end's :class:`~exprc.codegen.ir.target.Target`
says which), and kernel names summarising what a kernel computes."""

from __future__ import annotations

import re
from collections.abc import Callable

from exprc.graph import Constant, Variable
from exprc.ops.elemwise import Elemwise

_SHORT = {
    "negative": "neg",
    "subtract": "sub",
    "multiply": "mul",
    "true_divide": "div",
    "floor_divide": "floordiv",
    "maximum": "max",
    "minimum": "min",
    "logical_not": "not",
}


def identifier(text: str, reserves: Callable[[str], bool]) -> str:
    """``text`` as an identifier: other characters made ``_``, and ``in_`` in front of one
    that starts with a digit or that ``reserves(name)`` says the renderer keeps.

    >>> identifier("x.T", lambda name: False), identifier("out", lambda name: name == "out")
    ('x_T', 'in_out')
    """
    text = re.sub(r"[^0-9A-Za-z_]+", "_", text).strip("_") or "t"
    if text[0].isdigit() or reserves(text):
        text = "in_" + text
    return text


def unique(name: str, taken: set[str]) -> str:
    """``name``, or ``name_1``, ``name_2`` ... the first not in ``taken``, which it joins."""
    candidate, k = name, 1
    while candidate in taken:
        candidate, k = f"{name}_{k}", k + 1
    taken.add(candidate)
    return candidate


#: The most nodes :func:`slug` looks at.
_MAX_VISITS = 64


def slug(var: Variable, limit: int = 5) -> str:
    """An identifier summary of what ``var`` computes: op names then leaf names, prefix order.

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> slug(ex.exp(-x)), slug(ex.vector("$") * 2)
    ('exp_neg_x', 'mul')
    """
    words: list[str] = []
    stack = [var]
    visits = 0  # bounded: a long chain of one op (a 5,000-term sum) gives no new word
    while stack and len(words) < limit and visits < _MAX_VISITS:
        visits += 1
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
        if word and (not words or words[-1] != word):
            words.append(word)
    return "_".join(words)[:48].strip("_") or "value"  # the kernel name prefixes it: never a bare number
