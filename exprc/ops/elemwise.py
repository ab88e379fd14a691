"""Elementwise ops: a scalar operation applied to every element, with NumPy broadcasting.

Inputs of an :class:`Elemwise` node are either 0-d or of the output's number
of dimensions: :func:`elemwise` pads lower-dimensional inputs with leading
broadcastable axes (as NumPy does implicitly) so back ends meet one rule.
A length that is ``None`` when built and 1 when run broadcasts, as in NumPy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..dtypes import is_float, is_integer, probe_dtype
from ..graph import Apply, Constant, Op
from ..printing import ATOM, call_text
from ..shapes import broadcast_shapes
from ..tensor import DType, TensorConstant, TensorLike, TensorType, TensorVariable, as_tensor, constant
from .derivative_table import PARTIALS
from .scalar import SCALAR_OPS, ScalarOp, cast
from .scalar import scalar_op as named_scalar_op
from .shape import DimShuffle, expand_left, sum_to, zeros_like

if TYPE_CHECKING:
    # The functions of ELEMWISE_FUNCTIONS (exp, add, ...) become module attributes when imported.
    def __getattr__(name: str) -> Callable[..., TensorVariable]: ...


_WEAK_STAND_INS = {"bool": True, "int64": 1, "float64": 1.0}


def weak_value(var: TensorVariable) -> bool | int | float | None:
    """The Python scalar that a weak input stands for when promoting dtypes, else None.

    A weak constant is its own value, so NumPy's overflow check applies to it;
    a computed weak value (such as ``x.shape[0]``) is represented by 1, 1.0 or True.
    """
    if not var.type.weak:
        return None
    if isinstance(var, TensorConstant):
        return var.python_value()
    return _WEAK_STAND_INS[var.dtype]


@dataclass(frozen=True)
class Elemwise(Op):
    """Applies ``scalar_op`` elementwise to its broadcast inputs."""

    scalar_op: ScalarOp

    def make_node(self, *inputs):
        name = self.scalar_op.name
        if len(inputs) != self.scalar_op.nin:
            raise TypeError(f"{name} takes {self.scalar_op.nin} inputs, got {len(inputs)}")
        shapes = [v.type.shape for v in inputs]
        out_shape = broadcast_shapes(shapes, inputs, what=name)
        for v in inputs:
            if v.ndim not in (0, len(out_shape)):
                raise TypeError(f"{name}: input {v} must be 0-d or {len(out_shape)}-d; use elementwise()")
        dtypes = tuple(v.dtype for v in inputs)
        try:
            dtype = probe_dtype(self.scalar_op.numpy, dtypes, tuple(weak_value(v) for v in inputs))
        except OverflowError as err:
            raise OverflowError(f"{name}({', '.join(map(str, inputs))}): {err}") from err
        except TypeError as err:
            described = ", ".join(f"{v} ({v.dtype})" for v in inputs)
            raise TypeError(f"{name} is not defined for {described}: {err}") from err
        # A cast asks for a dtype, as np.asarray(2).astype(...) does: its result is never weak.
        is_cast = name.startswith("astype_")
        weak = all(v.type.weak for v in inputs) and dtype in _WEAK_STAND_INS and not is_cast
        return Apply(self, inputs, [TensorType(dtype, out_shape, weak)])

    def perform(self, node, inputs):
        out = self.scalar_op.numpy(*inputs)
        return [np.asarray(out).astype(node.outputs[0].dtype, copy=False)]

    def grad(self, node, output_grads):
        """``gz * d out / d input`` for each floating input, the partial derivatives taken
        from the scalar op's SymPy form ahead of time (see :func:`partials`), then summed
        over the axes along which the input was broadcast."""
        (gz,) = output_grads
        found = partials(self.scalar_op)
        names = {f"x{i}": v for i, v in enumerate(node.inputs)}
        grads = []
        for i, (x, partial) in enumerate(zip(node.inputs, found or [None] * len(node.inputs))):
            # An axis of x can have been broadcast only where another input may be longer.
            others = [v for j, v in enumerate(node.inputs) if j != i and v.ndim]
            axes = [a for a in range(x.ndim) if any(v.type.shape[a] != 1 for v in others)]
            if partial is None or not is_float(x.dtype):
                grads.append(None)
            elif isinstance(partial, str) and partial not in names:
                raise NotImplementedError(f"the gradient of {self.scalar_op.name} with respect to input {i}: {partial}")
            elif type(partial) is int:  # 0, 1 or -1
                if partial == 0:
                    grads.append(zeros_like(x, dtype=gz.dtype))
                else:
                    grads.append(sum_to(gz if partial == 1 else negative(gz), x, axes))
            else:
                grads.append(sum_to(multiply(gz, formula_graph(partial, names)), x, axes))
        return grads

    def debug_name(self):
        return f"Elemwise{{{self.scalar_op.name}}}"

    def infix(self, node, show):
        op = self.scalar_op
        # The leading axes elementwise() adds are NumPy's implicit broadcasting: not shown.
        inputs = [v.owner.inputs[0] if is_left_padding(v) else v for v in node.inputs]
        show = _dtype_of_promoting_scalars(inputs, show)
        if op.name.startswith("astype_"):
            return f"{show(inputs[0], ATOM)}.astype({node.outputs[0].dtype})", ATOM
        if op.infix and op.nin == 1:
            return f"{op.infix}{show(inputs[0], op.precedence)}", op.precedence
        if op.infix:
            # ** groups to the right, every other operator to the left.
            # Comparisons chain in Python, so (a < b) < c keeps its parentheses.
            right_assoc = op.infix == "**"
            left = show(inputs[0], op.precedence + (right_assoc or op.precedence == COMPARISON))
            right = show(inputs[1], op.precedence + (not right_assoc))
            return f"{left} {op.infix} {right}", op.precedence
        return call_text(op.name, *(show(v) for v in inputs)), ATOM


COMPARISON = SCALAR_OPS["less"].precedence


def _dtype_of_promoting_scalars(inputs, show):
    """``show``, except that a strong scalar constant (a NumPy scalar, not a Python number)
    whose dtype differs from the other operands' reads ``float64(0.1)``: it promotes where
    a Python number would not, and a dtype it causes downstream then shows its cause."""
    others = {v.dtype for v in inputs if not _strong_scalar(v)}
    flagged = {v for v in inputs if _strong_scalar(v) and others and others != {v.dtype}}
    if not flagged:
        return show

    def show_with_dtype(v, min_precedence=0):
        return f"{v.dtype}({show(v)})" if v in flagged else show(v, min_precedence)

    show_with_dtype.precedence = getattr(show, "precedence", None)
    return show_with_dtype


def _strong_scalar(var) -> bool:
    return isinstance(var, Constant) and var.ndim == 0 and not var.type.weak and var.name is None


def is_left_padding(var: TensorVariable) -> bool:
    """Whether ``var`` is its input with leading length-1 axes added (see :func:`elementwise`)."""
    node = var.owner
    if node is None or not isinstance(node.op, DimShuffle):
        return False
    order, ndim = node.op.new_order, node.inputs[0].ndim
    return order[len(order) - ndim :] == tuple(range(ndim)) and all(a == "x" for a in order[: len(order) - ndim])


def partials(op: ScalarOp) -> tuple | None:
    """The partial derivatives of ``op``, one per input, from exprc/ops/derivative_table.py
    (see :func:`exprc.ops.from_sympy.partial_formulas` for what they are).

    >>> partials(SCALAR_OPS["exp"])
    (('exp', 'x0'),)
    """
    found = PARTIALS.get(op.name, KeyError)
    if found is not KeyError:
        return found
    if op.sympy is None:
        return None
    # An op the table does not hold yet (a new row before the table is regenerated): SymPy now.
    from .from_sympy import partial_formulas

    return partial_formulas(op)


def formula_graph(formula: object, inputs: dict[str, TensorVariable]) -> TensorVariable:
    """The graph computing ``formula`` (see :mod:`exprc.ops.from_sympy`), with ``inputs``
    giving the tensor each input name (``"x0"``...) stands for.

    >>> import exprc as ex
    >>> v = ex.vector("v")
    >>> str(formula_graph(("subtract", 1.0, ("square", ("tanh", "x0"))), {"x0": v}))
    '1.0 - square(tanh(v))'
    """
    memo: dict[int, TensorVariable] = {}  # by id: a formula shares its repeated subexpressions

    def build(f):
        if isinstance(f, str):
            if f not in inputs:
                raise KeyError(f"formula {formula!r}: no tensor is given for the input {f!r}")
            return inputs[f]
        if not isinstance(f, tuple):
            return constant(f)
        if id(f) not in memo:
            memo[id(f)] = elementwise(named_scalar_op(f[0]), *(build(a) for a in f[1:]))
        return memo[id(f)]

    return build(formula)


def elementwise(scalar_op: ScalarOp, *inputs: TensorLike) -> TensorVariable:
    """Apply ``scalar_op`` to ``inputs`` with NumPy broadcasting.

    >>> import exprc as ex
    >>> from exprc.ops.scalar import SCALAR_OPS
    >>> elementwise(SCALAR_OPS["add"], ex.matrix("a"), ex.vector("b")).type.shape
    (None, None)
    """
    tensors = [as_tensor(v) for v in inputs]
    ndim = max(v.ndim for v in tensors)
    # Check the static shapes before padding so the error names the shapes the user wrote.
    broadcast_shapes([v.type.shape for v in tensors], tensors, what=scalar_op.name)
    padded = [v if v.ndim in (0, ndim) else expand_left(v, ndim) for v in tensors]
    return Elemwise(scalar_op)(*padded)


def _public(name: str, doc_example: str) -> Callable[..., TensorVariable]:
    scalar_op = SCALAR_OPS[name]
    args = ", ".join("xyz"[: scalar_op.nin])

    def fn(*inputs: TensorLike) -> TensorVariable:
        return elementwise(scalar_op, *inputs)

    fn.__name__ = name
    fn.__qualname__ = name
    fn.__doc__ = f"""Elementwise ``{name}({args})`` with NumPy's semantics, broadcasting and dtypes.

    >>> import exprc as ex
    >>> {doc_example}
    """
    return fn


def _doc_example(name: str, nin: int) -> str:
    if name in ("isnan", "isinf", "isfinite", "logical_not"):
        return f"ex.{name}(ex.vector('x')).dtype\n    'bool'"
    if name in ("invert", "bitwise_and", "bitwise_or", "bitwise_xor"):
        call = ", ".join(["ex.ivector('x')"] * nin)
        return f"ex.{name}({call}).dtype\n    'int32'"
    call = ", ".join(["ex.fvector('x')"] * nin)
    return f"ex.{name}({call}).type.shape\n    (None,)"


#: The NumPy-named elementwise functions, one per scalar op: ``exp(x)``, ``add(x, y)``...
ELEMWISE_FUNCTIONS: dict[str, Callable[..., TensorVariable]] = {
    name: _public(name, _doc_example(name, op.nin)) for name, op in SCALAR_OPS.items() if name not in ("where", "clip")
}
globals().update(ELEMWISE_FUNCTIONS)
eq = ELEMWISE_FUNCTIONS["equal"]
negative = ELEMWISE_FUNCTIONS["negative"]
multiply = ELEMWISE_FUNCTIONS["multiply"]
neq = ELEMWISE_FUNCTIONS["not_equal"]
divide = ELEMWISE_FUNCTIONS["true_divide"]
absolute = ELEMWISE_FUNCTIONS["abs"]


def round(x: TensorLike) -> TensorVariable:  # noqa: A001 - NumPy's name
    """Round to the nearest integer, halves to even (NumPy's ``round`` with ``decimals=0``).

    Integers are returned as they are; booleans become float16, as in NumPy.

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> ex.round(x).eval({x: [0.5, 1.5, -2.5]})
    array([ 0.,  2., -2.])
    """
    t = as_tensor(x)
    if is_integer(t.dtype):
        return t
    return elementwise(SCALAR_OPS["rint"], t)


def where(condition: TensorLike, x: TensorLike, y: TensorLike) -> TensorVariable:
    """``x`` where ``condition`` holds, else ``y``, elementwise (NumPy's three-argument ``where``).

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> ex.where(x > 0, x, 0.0).eval({x: [-1.0, 2.0]})
    array([0., 2.])
    """
    return elementwise(SCALAR_OPS["where"], condition, x, y)


def clip(x: TensorLike, a_min: TensorLike | None = None, a_max: TensorLike | None = None) -> TensorVariable:
    """Limit ``x`` to ``[a_min, a_max]``; either bound may be None.

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> ex.clip(x, 0.0, 1.0).eval({x: [-1.0, 0.5, 3.0]})
    array([0. , 0.5, 1. ])
    """
    if a_min is None and a_max is None:
        raise ValueError(f"clip({x!s}): give a_min, a_max or both")
    t = as_tensor(x)
    if t.type.weak:  # np.clip makes an array of x first, so a Python scalar there is not weak
        t = astype(t, t.dtype)
    if a_max is None:
        assert a_min is not None
        return elementwise(SCALAR_OPS["maximum"], t, a_min)
    if a_min is None:
        return elementwise(SCALAR_OPS["minimum"], t, a_max)
    return elementwise(SCALAR_OPS["clip"], t, a_min, a_max)


def astype(x: TensorLike, dtype: DType) -> TensorVariable:
    """``x`` converted to ``dtype`` (NumPy's ``astype``); the same variable if it already has it.

    >>> import exprc as ex
    >>> ex.astype(ex.vector("x"), "float32").dtype
    'float32'
    """
    t = as_tensor(x)
    op = cast(dtype)
    if t.dtype == op.name[len("astype_") :] and not t.type.weak:
        return t
    return Elemwise(op)(t)
