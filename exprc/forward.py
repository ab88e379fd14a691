"""Forward- and reverse-mode products with a chosen vector: :func:`Rop` (the Jacobian times a
vector) and :func:`Lop` (a vector times the Jacobian), with Theano's names and arguments.

:func:`Rop` pushes tangents forward through the graph, one node at a time: elementwise nodes
through their partial derivatives (the same table :func:`~exprc.grad.grad` uses), linear nodes
(views, sums, indexing, concatenation) by applying the node to the tangent, matrix products by
the product rule. A node with no forward rule is differentiated through its own ``grad``: its
vector-Jacobian product is linear in the vector, so the Jacobian-vector product is the gradient
of ``<grad(u), t>`` with respect to ``u`` (the result no longer depends on ``u``).

>>> import exprc as ex
>>> x, v = ex.vector("x"), ex.vector("v")
>>> jv = ex.Rop(ex.sin(x) * 2, x, v)
>>> jv.eval({x: [0.0, 1.0], v: [1.0, 1.0]})
array([2.        , 1.08060461])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .dtypes import is_float
from .grad import grad
from .graph import Apply, Variable, substitute, toposort
from .ops.elemwise import Elemwise, formula_graph, partials
from .ops.indexing import AdvancedIncSubtensor, AdvancedSubtensor, IncSubtensor, Subtensor
from .ops.linalg import MatMul, TensorDot
from .ops.markers import StopGradient
from .ops.reduction import Sum
from .ops.shape import BroadcastTo, Concatenate, DimShuffle, Reshape, SumToShape, broadcast_to, zeros_like
from .tensor import TensorLike, TensorVariable, as_tensor, tensor

#: Ops linear in their floating inputs: the tangent is the op applied to the inputs' tangents.
LINEAR = (DimShuffle, Reshape, BroadcastTo, SumToShape, Sum, Subtensor, AdvancedSubtensor, Concatenate)
#: Linear in the array written into and in the values written, jointly.
LINEAR_WRITES = (IncSubtensor, AdvancedIncSubtensor)
#: Linear in each floating input with the others fixed: the product rule.
BILINEAR = (MatMul, TensorDot)


def Rop(f: Any, wrt: Any, eval_points: Any) -> Any:  # noqa: N802 - Theano's name
    """The Jacobian of ``f`` with respect to ``wrt`` times ``eval_points`` (forward mode).

    ``wrt`` and ``eval_points`` are a variable each or lists of the same length (each point of
    its variable's shape); ``f`` is a variable or a list, and the result has its structure.
    An output that does not depend on ``wrt`` gets zeros.

    >>> import exprc as ex
    >>> W, x, v = ex.matrix("W"), ex.vector("x"), ex.matrix("v")
    >>> ex.Rop(W @ x, W, v).eval({W: [[1.0, 2.0]], x: [3.0, 4.0], v: [[1.0, 0.0]]})
    array([3.])
    """
    outputs, wrts, points = _listed(f, "f"), _listed(wrt, "wrt"), _listed(eval_points, "eval_points")
    if len(wrts) != len(points):
        raise ValueError(f"Rop: {len(wrts)} variables in wrt but {len(points)} eval_points")
    tangents: dict[Variable, TensorVariable] = {}
    for w, p in zip(wrts, points):
        p = as_tensor(p)
        if p.ndim != w.ndim:
            raise ValueError(f"Rop: the eval point {p} of {w} has {p.ndim} dimensions, expected {w.ndim}")
        tangents[w] = p.astype(w.dtype) if p.dtype != w.dtype and is_float(w.dtype) else p
    for node in toposort(outputs):
        if any(v in tangents for v in node.inputs):
            for out, t in zip(node.outputs, _push(node, tangents)):
                if t is not None:
                    tangents[out] = t
    results = [tangents.get(out) for out in outputs]
    results = [zeros_like(out) if t is None else t for out, t in zip(outputs, results)]
    return results if isinstance(f, (list, tuple)) else results[0]


def Lop(f: Any, wrt: Any, eval_points: Any) -> Any:  # noqa: N802 - Theano's name
    """``eval_points`` times the Jacobian of ``f`` with respect to ``wrt`` (reverse mode):
    the gradient of ``sum(f * eval_points)``, without building that sum.

    >>> import exprc as ex
    >>> x, u = ex.vector("x"), ex.vector("u")
    >>> ex.Lop(x ** 2, x, u).eval({x: [1.0, 2.0], u: [1.0, 10.0]})
    array([ 2., 40.])
    """
    outputs, points = _listed(f, "f"), _listed(eval_points, "eval_points")
    if len(outputs) != len(points):
        raise ValueError(f"Lop: {len(outputs)} outputs in f but {len(points)} eval_points")
    known = {out: as_tensor(p) for out, p in zip(outputs, points)}
    return grad(None, wrt, known_grads=known, disconnected_inputs="ignore")


def _listed(value: Any, what: str) -> list[TensorVariable]:
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise ValueError(f"Rop/Lop: {what} is empty")
    return [as_tensor(v) for v in items]


def _push(node: Apply, tangents: dict) -> Sequence[TensorVariable | None]:
    """The tangents of ``node``'s outputs from those of its inputs (None: no tangent)."""
    op, (out, *more) = node.op, node.outputs
    ts = [tangents.get(v) if is_float(v.dtype) else None for v in node.inputs]
    if isinstance(op, StopGradient) or all(t is None for t in ts):
        return [None] * len(node.outputs)
    if not more and is_float(out.dtype):
        if isinstance(op, Elemwise) and (t := _elemwise(node, ts)) is not None:
            return [_like(t, out)]
        if isinstance(op, LINEAR + LINEAR_WRITES):
            args = [_or_zeros(t, v) if is_float(v.dtype) else v for v, t in zip(node.inputs, ts)]
            return [_like(op(*args), out)]
        if isinstance(op, BILINEAR):
            terms = [
                op(*[t if j == i else v for j, v in enumerate(node.inputs)]) for i, t in enumerate(ts) if t is not None
            ]
            return [_like(_total(terms), out)]
    return _through_grad(node, ts)


def _elemwise(node: Apply, ts: list) -> TensorVariable | None:
    found = partials(node.op.scalar_op)
    if found is None:
        return None
    names = {f"x{i}": v for i, v in enumerate(node.inputs)}
    terms = []
    for t, partial in zip(ts, found):
        if t is None or partial == 0:
            continue
        if isinstance(partial, str) and partial not in names:
            return None  # a derivative the table cannot write: differentiate through grad
        if type(partial) is int:
            terms.append(t if partial == 1 else -t)
        else:
            terms.append(t * formula_graph(partial, names))
    return _total(terms) if terms else None


def _through_grad(node: Apply, ts: list) -> list[TensorVariable | None]:
    """Jacobian-vector products of a node with no forward rule, from its vector-Jacobian
    product (linear in the vector ``u``): ``J t = d <grad(u), t> / du``."""
    results: list[TensorVariable | None] = []
    for k, out in enumerate(node.outputs):
        if not is_float(out.dtype):
            results.append(None)
            continue
        u = tensor("u", dtype=out.dtype, shape=out.type.shape)
        seeds = [u if j == k else None for j in range(len(node.outputs))]
        grads = node.op.grad(node, seeds)
        terms = [(g * t).sum() for g, t in zip(grads, ts) if g is not None and t is not None]
        if not terms:
            results.append(None)
            continue
        jt = grad(_total(terms), u, disconnected_inputs="ignore")
        # The product no longer depends on u's values; u's shape is out's.
        results.append(_like(substitute([jt], {u: out})[0], out))
    return results


def _total(terms: list[TensorVariable]) -> TensorVariable:
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def _or_zeros(t: TensorVariable | None, v: TensorVariable) -> TensorVariable:
    return zeros_like(v) if t is None else t


def _like(t: TensorLike, out: TensorVariable) -> TensorVariable:
    """``t`` with ``out``'s dtype and shape (a tangent of a broadcast input is broadcast)."""
    t = as_tensor(t)
    if t.dtype != out.dtype:
        t = t.astype(out.dtype)
    known = None not in out.type.shape and t.type.shape == out.type.shape
    return t if known else broadcast_to(t, out.shape)
