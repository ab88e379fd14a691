"""Reverse-mode symbolic differentiation: :func:`grad`, :func:`jacobian`, :func:`hessian`,
:func:`hvp` and :func:`stop_gradient` (checking a gradient compiles, so
:func:`~exprc.gradcheck.verify_grad` sits above :mod:`exprc.function`).

:func:`grad` walks the graph from the cost back to the variables asked for,
calling each op's ``grad(node, output_grads)`` (defined next to the op) and
adding up the gradients that reach a variable along several paths. The result
is an ordinary graph, so it can be compiled, simplified, or differentiated again.

>>> import exprc as ex
>>> x = ex.vector("x")
>>> g = ex.grad((x ** 2).sum(), x)
>>> g.eval({x: [1.0, 2.0]})
array([2., 4.])

Integer and boolean variables have no gradient: a path through them (or
through ``argmax``, a comparison, :func:`stop_gradient`) carries none. A
gradient that is zero whatever the inputs (through ``//``, ``floor``, ``sign``)
is kept out of the graph: it is dropped where it would be added, and the nodes
it alone would reach are not differentiated (see docs/gradients.md).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, TypeAlias

import numpy as np

from .dtypes import is_float
from .graph import Apply, Constant, Op, Variable, substitute, toposort
from .ops.elemwise import Elemwise
from .ops.indexing import set_subtensor
from .ops.markers import StopGradient, stop_gradient  # noqa: F401 - exprc.grad's own marker
from .ops.reduction import Max, Sum, log_softmax, softmax
from .ops.shape import BroadcastTo, DimShuffle, Reshape, broadcast_to, expand_dims, reshape, size, zeros, zeros_like
from .printing import ATOM, call_text, to_infix
from .shapes import fmt_shape
from .tensor import TensorLike, TensorType, TensorVariable, as_tensor, constant

#: What to differentiate with respect to: a variable, or a list or tuple of them.
Wrt: TypeAlias = TensorVariable | list[TensorVariable] | tuple[TensorVariable, ...]
#: What to do for a variable the cost does not depend on.
Disconnected: TypeAlias = Literal["raise", "warn", "ignore"]
# The gradients come back in the structure of ``wrt``: a tensor, or a list or tuple of
# tensors (None for disconnected ones with return_disconnected="none"); typed Any, as one
# hint cannot say which.
Gradients: TypeAlias = Any


class DisconnectedInputError(ValueError):
    """``grad`` was asked for the gradient with respect to a variable the cost does not depend on."""


def _name(var):
    return repr(var.name) if var.name else to_infix(var, limit=60)


# --- grad --------------------------------------------------------------------------


def _as_list(value, what):
    """``value`` as a list, and a function giving a result back in ``value``'s structure."""
    if isinstance(value, (list, tuple)):
        kind = type(value)
        return list(value), (lambda items: kind(items))
    return [value], (lambda items: items[0])


def _check_wrt(wrt):
    for w in wrt:
        if not isinstance(w, TensorVariable):
            raise TypeError(f"grad: wrt must be symbolic tensors, got {w!r}")
        if isinstance(w, Constant):
            raise TypeError(f"grad: cannot differentiate with respect to the constant {_name(w)}")
        if not is_float(w.dtype):
            raise TypeError(
                f"grad: cannot differentiate with respect to {_name(w)} ({w.type}): it is {w.dtype}, "
                "and only floating-point variables have gradients (integer and boolean values are "
                "disconnected, as in Theano)"
            )


def _check_cost(cost):
    if not isinstance(cost, TensorVariable):
        raise TypeError(f"grad: the cost must be a symbolic tensor, got {cost!r}")
    if cost.ndim != 0:
        raise TypeError(
            f"grad: the cost must be a scalar (0-d), got {_name(cost)} of shape {fmt_shape(cost.type.shape)}; "
            "reduce it first (for example with .sum()), or use ex.jacobian"
        )
    if not is_float(cost.dtype):
        raise TypeError(f"grad: the cost must be floating-point, got {_name(cost)} ({cost.dtype})")


def _check_known_grads(known_grads):
    seeds = {}
    for var, g in (known_grads or {}).items():
        if not isinstance(var, TensorVariable):
            raise TypeError(f"grad: the keys of known_grads must be symbolic tensors, got {var!r}")
        g = as_tensor(g)
        if g.ndim != var.ndim:
            raise ValueError(f"grad: known_grads gives {_name(var)} ({var.ndim}-d) a gradient of {g.ndim} dimensions")
        seeds[var] = g if g.dtype == var.dtype else g.astype(var.dtype)
    return seeds


def _check_input_grad(node, var, g):
    if not isinstance(g, TensorVariable):
        g = as_tensor(g)
    if g.ndim != var.ndim or any(
        a is not None and b is not None and a != b and b != 1 for a, b in zip(var.type.shape, g.type.shape)
    ):
        raise TypeError(
            f"the gradient rule of {node.op.debug_name()} gave input {_name(var)} of shape "
            f"{fmt_shape(var.type.shape)} a gradient of shape {fmt_shape(g.type.shape)}"
        )
    return g if g.dtype == var.dtype else g.astype(var.dtype)


def grad(
    cost: TensorLike | None,
    wrt: Wrt,
    consider_constant: Iterable[Variable] | None = None,
    disconnected_inputs: Disconnected = "raise",
    known_grads: dict[TensorVariable, TensorLike] | None = None,
    return_disconnected: Literal["zero", "none"] = "zero",
) -> Gradients:
    """The gradient of the scalar ``cost`` with respect to ``wrt``, as a symbolic graph.

    ``wrt`` is a variable or a list (or tuple) of them, and the result has the
    same structure, each gradient with the shape and dtype of its variable.

    - ``consider_constant``: variables treated as constants: no gradient flows
      through them to what they are computed from.
    - ``disconnected_inputs``: what to do for a variable the cost does not depend
      on (or only through integers, comparisons, ``argmax``, ``stop_gradient``):
      ``"raise"`` a :class:`DisconnectedInputError` (the default), ``"warn"``, or
      ``"ignore"``; the last two give zeros, or None with ``return_disconnected="none"``.
    - ``known_grads``: a dict from variables to gradients to start from, added
      to those flowing from ``cost``; ``cost`` may then be None.

    >>> import exprc as ex
    >>> x, w = ex.vector("x"), ex.vector("w")
    >>> gx, gw = ex.grad((x * w).sum(), [x, w])
    >>> gw.eval({x: [1.0, 2.0], w: [3.0, 4.0]})
    array([1., 2.])
    """
    if disconnected_inputs not in ("raise", "warn", "ignore"):
        raise ValueError(f"grad: disconnected_inputs must be 'raise', 'warn' or 'ignore', got {disconnected_inputs!r}")
    if return_disconnected not in ("zero", "none"):
        raise ValueError(f"grad: return_disconnected must be 'zero' or 'none', got {return_disconnected!r}")
    wrt_list, rebuild = _as_list(wrt, "wrt")
    _check_wrt(wrt_list)
    seeds = _check_known_grads(known_grads)
    if cost is None:
        if not seeds:
            raise TypeError("grad: give a cost, or known_grads to start from")
    else:
        cost = as_tensor(cost)
        _check_cost(cost)
        seeds.setdefault(cost, None)
        one = constant(np.ones((), dtype=cost.dtype))
        seeds[cost] = one if seeds[cost] is None else seeds[cost] + one
    constants = set(consider_constant or ())
    for var in constants:
        if not isinstance(var, Variable):
            raise TypeError(f"grad: consider_constant must list symbolic variables, got {var!r}")

    seeds = _with_softmax_formulas(seeds, set(wrt_list) | constants)
    order = toposort(list(seeds))
    # The variables that depend on some wrt through a path gradients can take.
    connected = set(wrt_list)
    for node in order:
        if any(v in connected for v in node.inputs) and not isinstance(node.op, StopGradient):
            connected.update(o for o in node.outputs if o not in constants and is_float(o.dtype))

    contributions = {var: [g] for var, g in seeds.items()}
    # Variables reached only by symbolic zeros so far: connected, with no term to add.
    zero = set()
    totals = {}

    def total(var):
        if var not in totals:
            parts = contributions.get(var)
            out = None
            for g in parts or ():
                out = g if out is None else out + g
            totals[var] = out
        return totals[var]

    for node in reversed(order):
        if not any(v in connected and v not in constants for v in node.inputs):
            continue
        output_grads = [total(o) for o in node.outputs]
        only_zeros = all(g is None for g in output_grads)
        if only_zeros and not any(o in zero for o in node.outputs):
            continue
        output_grads = [g if g is not None else zeros_like(o) for g, o in zip(output_grads, node.outputs)]
        # With zeros only, the rule still runs (its result is dropped) to say which inputs
        # it connects: a gradient is linear in the output gradients, so all of them are 0.
        input_grads = node.op.grad(node, output_grads)
        if len(input_grads) != len(node.inputs):
            raise TypeError(
                f"the gradient rule of {node.op.debug_name()} gave {len(input_grads)} gradients "
                f"for {len(node.inputs)} inputs"
            )
        for var, g in zip(node.inputs, input_grads):
            if g is None or var not in connected or (var in constants and var not in wrt_list):
                continue
            g = _check_input_grad(node, var, g)
            if only_zeros or is_symbolic_zero(g):
                zero.add(var)
            else:
                contributions.setdefault(var, []).append(g)

    results = []
    for w in wrt_list:
        g = total(w)
        if g is None and w in zero:
            g = zeros_like(w)
        elif g is None:
            g = _disconnected(cost, w, disconnected_inputs, return_disconnected)
        elif g.dtype != w.dtype:
            g = g.astype(w.dtype)
        results.append(g)
    return rebuild(results)


def user_softmax(var: Variable) -> TensorVariable | None:
    """The library's formula for ``var`` when it is a softmax or log-softmax written out by
    hand, shifted by the row maximum (``z = x - x.max(1, keepdims=True)``, then
    ``exp(z) / exp(z).sum(1, keepdims=True)`` or ``z - log(exp(z).sum(1, keepdims=True))``),
    else None. Shifting by the maximum changes neither, so the library's formulas stop the
    gradient through it, and their gradients are shorter.

    >>> import exprc as ex
    >>> x = ex.matrix("x")
    >>> z = x - x.max(1, keepdims=True)
    >>> user_softmax(z - ex.log(ex.exp(z).sum(1, keepdims=True))) is ex.log_softmax(x, axis=1)
    True
    """
    found = _match_softmax(var)
    if found is None:
        return None
    out = found[2](found[0], found[1])
    return out if out.type == var.type else None


def _match_softmax(var):
    """(x, axes, the library's function) when ``var`` is a softmax or log-softmax of ``x``
    written by hand (see :func:`user_softmax`), else None."""
    node = var.owner
    if node is None or not isinstance(node.op, Elemwise) or len(node.inputs) != 2:
        return None
    name = node.op.scalar_op.name
    if name == "subtract":
        z, log_sum = node.inputs
        if log_sum.owner is None or not _is_scalar(log_sum.owner, "log"):
            return None
        total = log_sum.owner.inputs[0]
        build = log_softmax
    elif name == "true_divide":
        numerator, total = node.inputs
        z = _exp_argument(numerator)
        build = softmax
    else:
        return None
    shifted = _shift_by_max(z)
    if shifted is None or total.owner is None or not isinstance(total.owner.op, Sum):
        return None
    op = total.owner.op
    if (
        not op.keepdims
        or op.dtype is not None
        or op.axis != shifted[1]
        or _exp_argument(total.owner.inputs[0]) is not z
    ):
        return None
    return shifted[0], shifted[1], build


def _is_scalar(node, name):
    return isinstance(node.op, Elemwise) and node.op.scalar_op.name == name


def _exp_argument(var):
    return var.owner.inputs[0] if var.owner is not None and _is_scalar(var.owner, "exp") else None


def _shift_by_max(z):
    """(x, axes) when ``z`` is ``x - x.max(axes, keepdims=True)``, else None."""
    if z is None or z.owner is None or not _is_scalar(z.owner, "subtract"):
        return None
    x, top = z.owner.inputs
    owner = top.owner
    if owner is None or not isinstance(owner.op, Max) or not owner.op.keepdims or owner.inputs[0] is not x:
        return None
    return x, owner.op.axis


def _with_softmax_formulas(seeds, keep):
    """``seeds`` with the softmaxes and log-softmaxes written by hand in their graphs made
    the library's (:func:`user_softmax`); as they are where a variable of ``keep`` (wrt,
    constants) or a seed is inside such a formula or computed from one (it would be rebuilt)."""
    found, inner, rebuilt = {}, set(), set()
    for node in toposort(list(seeds)):
        if any(v in rebuilt for v in node.inputs):
            rebuilt.update(node.outputs)
            continue
        for var in node.outputs:
            formula = user_softmax(var)
            if formula is not None:
                found[var] = formula
                rebuilt.add(var)
                inner.update(_inner_values(var))
    if not found or any(v in rebuilt or v in inner for v in keep) or any(v in inner for v in seeds):
        return seeds
    # A seed computed from a formula (the cost, known_grads) is rebuilt with it: its
    # gradient goes to the rebuilt variable.
    new = substitute(list(seeds), found)
    out = {}
    for g, replaced in zip(seeds.values(), new):
        out[replaced] = g if replaced not in out else out[replaced] + g
    return out


def _inner_values(var):
    """The values a hand-written softmax ``var`` computes on the way (its shift, exps, sums)."""
    x = _match_softmax(var)[0]
    inner, stack = [], list(var.owner.inputs)
    while stack:
        v = stack.pop()
        if v is not x and v.owner is not None and v not in inner:
            inner.append(v)
            stack.extend(v.owner.inputs)
    return inner


def is_symbolic_zero(var: TensorVariable) -> bool:
    """Whether ``var`` is zero whatever the inputs: a constant whose elements are all 0,
    possibly broadcast, reshaped, shuffled or cast (what ``zeros_like`` builds).

    >>> import exprc as ex
    >>> is_symbolic_zero(ex.zeros_like(ex.matrix("m"))), is_symbolic_zero(ex.matrix("m") * 0)
    (True, False)
    """
    while var.owner is not None:
        op = var.owner.op
        if not (
            isinstance(op, (BroadcastTo, DimShuffle, Reshape))
            or (isinstance(op, Elemwise) and op.scalar_op.name.startswith("astype_"))
        ):
            return False
        var = var.owner.inputs[0]
    return isinstance(var, Constant) and not np.any(var.value)


def _disconnected(cost, w, disconnected_inputs, return_disconnected):
    what = f"the cost {_name(cost)}" if cost is not None else "the known gradients"
    message = (
        f"grad: {what} does not depend on {_name(w)} ({w.type}), or only through integer, boolean "
        "or non-differentiable values (comparisons, argmax, stop_gradient, consider_constant)"
    )
    if disconnected_inputs == "raise":
        raise DisconnectedInputError(message + "; pass disconnected_inputs='ignore' or 'warn' to get zeros")
    if disconnected_inputs == "warn":
        warnings.warn(message + "; its gradient is zero", stacklevel=3)
    return None if return_disconnected == "none" else zeros_like(w)


# --- jacobian, hessian, hvp ------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Rows(Op):
    """``output`` computed for ``index = 0, 1, ..., n - 1`` and stacked: one node whose
    loop runs when the function is called (how :func:`jacobian` stays one graph).

    Node inputs: ``(n, *loop_inputs)``. The graph from ``loop_inputs`` and ``index``
    to ``output`` is evaluated per row with the NumPy reference; everything that does
    not depend on ``index`` is computed once, outside, and passed in as ``loop_inputs``.
    """

    index: Variable
    loop_inputs: tuple
    output: Variable

    def make_node(self, n, *loop_inputs):
        length = int(n.value) if isinstance(n, Constant) else None
        return Apply(self, [n, *loop_inputs], [TensorType(self.output.dtype, (length,) + self.output.type.shape)])

    @cached_property
    def _order(self):
        inside = {self.index}
        order = []
        for node in toposort([self.output]):
            if any(v in inside for v in node.inputs):
                inside.update(node.outputs)
                order.append(node)
        return order

    def perform(self, node, inputs):
        n, *values = inputs
        rows = []
        with np.errstate(all="ignore"):
            for i in range(int(n)):
                env = {v: np.asarray(a) for v, a in zip(self.loop_inputs, values)}
                env[self.index] = np.asarray(i, dtype=np.int64)
                for inner in self._order:
                    args = [_python_value(v, env) for v in inner.inputs]
                    for var, result in zip(inner.outputs, inner.op.perform(inner, args)):
                        env[var] = np.asarray(result)
                rows.append(env[self.output])
        if not rows:
            return [np.zeros((0,) * node.outputs[0].ndim, dtype=self.output.dtype)]
        return [np.stack(rows).astype(self.output.dtype, copy=False)]

    def grad(self, node, output_grads):
        raise NotImplementedError(
            "exprc cannot differentiate a jacobian or hessian again (through its Rows loop); "
            "differentiate the gradient with ex.grad or ex.hvp instead"
        )

    def debug_name(self):
        return "Rows"

    def infix(self, node, show):
        # The loop body is not part of the outer graph; show how many rows and what it reads.
        return call_text("rows", show(node.inputs[0]), *(show(v) for v in node.inputs[1:])), ATOM


def _python_value(var, env):
    if isinstance(var, Constant):
        return var.python_value() if var.type.weak else var.value
    value = env[var]
    return value.item() if var.type.weak else value


def _rows(index, row, n):
    """The rows ``row`` takes for ``index`` in ``range(n)``, stacked along a new first axis."""
    inside = {index}
    loop_inputs = []
    for node in toposort([row]):
        if any(v in inside for v in node.inputs):
            inside.update(node.outputs)
            for v in node.inputs:
                if v not in inside and not isinstance(v, Constant) and v not in loop_inputs:
                    loop_inputs.append(v)
    if row not in inside:  # the same for every row
        return broadcast_to(expand_dims(row, 0), (n,) + row.shape)
    return Rows(index, tuple(loop_inputs), row)(n, *loop_inputs)


def jacobian(
    expression: TensorLike,
    wrt: Wrt,
    consider_constant: Iterable[Variable] | None = None,
    disconnected_inputs: Disconnected = "raise",
) -> Gradients:
    """The Jacobian of ``expression`` with respect to ``wrt`` (a variable or a list),
    shaped ``expression.shape + wrt.shape``, as one graph.

    Row ``i`` is the gradient of the ``i``-th element of ``expression`` (flattened);
    the rows are computed by one node that loops over them when the function runs,
    sharing everything that does not depend on the row.

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> ex.jacobian(x ** 2, x).eval({x: [1.0, 2.0]})
    array([[2., 0.],
           [0., 4.]])
    """
    y = as_tensor(expression)
    if not is_float(y.dtype):
        raise TypeError(f"jacobian: the expression must be floating-point, got {_name(y)} ({y.dtype})")
    wrt_list, rebuild = _as_list(wrt, "wrt")
    if y.ndim == 0:
        return rebuild(grad(y, wrt_list, consider_constant, disconnected_inputs))
    n = size(y)
    index = TensorVariable(TensorType("int64", ()), name="row")
    seed = reshape(set_subtensor(zeros((n,), dtype=y.dtype)[index], 1), y.shape)
    grads = grad(None, wrt_list, consider_constant, disconnected_inputs, known_grads={y: seed})
    return rebuild([reshape(_rows(index, g, n), y.shape + w.shape) for w, g in zip(wrt_list, grads)])


def hessian(
    cost: TensorLike,
    wrt: Wrt,
    consider_constant: Iterable[Variable] | None = None,
    disconnected_inputs: Disconnected = "raise",
) -> Gradients:
    """The Hessian of the scalar ``cost`` with respect to ``wrt``, shaped ``wrt.shape * 2``;
    for a list, the list of the Hessians of each variable (as Theano's ``hessian``).

    >>> import numpy as np, exprc as ex
    >>> x = ex.vector("x")
    >>> a = np.array([[2.0, 1.0], [1.0, 3.0]])
    >>> ex.hessian(0.5 * (x @ a @ x), x).eval({x: [1.0, -1.0]})
    array([[2., 1.],
           [1., 3.]])
    """
    wrt_list, rebuild = _as_list(wrt, "wrt")
    gradients = grad(cost, wrt_list, consider_constant, disconnected_inputs)
    return rebuild([jacobian(g, w, consider_constant, "ignore") for g, w in zip(gradients, wrt_list)])


def hvp(
    cost: TensorLike,
    wrt: Wrt,
    vectors: TensorLike | list[TensorLike] | tuple[TensorLike, ...],
    consider_constant: Iterable[Variable] | None = None,
    disconnected_inputs: Disconnected = "raise",
) -> Gradients:
    """The Hessian of ``cost`` times ``vectors`` (of the structure and shapes of ``wrt``),
    without forming the Hessian: the gradient of ``grad(cost, wrt) . vectors``.

    >>> import exprc as ex
    >>> x, v = ex.vector("x"), ex.vector("v")
    >>> ex.hvp((x ** 3).sum(), x, v).eval({x: [1.0, 2.0], v: [1.0, 1.0]})
    array([ 6., 12.])
    """
    wrt_list, rebuild = _as_list(wrt, "wrt")
    vector_list, _ = _as_list(vectors, "vectors")
    if len(vector_list) != len(wrt_list):
        raise ValueError(f"hvp: got {len(vector_list)} vectors for {len(wrt_list)} variables")
    vector_list = [as_tensor(v) for v in vector_list]
    for w, v in zip(wrt_list, vector_list):
        if v.ndim != w.ndim:
            raise ValueError(f"hvp: the vector {_name(v)} ({v.ndim}-d) must have the shape of {_name(w)} ({w.ndim}-d)")
    gradients = grad(cost, wrt_list, consider_constant, disconnected_inputs)
    product = None
    for g, v in zip(gradients, vector_list):
        term = (g * v).sum()
        product = term if product is None else product + term
    return rebuild(grad(product, wrt_list, consider_constant, "ignore"))
