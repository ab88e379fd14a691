"""Row chains (codegen/ir/row_chain.py): which runs of kernels become one, and what the chain
kernel stores. Their CUDA runs in tests/codegen/test_cuda_emulated.py."""

import exprc as ex
from exprc.codegen.cuda.target import TARGET
from exprc.codegen.ir import kernel as ir
from exprc.codegen.ir.lower import KernelStep, lower
from exprc.codegen.ir.row_chain import RowChainStep, chain


def _softmax(x, axis):
    e = ex.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def test_softmax_over_the_last_axis_is_one_chain_storing_only_its_result():
    x = ex.matrix("x")
    (step,) = chain(lower([x], [_softmax(x, 1)], TARGET)).steps
    assert isinstance(step, RowChainStep) and len(step.parts) == 3
    assert [r.op for r in step.kernel.reductions] == ["max", "add"]
    ((out, _),) = step.kernel.stores
    assert not out.outer and [b.name for b in step.kernel.inputs] == ["x"]


def test_values_read_outside_the_chain_are_stored_per_row():
    x = ex.matrix("x")
    total = ex.exp(x - x.max(axis=1, keepdims=True)).sum(axis=1, keepdims=True)
    program = chain(lower([x], [ex.exp(x) / total, total], TARGET))
    (step,) = [s for s in program.steps if isinstance(s, RowChainStep)]
    assert sorted(b.outer for b, _ in step.kernel.stores) == [False, True]
    assert any(isinstance(e, ir.Acc) for _, e in step.kernel.stores)


def test_reductions_over_leading_axes_do_not_chain():
    x = ex.matrix("x")
    program = chain(lower([x], [_softmax(x, 0)], TARGET))
    assert all(isinstance(s, KernelStep) for s in program.steps)


def test_a_kernel_that_reads_nothing_of_the_chain_ends_it():
    x, y = ex.matrix("x"), ex.matrix("y")
    m = x.max(axis=1, keepdims=True)
    program = chain(lower([x, y], [m, ex.exp(y).sum(axis=1, keepdims=True)], TARGET))
    assert not any(isinstance(s, RowChainStep) for s in program.steps)


def test_a_value_each_part_computed_is_one_node_of_the_chain():
    # exp(x - max) is in the sum and in the division: one node, computed once per element.
    x = ex.matrix("x")
    (step,) = chain(lower([x], [_softmax(x, 1)], TARGET)).steps
    ((_, stored),) = step.kernel.stores
    summed = {id(e) for e in ir.walk([step.kernel.reductions[1].value]) if isinstance(e, ir.Call)}
    assert any(e.op == "exp" and id(e) in summed for e in ir.walk([stored]) if isinstance(e, ir.Call))
