"""The NumPy reference back end (``backend="numpy"``): a graph run node by node through each
op's NumPy implementation, the oracle every other back end is tested against."""

import numpy as np

from .graph import Constant, toposort
from .printing import format_value, infix_texts, to_infix


class ReferenceProgram:
    """Runs a graph node by node through each op's NumPy reference, freeing values after their last use.

    It writes nothing in place: ``in_place`` is accepted and ignored."""

    def __init__(self, inputs, outputs, in_place=()):
        self.inputs, self.outputs = inputs, outputs
        self.order = toposort(outputs)
        last_use = {}
        for step, node in enumerate(self.order):
            for var in node.inputs:
                last_use[var] = step
        keep = set(outputs)
        self.free_after = [[] for _ in self.order]
        for var, step in last_use.items():
            if var not in keep and var.owner is not None:
                self.free_after[step].append(var)

    def run(self, arrays):
        values = dict(zip(self.inputs, arrays))
        with np.errstate(all="ignore"):
            for node, dead in zip(self.order, self.free_after):
                args = [value_of(v, values) for v in node.inputs]
                try:
                    results = node.op.perform(node, args)
                except Exception as err:
                    shapes = ", ".join(f"{to_infix(v)}: {format_value(a)}" for v, a in zip(node.inputs, args))
                    err.add_note(f"while computing {to_infix(node.outputs[0])} ({node.op.debug_name()}) from {shapes}")
                    raise
                for var, result in zip(node.outputs, results):
                    values[var] = result
                for var in dead:
                    del values[var]
        return [value_of(v, values) for v in self.outputs]

    def listing(self):
        infix = infix_texts(self.outputs)
        names = {v: (v.name or f"x{i}") for i, v in enumerate(self.inputs)}
        lines = [f"# inputs: {', '.join(f'{names[v]}: {v.type}' for v in self.inputs)}"]
        for step, node in enumerate(self.order):
            for k, out in enumerate(node.outputs):
                names[out] = f"t{step}" + (f"_{k}" if len(node.outputs) > 1 else "")
            args = ", ".join(names.get(v, infix[v]) for v in node.inputs)
            targets = ", ".join(names[o] for o in node.outputs)
            lines.append(f"{targets} = {node.op.debug_name()}({args})  # {infix[node.outputs[0]]}")
        lines.append(f"return {', '.join(names.get(v, infix[v]) for v in self.outputs)}")
        return "\n".join(lines)


def value_of(var, values):
    """The value of ``var`` as a NumPy op receives it: constants from the graph, weak
    (Python scalar) values as Python scalars so that NumPy applies its weak-scalar promotion."""
    if isinstance(var, Constant):
        return var.python_value() if var.type.weak else var.value
    value = values[var]
    return value.item() if var.type.weak else value
