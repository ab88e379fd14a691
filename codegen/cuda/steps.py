"""Running a lowered program's steps on the GPU, one at a time.

``values`` maps graph variables to :class:`~exprc.codegen.cuda.array.DeviceArray`
objects, or to host values (NumPy arrays and scalars: constants, and what
host steps computed), which are copied to the device only when a kernel
reads them. Each kind of step:

- a *kernel* (:func:`run_kernel`) works out its run-time shapes as the C back
  end does (:mod:`exprc.codegen.ir.call_plan`: NumPy's broadcasting, the same
  :class:`~exprc.shapes.ShapeError` when shapes do not broadcast, axes ordered
  and merged by stride), allocates its output from the memory pool and is
  launched. A kernel whose inputs are all host scalars (lengths such as
  ``x.shape[0] - 1``) is computed on the host instead: a launch and a copy
  back would cost more than the arithmetic. Cases the kernel does not cover
  (see :func:`~exprc.codegen.ir.call_plan.plan_call`) run through NumPy on the host;
- a *view* (an op :mod:`~exprc.codegen.cuda.lowerings` registers as one: transpose and
  dimshuffle, reshape, broadcast_to, basic slicing; and shape lookups) is computed without touching the data (:func:`run_view`);
- a *matrix product* (``@``, and ``dot`` of vectors and matrices) of two
  float32 or float64 operands of the result's dtype runs on the GPU
  (:func:`run_matmul`, :mod:`exprc.codegen.cuda.matmul`); other dtypes, mixed ones
  included, run on the host as below;
- a ``sum_to`` of a gradient that sums over nothing at run time (nothing was
  broadcast) is its input, as a view;
- every other NumPy step (tensordot, integer-array indexing, concatenate,
  arg-reductions ...) runs on the host: its device inputs are copied to the
  host, the op's NumPy reference runs, and its results stay on the host until
  a kernel or the caller needs them (:func:`run_on_host`).
"""

import math
import mmap

import numpy as np

from exprc.codegen.cuda.array import MAX_SIZE, DeviceArray, empty, to_device
from exprc.codegen.cuda.copy import contiguous_copy
from exprc.codegen.cuda.launch import launch, launch_shape, pack_arguments, splits, tickets
from exprc.codegen.cuda.lowerings import CUDA_LOWERINGS
from exprc.codegen.cuda.matmul import matmul
from exprc.codegen.cuda.ops import compute_dtype
from exprc.codegen.cuda.render import splits_rows
from exprc.codegen.ir.call_plan import canonical_axes, index_strides, perform, plan_call, run_nodes
from exprc.codegen.ir.lowering import Kind
from exprc.codegen.ir.row_chain import one_per_row
from exprc.graph import Constant
from exprc.ops.reduction import SumToShape
from exprc.ops.shape import Reshape
from exprc.shapes import ShapeError

#: Kinds of op whose NumPy reference, run on a stand-in array of input 0's layout, gives a
#: view of it (applied to the device pointer) or reads only its shape.
_ON_STAND_IN = (Kind.VIEW, Kind.SHAPE)

#: The dtypes whose matrix products a program computes on the GPU. (The float16 tensor-core
#: kernel is there, and exprc.codegen.cuda.matmul runs it, but it is not yet checked on a GPU.)
MATMUL_DTYPES = ("float32", "float64")


def value_of(var, values):
    """The value of ``var``: a constant's value, or what ``values`` holds."""
    if isinstance(var, Constant):
        return var.value
    return values[var]


def on_host(value, cache=None):
    """``value`` as a host value: a device array is copied (once per ``cache``, a dict)."""
    if not isinstance(value, DeviceArray):
        return value
    if cache is None:
        return value.get()
    key = id(value)
    if key not in cache:
        cache[key] = (value, value.get())  # the array is kept so that its id stays its own
    return cache[key][1]


def on_device(var, values, uploaded, device_id, host_cache):
    """The device array of ``var``'s value, copying a host value over once (constants once
    per program, through ``uploaded``; other host values once per call, in ``values``, the
    host value kept in ``host_cache`` for :func:`on_host`, so that it never comes back)."""
    if isinstance(var, Constant):
        if var not in uploaded:
            uploaded[var] = to_device(np.asarray(var.value, dtype=var.dtype), device_id)
        return uploaded[var]
    value = values[var]
    if not isinstance(value, DeviceArray):
        host = value
        value = values[var] = to_device(np.asarray(host, dtype=var.dtype), device_id)
        host_cache[id(value)] = (value, host)
    return value


# --- kernels ---------------------------------------------------------------------------------


def run_kernel(step, values, function, uploaded, device_id, host_cache, into=None):
    """Run kernel ``step`` (a :class:`~exprc.codegen.ir.lower.KernelStep`), adding its output to ``values``:
    a new array, or ``into`` (a device array of the output's shape and dtype, written in place)."""
    if all(
        not isinstance(value_of(v, values), DeviceArray) and np.ndim(value_of(v, values)) == 0 for _, v in step.inputs
    ):
        _run_nodes_on_host(step, values, host_cache)
        return
    arrays = _device_inputs(step, values, uploaded, device_id, host_cache)
    plan = plan_call(step, arrays)
    if plan is None:
        _run_nodes_on_host(step, values, host_cache)
        return
    shape, order, groups, out_shape = plan
    check_index_space(step, shape)
    out_buffer, out_var = step.outputs[0]
    if into is not None and into.shape == tuple(out_shape) and into.dtype == out_buffer.dtype and into.flags.aligned:
        out = into
    else:
        out = empty(out_shape, out_buffer.dtype, order, device_id)
    values[out_var] = out
    if out.size == 0 or (step.reduced_axes is None and 0 in shape):
        return
    _launch_over(
        step, function, zip((b for b, _ in step.inputs), arrays), [(out_buffer, out)], shape, groups, device_id
    )


def check_index_space(step, shape):
    """Raise NumPy's ValueError where index space ``shape`` of ``step`` has more elements than
    an int64 counts: the kernel's flat index (and the launch's sizes) would wrap around."""
    if math.prod(shape) > MAX_SIZE:
        raise ValueError(
            f"iterator is too large: computing {step.kernel.note} needs an index space of shape {tuple(shape)}, "
            f"more than {MAX_SIZE} elements"
        )


def _launch_over(step, function, inputs, outputs, shape, groups, device_id):
    """Launch ``step``'s kernel over index space ``shape`` (its axes grouped as ``groups``,
    see :func:`~exprc.codegen.ir.call_plan.canonical_axes`) with ``inputs`` and ``outputs``,
    ``(buffer, device array)`` pairs in the kernel's buffer order."""
    kernel = step.kernel
    buffers = list(inputs) + list(outputs)
    strides = [index_strides(a, step.axes[b.name], shape) if b.ndim else None for b, a in buffers]
    lengths, strides, contiguous = canonical_axes(shape, strides, groups)
    shares, scratch = (1, 0, 0), None
    if splits_rows(kernel):
        rows, share = splits(kernel, lengths)
        if share > 1:  # the rows' blocks leave their results in scratch (see exprc.codegen.cuda.render)
            scratch = empty((rows * share,), compute_dtype(kernel.reduction.acc_dtype), "C", device_id)
            shares = (share, scratch.ptr, tickets(device_id).ptr)
    arguments = pack_arguments(kernel, lengths, contiguous, [(a.ptr, s) for (_, a), s in zip(buffers, strides)], shares)
    launch(function, arguments, *launch_shape(kernel, lengths))


def _device_inputs(step, values, uploaded, device_id, host_cache):
    """The device arrays of the step's inputs, in buffer order (aligned, of the buffers' dtypes)."""
    arrays = []
    for buffer, var in step.inputs:
        array = on_device(var, values, uploaded, device_id, host_cache)
        if array.dtype != buffer.dtype:
            raise TypeError(f"{step.kernel.name}: buffer {buffer.name} holds {buffer.dtype}, got a {array.dtype} array")
        if not array.flags.aligned:
            array = contiguous_copy(array)
        arrays.append(array)
    return arrays


def run_chain(step, values, functions, uploaded, device_id, host_cache):
    """Run a row chain (:class:`~exprc.codegen.ir.row_chain.RowChainStep`) in one launch, or its parts
    one by one where the shapes are not those of one chain (see :func:`_chain_plan`)."""
    arrays = _device_inputs(step, values, uploaded, device_id, host_cache)
    plan = _chainplan_call(step, arrays)
    if plan is None:
        for part in step.parts:
            run_kernel(part, values, functions[part.kernel.name], uploaded, device_id, host_cache)
        return
    shape, groups, row_shape = plan
    check_index_space(step, shape)
    kernel = step.kernel
    outputs = [empty(row_shape if b.outer else shape, b.dtype, "C", device_id) for b, _ in step.outputs]
    for (_, var), out in zip(step.outputs, outputs):
        values[var] = out
    if any(shape[a] == 0 for a in range(kernel.kept)):
        return  # no rows
    _launch_over(
        step,
        functions[kernel.name],
        zip((b for b, _ in step.inputs), arrays),
        zip((b for b, _ in step.outputs), outputs),
        shape,
        groups,
        device_id,
    )


def _chainplan_call(step, arrays):
    """``(index shape, axis groups, shape of a per-row value)`` for a row chain, or None
    where one of its parts would have another index space (an input broadcasting it
    further, or none at all) or cannot run as a kernel."""
    if not any(a.ndim for a in arrays):
        return None
    try:
        plan = plan_call(step, arrays)
    except ShapeError:
        return None  # inputs of different parts that need not broadcast together: the parts say
    if plan is None:
        return None
    shape, _, groups, row_shape = plan
    shapes = {var: a.shape for (_, var), a in zip(step.inputs, arrays)}
    for part in step.parts:
        try:
            own = np.broadcast_shapes(
                *(shapes[v] for b, v in part.inputs if b.ndim and b.name not in part.epilogue_inputs)
            )
        except (KeyError, ValueError):
            return None
        ((_, result),) = part.outputs
        reduces = part.reduced_axes is not None
        expected = row_shape if reduces or one_per_row(result, step.reduced_axes) else shape
        if own != (shape if reduces else expected):
            return None
        shapes[result] = expected
    return shape, groups, row_shape


def _run_nodes_on_host(step, values, host_cache):
    host = {var: on_host(value_of(var, values), host_cache) for _, var in step.inputs if not isinstance(var, Constant)}
    for (_, var), result in zip(step.outputs, run_nodes(step, host)):
        values[var] = result


# --- NumPy steps -------------------------------------------------------------------------------


def run_numpy_step(step, values, device_id, host_cache, uploaded=None, allow_tf32=False):
    """Run NumPy step ``step``: as a view where it is one, a matrix product on the GPU
    where it can be (``uploaded`` keeps constants copied over, as for kernels), else on the
    host."""
    node = step.node
    source = value_of(node.inputs[0], values) if node.inputs else None
    kind = CUDA_LOWERINGS.kind(node.op)
    if kind is Kind.LIBRARY and _on_gpu(node):
        run_matmul(node, values, {} if uploaded is None else uploaded, device_id, host_cache, allow_tf32)
        return
    if isinstance(node.op, SumToShape) and isinstance(source, DeviceArray) and _sums_nothing(node, values, source):
        # The usual case in a gradient: nothing was broadcast, so the sum is the array itself.
        values[node.outputs[0]] = source.view(source.shape, source.strides)
        return
    # A weak input enters NumPy as a Python scalar, read from memory: never a view.
    if isinstance(source, DeviceArray) and kind in _ON_STAND_IN and not node.inputs[0].type.weak:
        if run_view(node, values, host_cache):
            return
    run_on_host(node, values, host_cache)


def _sums_nothing(node, values, g):
    """Whether SumToShape ``node`` leaves its input ``g`` as it is (see its ``perform``)."""
    lengths = [value_of(v, values) for v in node.inputs[1:]]
    if any(isinstance(n, DeviceArray) for n in lengths):
        return False
    return not any(int(n) == 1 and g.shape[a] != 1 for a, n in zip(node.op.axis, lengths))


def _on_gpu(node):
    dtype = node.outputs[0].dtype
    return dtype in MATMUL_DTYPES and all(v.dtype == dtype and not v.type.weak for v in node.inputs)


def run_matmul(node, values, uploaded, device_id, host_cache, allow_tf32=False):
    """Compute matrix product ``node`` on the GPU, its operands copied over if on the host."""
    a, b = (on_device(var, values, uploaded, device_id, host_cache) for var in node.inputs)
    values[node.outputs[0]] = matmul(a, b, allow_tf32)


def run_on_host(node, values, host_cache):
    """Compute ``node`` with its op's NumPy reference on host copies of its inputs."""
    host = {var: on_host(values[var], host_cache) for var in node.inputs if not isinstance(var, Constant)}
    for var, result in zip(node.outputs, perform(node, host, CUDA_LOWERINGS.of(node.op).run)):
        values[var] = result


def run_view(node, values, host_cache):
    """Compute view ``node`` of a device array without reading it: the op runs on a
    stand-in of the same layout (see :func:`stand_in`), and the view it returns, an offset
    and strides into the stand-in, is taken of the device pointer. Returns False, having
    done nothing, where the op's result is not such a view (an integer index of every
    axis gives a NumPy scalar, read from the memory)."""
    x_var, *rest = node.inputs
    x = values[x_var]
    if isinstance(node.op, Reshape) and not x.flags.c_contiguous:
        # NumPy would copy: copy on the device, into a layout every reshape views.
        x = contiguous_copy(x)
    shadow = stand_in(x)
    given = {x_var: shadow}
    given.update({v: on_host(values[v], host_cache) for v in rest if not isinstance(v, Constant)})
    results = perform(node, given)
    if CUDA_LOWERINGS.kind(node.op) is Kind.SHAPE:
        for var, result in zip(node.outputs, results):
            values[var] = result
        return True
    (result,) = results
    offset = _offset_in(result, shadow, x)
    if offset is None:
        return False
    values[node.outputs[0]] = x.view(result.shape, result.strides, offset)
    return True


def stand_in(x):
    """A read-only NumPy array with the shape, dtype and strides of device array ``x``, over
    host memory that is mapped but never backed: reading it gives zeros (the kernel maps one
    shared page of them), so an op that reads rather than views cannot fault, and the
    mapping costs address space only, whatever the array's size."""
    low, high = x.extent()
    span = mmap.mmap(-1, max(high - low, 1), flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
    return np.ndarray(x.shape, x.dtype, span, -low if x.size else 0, x.strides)


def _offset_in(result, shadow, x):
    """The byte offset from ``shadow``'s first element to ``result``'s, when ``result`` is a
    view inside ``shadow``'s memory; None otherwise."""
    if not isinstance(result, np.ndarray) or result.dtype != x.dtype:
        return None
    if result.size == 0:
        return 0
    start = shadow.__array_interface__["data"][0]
    low, high = x.extent()
    r_low, r_high = DeviceArray(
        result.__array_interface__["data"][0], result.shape, result.dtype, result.strides
    ).extent()
    begin = result.__array_interface__["data"][0]
    if not (start + low <= begin + r_low and begin + r_high <= start + high):
        return None
    return begin - start  # inside the stand-in's mapping, which nothing else can use: a view


def device_output(var, value, inputs, seen, device_id):
    """What the caller gets for output ``var``: a device array of its own. Host values are
    copied over; an input, a view (of an input or of a constant) and an array already
    returned for another output are copied, as the C back end copies them."""
    if not isinstance(value, DeviceArray):
        return to_device(np.asarray(value, dtype=var.dtype), device_id)
    shared = id(value) in seen or any(value is a for a in inputs)
    if shared or isinstance(value.owner, DeviceArray) or value.owner is None:
        return contiguous_copy(value)
    return value
