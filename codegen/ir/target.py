"""What a back end can render, as lowering asks it: the dtypes and scalar operations it has
formulas for, and the names its code keeps for itself. Lowering knows no renderer: each back
end hands :func:`~exprc.codegen.ir.lower.lower` its :class:`Target`.

>>> import exprc as ex
>>> from exprc.ops.elemwise import Elemwise
>>> lowerings = LoweringTable("example")
>>> lowerings.register(Elemwise, kind=Kind.ELEMENTWISE)
>>> example = Target("example", ("bool", "int32", "float64"), lambda op, dtype: True, lambda name: False, lowerings)
>>> example.elemwise_signature((ex.ivector("i") < 2.5).owner)
(('float64', 'float64'), 'bool')
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeAlias

import numpy as np

from exprc.codegen.ir.lowering import Kind, LoweringTable

if TYPE_CHECKING:
    from exprc.graph import Apply
    from exprc.tensor import TensorVariable

#: Scalar ops NumPy lacks: the reference computes them in float64 and rounds once.
FLOAT64_OPS = ("sigmoid", "softplus", "erf", "erfc", "gammaln")

#: The loop dtypes of an elementwise node: ``(input dtypes, output dtype)``.
Signature: TypeAlias = "tuple[tuple[str, ...], str]"


@dataclass(frozen=True, eq=False)
class Target:
    """A back end as lowering sees it: ``dtypes`` it computes with, ``has_op(op name, loop
    dtype)`` whether it has a formula, ``reserves(identifier)`` whether its code uses the name
    for itself (a buffer named after a variable then gets another), and ``lowerings``, how it
    lowers each op type."""

    name: str
    dtypes: tuple[str, ...]
    has_op: Callable[[str, str], bool]
    reserves: Callable[[str], bool]
    lowerings: LoweringTable
    #: Apply node -> its loop signature (NumPy's type resolution is slow enough to remember).
    _signatures: weakref.WeakKeyDictionary[Apply, Signature | None] = field(
        default_factory=weakref.WeakKeyDictionary, repr=False
    )

    def elemwise_signature(self, node: Apply) -> Signature | None:
        """The loop dtypes ``(input dtypes, output dtype)`` an Elemwise node computes in, or
        None when this back end has no form for it. Casts (``astype_*``) have the signature
        ``((in,), out)``. The loop dtypes are NumPy's: the ufunc's own type resolution decides
        them, with weak (Python scalar) inputs passed as Python types, as NumPy sees them."""
        try:
            return self._signatures[node]
        except KeyError:
            pass
        signature = self._signatures[node] = self._elemwise_signature(node)
        return signature

    def _elemwise_signature(self, node: Apply) -> Signature | None:
        op = node.op.scalar_op
        out = node.outputs[0].dtype
        dtypes = [v.dtype for v in node.inputs]
        if any(d not in self.dtypes for d in dtypes + [out]):
            return None
        if op.name.startswith("astype_"):
            return (tuple(dtypes), out)
        signature: Signature
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
            names = _resolved(op.numpy, described)
            if names is None:
                return None
            signature = (tuple(names[:-1]), names[-1])
            # Mixed loops (such as int64 < uint64) need formulas of their own.
            if len(set(signature[0])) != 1 or names[-1] != out:
                return None
        else:
            return None
        if any(d not in self.dtypes for d in signature[0]) or not self.has_op(op.name, signature[0][0]):
            return None
        if op.name == "power" and not _nonnegative_exponent(node, signature[0][1]):
            return None
        return signature

    def reduce_signature(self, node: Apply) -> str | None:
        """The kernel reduction op for a Reduce node, or None when it stays a NumPy step."""
        lowering = self.lowerings.of(node.op)
        op_name = lowering.combine if lowering.kind is Kind.REDUCTION else None
        if op_name is None or not node.op.axis:
            return None
        x, out = node.inputs[0], node.outputs[0]
        if x.dtype not in self.dtypes or out.dtype not in self.dtypes:
            return None
        if op_name in ("add", "mul") and out.dtype == "bool":
            return None
        return op_name

    def is_elementwise(self, node: Apply) -> bool:
        """Whether ``node``'s op lowers to elementwise kernel code on this back end."""
        return self.lowerings.kind(node.op) is Kind.ELEMENTWISE

    def fusable(self, node: Apply) -> bool:
        """Whether ``node`` can be part of a kernel of this back end."""
        if self.is_elementwise(node):
            return self.elemwise_signature(node) is not None
        return self.reduce_signature(node) is not None


#: (ufunc, input dtypes or Python types) -> NumPy's loop dtypes' names, or None where it has no loop.
_RESOLVED: dict[tuple[np.ufunc, tuple[np.dtype | type, ...]], list[str] | None] = {}


def _resolved(ufunc: np.ufunc, described: tuple[np.dtype | type, ...]) -> list[str] | None:
    """NumPy's loop for ``ufunc`` on ``described`` inputs, remembered: resolving it costs
    tens of microseconds, and a large graph asks for the same few thousands of times."""
    key = (ufunc, described)
    if key not in _RESOLVED:
        try:
            _RESOLVED[key] = [d.name for d in ufunc.resolve_dtypes(described + (None,))]
        except (TypeError, ValueError):
            _RESOLVED[key] = None
    return _RESOLVED[key]


def _nonnegative_exponent(node: Apply, loop_dtype: str) -> bool:
    """Whether an integer power's exponent is known never to be negative: NumPy raises for a
    negative one, which a kernel cannot, so such a power stays a NumPy step (which raises)."""
    if np.dtype(loop_dtype).kind != "i":
        return True
    exponent = node.inputs[1]
    if np.dtype(exponent.dtype).kind in "bu":
        return True
    value = getattr(exponent, "value", None)  # a Constant's value; None for computed exponents
    return value is not None and bool(np.all(np.asarray(value) >= 0))


def _python_type(var: TensorVariable) -> np.dtype | type | None:
    """The Python type NumPy sees for a weak (Python scalar) input; None for other weak
    values (an integer beyond int64, held as uint64), which stay NumPy steps."""
    types: dict[str, np.dtype | type] = {"bool": np.dtype("bool"), "int64": int, "float64": float}
    return types.get(var.dtype)
