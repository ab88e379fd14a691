"""Rendering a segment's entry points: one C call runs all its kernels.

For a :class:`~exprc.codegen.ir.segments.Segment` this renders, after the kernels, the
static tables the run time (:mod:`exprc.codegen.c.runtime`) walks and three exported
functions: the output shapes, a run from pointers, and a run from NumPy array objects.
See docs/internals/c-call-path.md.

>>> import exprc as ex
>>> from exprc.codegen.ir.lower import lower
>>> from exprc.codegen.c.target import TARGET
>>> from exprc.codegen.ir.segments import plan
>>> x, y = ex.vector("x"), ex.vector("y")
>>> (segment,) = plan(lower([x, y], [x * y + 1.0], TARGET))
>>> declarations(segment)[-1]
'int run0_add_mul_x_y_call(intptr_t call);'
"""

import numpy as np

from exprc.codegen.cfamily.renderer import INDENT, arg_layout
from exprc.codegen.ir import kernel as ir
from exprc.codegen.ir.steps import NumpyStep

#: Where a tuple's items start in its object (``PyTupleObject.ob_item``).
TUPLE_ITEMS = tuple.__basicsize__


def declarations(segment):
    """The cffi declarations of the segment's three entry points."""
    name = segment.name
    return [
        f"int shapes_{name}(const int64_t *shapes, int64_t *out_shapes, char *message, size_t size);",
        f"int {name}(void *const *data, const int64_t *shapes, const int64_t *strides);",
        f"int {name}_call(intptr_t call);",
    ]


def c_string(text):
    """``text`` as a C string literal (non-ASCII bytes as octal escapes)."""
    out = []
    for byte in text.encode():
        ch = chr(byte)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 32 <= byte < 127 and ch != "?":  # "?" could start a trigraph
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def max_rank(segments):
    """The largest rank of any slot or index space in ``segments`` (for EXPRC_MAXDIM)."""
    ranks = [v.ndim for s in segments for v in s.slots] + [
        st.kernel.ndim for s in segments for st in s.steps if not isinstance(st, NumpyStep)
    ]
    return max(ranks, default=1)


def step_name(segment, step):
    """The C name of a step of ``segment``: its kernel's, or one for a step that is no kernel."""
    if isinstance(step, NumpyStep):
        return f"{segment.name}_op{segment.steps.index(step)}"
    return step.kernel.name


def step_note(step, texts):
    """What a step computes, for comments and messages."""
    if isinstance(step, NumpyStep):
        return _what(step.node.outputs[0], texts)
    return step.kernel.note


def render_segment(segment, texts):
    """The C of the segment's tables, body and entry points; ``texts`` maps variables to infix."""
    parts = [
        _op_table(segment, step, texts) if isinstance(step, NumpyStep) else _step_table(segment, step, texts)
        for step in segment.steps
    ]
    parts.append(_body(segment, texts))
    parts.extend(_entries(segment, texts))
    return "\n\n".join(parts)


def _what(var, texts):
    return texts.get(var) or str(var)


def _step_table(segment, step, texts):
    k = step.kernel
    lines = [f"/* {k.name}: how its buffers bind to the slots of {segment.name} */"]
    lines.append(f"static const exprc_binding {k.name}_buffers[] = {{")
    epilogue = set(step.epilogue_inputs)
    row_pass = isinstance(k, ir.RowPassKernel)
    # A row pass's matrix and vector: NumPy's matmul broadcasts neither.
    full = {k.matrix.name, k.vector.name} if row_pass else set()
    row_chain = isinstance(k, ir.RowChainKernel)
    if row_chain:  # every row the chain's length: else its kernels run one by one
        full = {b.name for b in k.buffers if b.ndim and not b.outer and not b.output}
    for buffer, var in step.inputs + step.outputs:
        role = "EXPRC_WRITE" if buffer.output else ("EXPRC_READ_KEPT" if buffer.name in epilogue else "EXPRC_READ")
        axes = ", ".join("-1" if a is None else str(a) for a in step.axes[buffer.name]) or "0"
        fields = (
            f".slot = {segment.slot(var)}, .itemsize = {np.dtype(buffer.dtype).itemsize}, "
            f".scalar = {int(buffer.ndim == 0)}, .role = {role}, .temporary = {int(var in segment.temporaries)}, "
            f".full = {int(buffer.name in full)}, .axes = {{{axes}}}, .what = {c_string(_what(var, texts))}"
        )
        lines.append(f"{INDENT}{{{fields}}},  /* {buffer.name} */")
    lines.append("};")
    reduced = list(step.reduced_axes or ())
    order = [a for a in range(k.ndim) if a not in reduced] + reduced
    lines += [
        f"static const exprc_step {k.name}_step = {{",
        f"{INDENT}.{'checked' if row_pass else 'kernel'} = {k.name}, .what = {c_string(k.note)},",
        f"{INDENT}.ndim = {k.ndim}, .nreduced = {len(reduced)}, .order = {{{', '.join(map(str, order)) or '0'}}},",
        f"{INDENT}.minmax = {int(step.reduce_op in ('max', 'min'))}, .fixed = {int(row_pass or row_chain)}, .nbuf = {len(k.buffers)}, "
        f".nout = {len(step.outputs)}, .nargs = {sum(n for _, n in arg_layout(k))}, .buffers = {k.name}_buffers,",
        "};",
    ]
    return "\n".join(lines)


def _op_table(segment, step, texts):
    """The table of a step the run time does itself (``ops.c``): its bindings and parameters."""
    node = step.node
    form = segment.forms[node]
    name = step_name(segment, step)
    data = form.reads[: 2 if form.op == "EXPRC_OP_MATMUL" else 1]
    out = node.outputs[0]
    lines = [f"/* {name}: {node.op.debug_name().replace('*/', '* /')}, run by the run time */"]
    lines.append(f"static const exprc_binding {name}_buffers[] = {{")
    for var, role in [(v, "EXPRC_READ") for v in data] + [(out, "EXPRC_WRITE")]:
        fields = (
            f".slot = {segment.slot(var)}, .itemsize = {np.dtype(var.dtype).itemsize}, "
            f".scalar = {int(var.ndim == 0)}, .role = {role}, .temporary = {int(var in segment.temporaries)}, "
            f".full = 0, .axes = {{0}}, .what = {c_string(_what(var, texts))}"
        )
        lines.append(f"{INDENT}{{{fields}}},")
    lines.append("};")
    params = form.numbered(segment.slot)
    lines.append(f"static const int64_t {name}_params[] = {{{', '.join(map(str, params)) or '0'}}};")
    lines += [
        f"static const exprc_step {name}_step = {{",
        f"{INDENT}.what = {c_string(_what(out, texts))}, .ndim = {out.ndim}, .nbuf = {len(data) + 1}, .nout = 1,",
        f"{INDENT}.buffers = {name}_buffers, .op = {form.op}, .nparams = {len(params)}, .params = {name}_params,",
        "};",
    ]
    return "\n".join(lines)


def _slot_lines(segment, texts):
    roles = ["input"] * len(segment.inputs) + ["constant"] * len(segment.constants)
    roles += ["output"] * len(segment.outputs) + ["temporary"] * len(segment.temporaries)
    return [
        f"    slot {i} ({role}): {_what(v, texts)}: {v.type}".replace("*/", "* /")
        for i, (v, role) in enumerate(zip(segment.slots, roles))
    ]


def _body(segment, texts):
    """The segment's description: its slots' ranks and its kernels in order (the run time
    in :mod:`exprc.codegen.c.runtime` does the rest)."""
    name, n_slots = segment.name, len(segment.slots)
    n_in = len(segment.inputs) + len(segment.constants)
    n_given = n_in + len(segment.outputs)
    first_temporary = n_slots - len(segment.temporaries)
    lines = ["/*", f" * {name}: {len(segment.steps)} step(s) in one call", " *"]
    lines += [" *" + line for line in _slot_lines(segment, texts)]
    lines += [" *", " * runs, in order:"]
    lines += [
        f" *     {step_name(segment, step)}: {step_note(step, texts)}".replace("*/", "* /") for step in segment.steps
    ]
    lines.append(" */")
    steps = ", ".join(f"&{step_name(segment, step)}_step" for step in segment.steps)
    ndims = ", ".join(str(v.ndim) for v in segment.slots)
    lines += [
        f"static const exprc_step *const {name}_steps[] = {{{steps}}};",
        f"static const int {name}_ndims[] = {{{ndims}}};",
        f"static const exprc_segment {name}_segment = {{",
        f"{INDENT}.nslots = {n_slots}, .nin = {n_in}, .ngiven = {n_given}, .first_temporary = {first_temporary},",
        f"{INDENT}.ndims = {name}_ndims, .nsteps = {len(segment.steps)}, .steps = {name}_steps,",
        "};",
    ]
    return "\n".join(lines)


def _entries(segment, texts):
    name = segment.name
    n_in = len(segment.inputs) + len(segment.constants)
    n_given = n_in + len(segment.outputs)
    shapes = [
        f"/* shapes_{name}: the output shapes, given every axis of every input and constant */",
        f"int shapes_{name}(const int64_t *shapes, int64_t *out_shapes, char *message, size_t size)",
        "{",
        f"{INDENT}return exprc_segment_shapes(&{name}_segment, shapes, out_shapes, message, size);",
        "}",
    ]
    generic = [
        f"/* {name}: runs the kernels on inputs, constants and outputs given as data pointers,",
        " * shapes and strides in bytes (every axis of every array, in slot order) */",
        f"int {name}(void *const *data, const int64_t *shapes, const int64_t *strides)",
        "{",
        f"{INDENT}return exprc_segment_pointers(&{name}_segment, data, shapes, strides);",
        "}",
    ]
    n_args, n_const, n_out = len(segment.inputs), len(segment.constants), len(segment.outputs)
    # Loops, not an initializer of every slot: for a program of thousands of slots the
    # compiler's dead-store analysis of a long initializer took most of a cold build.
    objects = [
        f"{INDENT}for (int k = 0; k < {n_args}; ++k) objects[k] = item[k];",
        f"{INDENT}for (int k = 0; k < {n_const}; ++k) objects[{n_args} + k] = fixed[{n_given} + k];",
        f"{INDENT}for (int k = 0; k < {n_out}; ++k) objects[{n_args + n_const} + k] = item[{n_args + 1} + k];",
    ]
    call_entry = [
        f'/* {name}_call: the same, given NumPy array objects: "call" is the tuple (inputs..., fixed,',
        " * outputs...) and fixed the tuple (the dtype object of each input, constant and output...,",
        " * constants...); Python built both, and C reads their items after the tuple's header */",
        f"int {name}_call(intptr_t call)",
        "{",
        f"{INDENT}const intptr_t *item = (const intptr_t *)(call + {TUPLE_ITEMS});",
        f"{INDENT}const intptr_t *fixed = (const intptr_t *)(item[{n_args}] + {TUPLE_ITEMS});",
        f"{INDENT}intptr_t objects[{n_given}];",
        *objects,
        f"{INDENT}return exprc_segment_numpy(&{name}_segment, objects, fixed);",
        "}",
    ]
    return ["\n".join(shapes), "\n".join(generic), "\n".join(call_entry)]
