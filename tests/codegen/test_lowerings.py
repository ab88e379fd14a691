"""Every op of the op set has a lowering in every back end, and a NumPy reference."""

import pytest

import exprc  # noqa: F401 - defines every op
from exprc.codegen.c.lowerings import C_LOWERINGS
from exprc.codegen.cuda.lowerings import CUDA_LOWERINGS
from exprc.codegen.ir.lowering import HOST_STEP, Kind, LoweringTable
from exprc.graph import Op


def _concrete_ops(base=Op):
    """Every op class defined in exprc below ``base``, abstract bases (with subclasses) left out."""
    found = []
    for sub in base.__subclasses__():
        if not sub.__module__.startswith("exprc.") or sub.__module__.startswith("exprc.codegen"):
            continue
        children = _concrete_ops(sub)
        found += children if children else [sub]
    return found


OPS = sorted(_concrete_ops(), key=lambda op: (op.__module__, op.__name__))


def test_the_op_set_is_found():
    names = {op.__name__ for op in OPS}
    assert {"Elemwise", "Sum", "MatMul", "DimShuffle", "Subtensor", "AdvancedIncSubtensor", "Rows"} <= names


@pytest.mark.parametrize("table", [C_LOWERINGS, CUDA_LOWERINGS], ids=lambda t: t.name)
@pytest.mark.parametrize("op", OPS, ids=lambda op: op.__name__)
def test_every_op_has_a_lowering(table, op):
    lowering = table.lookup(op)
    assert lowering is not None, f"{op.__name__} has no lowering in the {table.name} back end"
    assert lowering.kind is not Kind.REDUCTION or lowering.combine, op
    assert lowering.kind is not Kind.LIBRARY or lowering.library, op


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.__name__)
def test_every_op_has_a_numpy_reference(op):
    assert op.perform is not Op.perform, f"{op.__name__} has no NumPy reference (perform)"


def test_an_op_no_one_registered_runs_on_the_host():
    class Unknown(Op):
        pass

    assert LoweringTable("c").lookup(Unknown) is None
    assert C_LOWERINGS.of(Unknown()) is HOST_STEP and HOST_STEP.kind is Kind.HOST
