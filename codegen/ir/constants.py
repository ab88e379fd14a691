"""Floating-point constants as kernel arguments: a kernel's identity is its structure.

:func:`parameterize` turns the eligible :class:`~exprc.codegen.ir.kernel.Const` leaves of a
loop-nest kernel into scalar buffers (``ndim`` 0) bound to one-element graph constants of
the same value and dtype, so that kernels differing only in those constants render the same code,
which the renderers then emit once (see docs/internals/kernel-ir.md, "Constants").

>>> from exprc.codegen.ir.lower import lower
>>> from exprc.codegen.c.target import TARGET
>>> import exprc as ex
>>> x = ex.vector("x")
>>> (step,) = lower([x], [ex.sin(x) * 0.75 + 1.0], TARGET).steps
>>> [(b.name, b.ndim) for b in step.kernel.buffers]
[('x', 1), ('p0', 0), ('out', 1)]
>>> [var.value.tolist() for b, var in step.inputs if b.ndim == 0]
[[0.75]]
"""

from __future__ import annotations

import dataclasses

import numpy as np

from exprc.codegen.ir import kernel as ir
from exprc.codegen.ir.names import unique
from exprc.codegen.ir.steps import KernelStep
from exprc.tensor import constant

#: The dtypes whose constants become arguments: a run-time value of these reads and
#: computes exactly as the literal did (float16 literals stay: their conversions differ).
DTYPES = ("float32", "float64")


#: Ops whose constant arguments stay literals: the compiler specialises ``pow(x, 2.0)``.
STEERING_OPS = frozenset({"power", "float_power"})


def _eligible(expr: ir.Const) -> bool:
    if expr.dtype not in DTYPES:
        return False
    # Whole numbers stay: the compiler special-cases 0, 1 and -1 (x * 1, -x) and 2 (x + x),
    # and they are mostly the same in every kernel (Python ints, the power rule's 2 * x).
    value = float(expr.value)
    return bool(np.isfinite(value)) and not value.is_integer()


def _constant_only(exprs: list[ir.Expr]) -> dict[int, bool]:
    """Per node, whether it depends on no data: its value is the compiler's to fold."""
    only: dict[int, bool] = {}
    for e in exprs:
        if isinstance(e, ir.Const):
            only[id(e)] = True
        elif isinstance(e, (ir.Call, ir.Cast)):
            only[id(e)] = all(only[id(a)] for a in e.args)
        else:
            only[id(e)] = False
    return only


def parameterize(step: KernelStep) -> KernelStep:
    """``step`` with its eligible constants read from scalar buffers (a new step; ``step``
    itself is kept when none is eligible). A constant stays a literal when any node using
    it depends on constants only (the compiler folded such an expression, and a value
    folded at compile time may round differently from one computed at run time), when an
    op in :data:`STEERING_OPS` uses it, or when it is not :func:`_eligible`."""
    kernel = step.kernel
    if not isinstance(kernel, ir.Kernel):
        return step
    exprs = ir.walk(kernel.roots)
    only = _constant_only(exprs)
    keep: set[int] = set()
    for e in exprs:
        if isinstance(e, (ir.Call, ir.Cast)):
            literal = only[id(e)] or (isinstance(e, ir.Call) and e.op in STEERING_OPS)
            if literal:
                keep.update(id(a) for a in e.args if isinstance(a, ir.Const))
    hoisted = [e for e in exprs if isinstance(e, ir.Const) and id(e) not in keep and _eligible(e)]
    if not hoisted:
        return step
    names = {b.name for b in kernel.buffers}
    new: dict[int, ir.Expr] = {}
    added = []
    for n, const in enumerate(hoisted):
        buffer = ir.Buffer(unique(f"p{n}", names), const.dtype, 0)
        # A one-element array: the call paths pass array constants as they are (a 0-d one
        # would reach C as 1-d, np.ascontiguousarray's result), and a scalar buffer reads [0].
        added.append((buffer, constant(np.array([const.value], dtype=const.dtype))))
        new[id(const)] = ir.Load(buffer, const.note)
    for e in exprs:  # rebuild the nodes above a hoisted constant, arguments first
        if isinstance(e, ir.Call) and any(id(a) in new for a in e.call_args):
            new[id(e)] = dataclasses.replace(e, call_args=tuple(new.get(id(a), a) for a in e.call_args))
        elif isinstance(e, ir.Cast) and id(e.arg) in new:
            new[id(e)] = dataclasses.replace(e, arg=new[id(e.arg)])
    stores = tuple((b, new.get(id(e), e)) for b, e in kernel.stores)
    reduction = kernel.reduction
    if reduction is not None and id(reduction.value) in new:
        reduction = dataclasses.replace(reduction, value=new[id(reduction.value)])
    inputs = [b for b in kernel.buffers if not b.output] + [b for b, _ in added]
    kernel = dataclasses.replace(
        kernel, buffers=tuple(inputs) + tuple(kernel.outputs), stores=stores, reduction=reduction
    )
    axes = dict(step.axes)
    axes.update((b.name, ()) for b, _ in added)
    return dataclasses.replace(step, kernel=kernel, inputs=list(step.inputs) + added, axes=axes)
