"""Contractions: ``einsum``, ``kron``, ``inner`` and ``vdot``, written as graphs of existing ops.

``einsum`` is lowered when the graph is built: each operand's repeated labels become a
diagonal (a strided slice of the flattened axes), labels used by one operand only are summed
away, then the operands are contracted two at a time with ``tensordot`` or a batched
``matmul``, the pair whose result is smallest first (opt_einsum's greedy path). So its
gradient and every back end come from those ops.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from ..tensor import TensorLike, TensorVariable, as_tensor
from . import elemwise as E
from .linalg import matmul, tensordot
from .reduction import sum as _sum
from .shape import dimshuffle, flatten, reshape, shape_i

#: Length assumed for an axis whose length is known only at run time, when ranking contractions.
_UNKNOWN_LENGTH = 16

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _term(text: str, what: str) -> list[str]:
    """The labels of one term, ``"..."`` kept as one item."""
    labels, rest = [], text
    while rest:
        if rest.startswith("..."):
            if "..." in labels:
                raise ValueError(f"einsum: {what} {text!r} has more than one ellipsis '...'")
            labels.append("...")
            rest = rest[3:]
        elif rest[0] in _LETTERS:
            labels.append(rest[0])
            rest = rest[1:]
        else:
            raise ValueError(f"einsum: {what} {text!r} holds {rest[0]!r}; subscripts are letters a-z, A-Z and '...'")
    return labels


def _parse(subscripts: str, operands: Sequence[TensorVariable]) -> tuple[list[list[str]], list[str]]:
    """Each operand's labels and the output's, with every ellipsis replaced by labels of its own
    (``"...0"``, ``"...1"``, ... right-aligned, as NumPy broadcasts them)."""
    text = subscripts.replace(" ", "")
    if text.count("->") > 1 or text.replace("->", "").count("-") or text.replace("->", "").count(">"):
        raise ValueError(f"einsum: subscripts {subscripts!r} must have at most one '->' and no other '-' or '>'")
    given, arrow, out_text = text.partition("->")
    terms = given.split(",")
    if len(terms) != len(operands):
        raise ValueError(
            f"einsum: subscripts {subscripts!r} name {len(terms)} operand(s), but {len(operands)} were given"
        )
    inputs, ellipsis_ndim = [], 0
    for k, (term, x) in enumerate(zip(terms, operands)):
        labels = _term(term, f"operand {k}'s subscripts")
        named = len(labels) - ("..." in labels)
        if named > x.ndim or ("..." not in labels and named != x.ndim):
            raise ValueError(
                f"einsum: operand {k} ({x}) has {x.ndim} dimension(s), but its subscripts {term!r} name {named}"
            )
        if "..." in labels:
            width = x.ndim - named
            ellipsis_ndim = max(ellipsis_ndim, width)
            at = labels.index("...")
            labels[at : at + 1] = ["...", width]  # expanded below, once the widest ellipsis is known
        inputs.append(labels)
    ellipsis = [f"...{i}" for i in range(ellipsis_ndim)]
    for labels in inputs:
        if "..." in labels:
            at = labels.index("...")
            width = labels[at + 1]
            labels[at : at + 2] = ellipsis[ellipsis_ndim - width :]
    if arrow:
        out = _term(out_text, "the output's subscripts")
        seen = set(itertools.chain(*inputs))
        for label in out:
            if label != "..." and label not in seen:
                raise ValueError(f"einsum: output label {label!r} of {subscripts!r} is in no operand's subscripts")
            if out.count(label) > 1:
                raise ValueError(f"einsum: output label {label!r} of {subscripts!r} appears more than once")
        if "..." in out:
            at = out.index("...")
            out[at : at + 1] = ellipsis
        elif ellipsis_ndim:
            raise ValueError(
                f"einsum: the operands of {subscripts!r} have dimensions under '...', "
                "but the output's subscripts have no '...' to keep them"
            )
    else:
        counts = {}
        for label in itertools.chain(*inputs):
            counts[label] = counts.get(label, 0) + 1
        out = ellipsis + sorted((lab for lab, n in counts.items() if n == 1 and not lab.startswith("...")), key=ord)
    return inputs, out


def _from_sublists(args: Sequence) -> tuple[str, list]:
    """NumPy's interleaved form ``einsum(a, [0, 1], b, [1, 2], [0, 2])`` as a subscripts string."""

    def term(sublist):
        parts = []
        for s in sublist:
            if s is Ellipsis:
                parts.append("...")
            elif isinstance(s, (int, np.integer)) and 0 <= s < len(_LETTERS):
                parts.append(_LETTERS[s])
            else:
                raise ValueError(f"einsum: a sublist holds {s!r}; expected integers in [0, 52) or Ellipsis")
        return "".join(parts)

    operands, terms = list(args[0::2]), [term(s) for s in args[1::2]]
    out = ""
    if len(terms) < len(operands):  # an odd count: the last item is the output's sublist
        out = "->" + term(operands.pop())
    return ",".join(terms) + out, operands


class _Operand:
    """A tensor during the contraction, with the label of each of its axes."""

    def __init__(self, x: TensorVariable, labels: list[str]):
        self.x, self.labels = x, labels

    def length(self, label: str) -> int | None:
        return self.x.type.shape[self.labels.index(label)]

    def size(self) -> int:
        return int(np.prod([_UNKNOWN_LENGTH if d is None else d for d in self.x.type.shape]))

    def summed(self, labels: Sequence[str], dtype: str) -> _Operand:
        if not labels:
            return self
        axes = tuple(self.labels.index(lab) for lab in labels)
        # floats sum in their own dtype; integers and booleans would become int64 without dtype
        keep = self.x.dtype == dtype and np.dtype(dtype).kind == "f"
        summed = _sum(self.x, axis=axes, dtype=None if keep else dtype)
        return _Operand(summed, [lab for lab in self.labels if lab not in labels])

    def ordered(self, labels: Sequence[str]) -> TensorVariable:
        """The tensor with its axes in the order of ``labels`` (a length-1 axis for a label it lacks)."""
        pattern = [self.labels.index(lab) if lab in self.labels else "x" for lab in labels]
        return self.x if pattern == list(range(self.x.ndim)) else dimshuffle(self.x, pattern)


def _diagonal(op: _Operand, label: str) -> _Operand:
    """Keep the diagonal of the (two or more) axes that ``label`` names: move them last,
    flatten them and take every ``(n**k - 1) / (n - 1)``-th element."""
    where = [i for i, lab in enumerate(op.labels) if lab == label]
    rest = [i for i in range(op.x.ndim) if i not in where]
    x = dimshuffle(op.x, rest + where)
    n = x.type.shape[-1]
    for i in where:
        if op.x.type.shape[i] is not None:
            n = op.x.type.shape[i]
    length = shape_i(x, x.ndim - 1) if n is None else n
    step, power = length + 1, length
    for _ in where[2:]:  # n + 1, then + n**2, ...: from one diagonal element to the next
        power = power * length
        step = step + power
    lead = [shape_i(x, i) if x.type.shape[i] is None else x.type.shape[i] for i in range(len(rest))]
    flat = reshape(x, [*lead, -1])
    diag = flat[(slice(None),) * len(rest) + (slice(None, None, step),)]
    return _Operand(diag, [op.labels[i] for i in rest] + [label])


def _broadcast_ones(operands: list[_Operand]) -> None:
    """Drop the axes of static length 1 whose label another operand has with another length:
    NumPy broadcasts them, and a product by a broadcast factor is a product by its one value."""
    for op in operands:
        for label in list(op.labels):
            if op.length(label) != 1:
                continue
            others = [o.length(label) for o in operands if o is not op and label in o.labels]
            if others and any(d != 1 for d in others):
                axis = op.labels.index(label)
                op.x = dimshuffle(op.x, [i for i in range(op.x.ndim) if i != axis])
                op.labels = op.labels[:axis] + op.labels[axis + 1 :]


def _contract(a: _Operand, b: _Operand, keep: set[str], dtype: str) -> _Operand:
    """The product of ``a`` and ``b`` summed over their shared labels that ``keep`` lacks."""
    a = a.summed([lab for lab in a.labels if lab not in b.labels and lab not in keep], dtype)
    b = b.summed([lab for lab in b.labels if lab not in a.labels and lab not in keep], dtype)
    shared = [lab for lab in a.labels if lab in b.labels]
    batch = [lab for lab in shared if lab in keep]
    inner = [lab for lab in shared if lab not in keep]
    free_a = [lab for lab in a.labels if lab not in shared]
    free_b = [lab for lab in b.labels if lab not in shared]
    if not inner:
        labels = batch + free_a + free_b
        return _Operand(E.multiply(a.ordered(labels), b.ordered(labels)), labels)
    if not batch:
        axes = ([a.labels.index(lab) for lab in inner], [b.labels.index(lab) for lab in inner])
        return _Operand(tensordot(a.x, b.x, axes), free_a + free_b)
    # a batched product: (batch, free_a, inner) @ (batch, inner, free_b), each group one axis
    xa, xb = a.ordered(batch + free_a + inner), b.ordered(batch + inner + free_b)

    def lengths(op, labels):
        return [shape_i(op.x, op.labels.index(lab)) if op.length(lab) is None else op.length(lab) for lab in labels]

    def merged(x, op, groups):
        new = []
        for group in groups:
            if len(group) == 1:
                new += lengths(op, group)
            else:
                new.append(_product(lengths(op, group)))
        return reshape(x, new) if any(len(g) != 1 for g in groups) else x

    ya = merged(xa, a, [[lab] for lab in batch] + [free_a, inner])
    yb = merged(xb, b, [[lab] for lab in batch] + [inner, free_b])
    product = matmul(ya, yb)
    if len(free_a) == 1 and len(free_b) == 1:
        return _Operand(product, batch + free_a + free_b)
    # the batch lengths of the product: matmul broadcasts a length 1 against the other
    batch_lengths = [shape_i(product, i) if d is None else d for i, d in enumerate(product.type.shape[: len(batch)])]
    out = batch_lengths + lengths(a, free_a) + lengths(b, free_b)
    return _Operand(reshape(product, out), batch + free_a + free_b)


def _product(lengths: list) -> TensorLike:
    out = 1
    for n in lengths:
        out = out * n
    return out


def _greedy_pair(operands: list[_Operand], out: list[str]) -> tuple[int, int, set[str]]:
    """The two operands to contract next and the labels still needed after: of the pairs that
    share a label (any pair if none does), the one whose result is smallest beside its inputs."""
    best = None
    for i, j in itertools.combinations(range(len(operands)), 2):
        a, b = operands[i], operands[j]
        keep = set(out).union(*(o.labels for k, o in enumerate(operands) if k not in (i, j)))
        shares = bool(set(a.labels) & set(b.labels))
        labels = {lab for lab in a.labels + b.labels if lab in keep}
        result = 1
        for lab in labels:
            length = a.length(lab) if lab in a.labels else b.length(lab)
            result *= _UNKNOWN_LENGTH if length is None else length
        cost = (not shares, result - a.size() - b.size(), i, j)
        if best is None or cost < best[0]:
            best = (cost, i, j, keep)
    return best[1], best[2], best[3]


def einsum(subscripts: str | TensorLike, *operands: TensorLike) -> TensorVariable:
    """Einstein summation as NumPy's ``einsum``: implicit (``"ij,jk"``) and explicit
    (``"ij,jk->ik"``) output, ``...`` for broadcast axes, repeated labels for diagonals, and
    the interleaved form ``einsum(a, [0, 1], b, [1, 2])``. Built from ``tensordot``,
    ``matmul``, ``sum`` and elementwise products, contracting the operands in the order
    opt_einsum's greedy path chooses.

    >>> import exprc as ex
    >>> a, b = ex.tensor3("a"), ex.tensor3("b")
    >>> ex.einsum("bij,bjk->bik", a, b).ndim
    3
    >>> ex.einsum("ii", ex.matrix("m"))
    <TensorVariable m.reshape((-1,))[::m.shape[1] + 1].sum() : float64 ()>
    """
    if not isinstance(subscripts, str):
        subscripts, operands = _from_sublists((subscripts, *operands))
    if not operands:
        raise ValueError("einsum: no operands given")
    xs = [as_tensor(x) for x in operands]
    inputs, out = _parse(subscripts, xs)
    dtype = np.result_type(*(np.dtype(x.dtype) for x in xs)).name
    for label in set(itertools.chain(*inputs)):
        lengths = {x.type.shape[i] for x, labels in zip(xs, inputs) for i, lab in enumerate(labels) if lab == label}
        lengths.discard(None)
        if len(lengths - {1}) > 1:
            raise ValueError(
                f"einsum: label {label!r} of {subscripts!r} has lengths {sorted(lengths)} in the operands "
                f"{', '.join(map(str, xs))}, which do not match"
            )
    ops = [_Operand(x, labels) for x, labels in zip(xs, inputs)]
    for k, op in enumerate(ops):
        for label in dict.fromkeys(op.labels):
            if op.labels.count(label) > 1:
                op = _diagonal(op, label)
        ops[k] = op
    _broadcast_ones(ops)
    for k, op in enumerate(ops):
        elsewhere = set(out).union(*(o.labels for o in ops if o is not op))
        ops[k] = op.summed([lab for lab in op.labels if lab not in elsewhere], dtype)
    while len(ops) > 1:
        i, j, keep = _greedy_pair(ops, out)
        pair = _contract(ops[i], ops[j], keep, dtype)
        ops = [o for k, o in enumerate(ops) if k not in (i, j)] + [pair]
    (last,) = ops
    last = last.summed([lab for lab in last.labels if lab not in out], dtype)
    result = last.ordered(out)
    return result if result.dtype == dtype else E.astype(result, dtype)


def kron(a: TensorLike, b: TensorLike) -> TensorVariable:
    """The Kronecker product (NumPy's ``kron``): blocks ``a[i, j] * b``, the operand of fewer
    dimensions taken with leading axes of length 1.

    >>> import exprc as ex
    >>> ex.kron(ex.matrix("a"), ex.matrix("b")).ndim
    2
    """
    a, b = as_tensor(a), as_tensor(b)
    nd = max(a.ndim, b.ndim)
    a = dimshuffle(a, ["x"] * (nd - a.ndim) + list(range(a.ndim)))
    b = dimshuffle(b, ["x"] * (nd - b.ndim) + list(range(b.ndim)))
    if nd == 0:
        return E.multiply(a, b)
    # a[i, None, j, None] * b[None, k, None, l], then each (i, k) pair is one axis
    pa = [p for i in range(nd) for p in (i, "x")]
    pb = [p for i in range(nd) for p in ("x", i)]
    product = E.multiply(dimshuffle(a, pa), dimshuffle(b, pb))

    def length(x, i):
        return shape_i(x, i) if x.type.shape[i] is None else x.type.shape[i]

    return reshape(product, [length(a, i) * length(b, i) for i in range(nd)])


def inner(a: TensorLike, b: TensorLike) -> TensorVariable:
    """NumPy's ``inner``: the sum of products over the last axis of each (a product if either
    is 0-d).

    >>> import exprc as ex
    >>> ex.inner(ex.matrix("a"), ex.tensor3("b")).ndim
    3
    """
    a, b = as_tensor(a), as_tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        return E.multiply(a, b)
    return tensordot(a, b, ([a.ndim - 1], [b.ndim - 1]))


def vdot(a: TensorLike, b: TensorLike) -> TensorVariable:
    """NumPy's ``vdot`` of real tensors: the dot product of the flattened inputs.

    >>> import exprc as ex
    >>> ex.vdot(ex.matrix("a"), ex.matrix("b")).ndim
    0
    """
    a, b = as_tensor(a), as_tensor(b)
    na, nb = (None if None in x.type.shape else int(np.prod(x.type.shape)) for x in (a, b))
    if na is not None and nb is not None and na != nb:
        raise ValueError(f"vdot: {a} and {b} have {na} and {nb} elements; they must have as many")
    return tensordot(flatten(a), flatten(b), ([0], [0]))
