"""Grouping a program's consecutive kernels into segments, each run by one C call.

A :class:`Segment` is a maximal run of consecutive kernel steps and of the NumPy steps the
back end runs inside the call as well (``c_form``: views, lengths, matrix products); the
arrays it reads, writes and keeps for itself are numbered as its *slots*.
See docs/internals/kernel-ir.md.

>>> import exprc as ex
>>> from exprc.codegen.ir.lower import lower
>>> from exprc.codegen.c.target import TARGET
>>> x = ex.vector("x")
>>> program = lower([x], [ex.exp(x).sum() * 2], TARGET)
>>> [(s.name, [str(v) for v in s.inputs]) for s in plan(program)]
[('run0_mul_sum_exp_x', ['x'])]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from exprc.codegen.ir.names import slug
from exprc.codegen.ir.steps import KernelStep, NumpyStep, Program, Step
from exprc.graph import Constant, Variable


@dataclass
class Segment:
    """Consecutive kernels run by one entry point; see the module docstring."""

    index: int
    name: str
    steps: list
    inputs: list = field(default_factory=list)
    constants: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    temporaries: list = field(default_factory=list)
    #: The back end's form of each NumPy step in ``steps`` (by node), as ``c_form`` gave it.
    forms: dict = field(default_factory=dict)

    @property
    def slots(self) -> list[Variable]:
        """Every array the segment touches, in slot order."""
        return self.inputs + self.constants + self.outputs + self.temporaries

    def slot(self, var: Variable) -> int:
        # Asked once per buffer of every step: a table, not a search (quadratic in big programs).
        # Built on first use, once the segment's slots are final.
        count = len(self.inputs) + len(self.constants) + len(self.outputs) + len(self.temporaries)
        built = self.__dict__.get("_slot_table")
        if built is None or built[0] != count:
            built = (count, {v: k for k, v in reversed(list(enumerate(self.slots)))})
            self._slot_table = built
        return built[1][var]


def _reads(step: Step, forms: dict | None = None) -> list[Variable]:
    if isinstance(step, NumpyStep):
        form = forms.get(step.node) if forms else None
        return list(step.node.inputs if form is None else form.reads)
    return [var for _, var in step.inputs]


def _writes(step: Step) -> list[Variable]:
    if isinstance(step, NumpyStep):
        return list(step.node.outputs)
    return [var for _, var in step.outputs]


def plan(program: Program, c_form: Callable | None = None) -> list[Segment | NumpyStep]:
    """The program's steps with each run of consecutive kernels replaced by a :class:`Segment`.

    ``c_form(node, produced)``, where given, is the back end's form of a NumPy step's node
    inside a segment (an object whose ``reads`` are the variables it reads), given the
    variables ``produced`` earlier in the same segment, or None: such steps join the run."""
    items: list = []
    run: list = []
    forms: dict = {}
    produced: set[Variable] = set()
    for step in program.steps + [None]:
        form = None
        if isinstance(step, NumpyStep) and c_form is not None:
            form = c_form(step.node, produced)
        if isinstance(step, KernelStep) or form is not None:
            if form is not None:
                forms[step.node] = form
            run.append(step)
            produced.update(_writes(step))
            continue
        if run:
            items.append(run)
            run, produced = [], set()
        if step is not None:
            items.append(step)
    result: list[Segment | NumpyStep] = []
    count = 0
    for position, item in enumerate(items):
        if not isinstance(item, list):
            result.append(item)
            continue
        needed_after = set(program.outputs)
        for later in items[position + 1 :]:
            for step in later if isinstance(later, list) else [later]:
                needed_after.update(_reads(step, forms))
        result.append(_segment(count, item, needed_after, program, forms))
        count += 1
    return result


def _segment(index: int, steps: list[Step], needed_after: set[Variable], program: Program, forms: dict) -> Segment:
    produced = [var for step in steps for var in _writes(step)]
    inputs: list[Variable] = []
    constants: list[Variable] = []
    seen = set(produced)
    for step in steps:
        for var in _reads(step, forms):
            if var in seen:
                continue
            seen.add(var)
            (constants if isinstance(var, Constant) else inputs).append(var)
    outputs = [v for v in produced if v in needed_after]
    if len(steps) == len(program.steps):
        # the whole program: inputs (and outputs) in the caller's order, so that a call hands
        # its arguments to the entry point as they come
        order = {v: k for k, v in enumerate(program.inputs)}
        if all(v in order for v in inputs):
            inputs.sort(key=order.__getitem__)
        if _distinct_kernel_outputs(program, produced):
            outputs = list(program.outputs)
    temporaries = [v for v in produced if v not in outputs]
    name = f"run{index}_{slug(produced[-1])}"
    own = {s.node: forms[s.node] for s in steps if isinstance(s, NumpyStep)}
    return Segment(index, name, list(steps), inputs, constants, outputs, temporaries, own)


def _distinct_kernel_outputs(program: Program, produced: list[Variable]) -> bool:
    return len(set(program.outputs)) == len(program.outputs) and all(v in produced for v in program.outputs)
