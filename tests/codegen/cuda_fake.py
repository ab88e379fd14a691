"""A stand-in for the CUDA driver, so the launcher can run end to end without a GPU.

"Device memory" is host memory (a device pointer is a host address), copies
are ``memmove``, and ``cuLaunchKernel`` *interprets* the kernel's IR with
NumPy: it reads the kernel's parameters back from the ``void *`` array exactly
as the GPU would (one 8-byte value per parameter of
:func:`exprc.codegen.cuda.render.parameters`), views each buffer through the lengths
and strides it was given (through the flat index alone when ``contiguous`` is
set, as the kernel's fast path does), evaluates the expressions and stores.
A wrong argument order, stride, length or contiguous flag thus gives wrong
numbers, which the tests compare with NumPy.

A GEMM kernel (:mod:`exprc.codegen.cuda.gemm.plan`) is interpreted the same way: its
sixteen parameters are read back from the launch, each operand is viewed
through the pointer and the three strides in elements it was given (and must
lie inside memory the pool handed out), and the product is computed with
NumPy as the kernel computes it (float32 accumulation for float16, TF32
rounding of the inputs for the TF32 kernel). The grid and block must be what
:func:`exprc.codegen.cuda.gemm.plan.grid` gives, as the kernel assumes its thread count.

NVRTC is not called: the "CUBIN" is the CUDA source, and the kernels are found
by it. (tests/codegen/test_cuda_compile.py and test_cuda_gemm.py compile the
same kernels for real.)
"""

import ctypes

import numpy as np

from exprc.codegen.cache.memo import Memo
from exprc.codegen.cuda import copy as cuda_copy
from exprc.codegen.cuda import driver as cuda_driver
from exprc.codegen.cuda import launch as cuda_launch
from exprc.codegen.cuda import matmul as cuda_matmul
from exprc.codegen.cuda import pool as cuda_pool
from exprc.codegen.cuda import program as cuda_program
from exprc.codegen.cuda import render as cuda_render
from exprc.codegen.cuda.gemm import plan as cuda_gemm
from exprc.codegen.cuda.ops import THREADS
from exprc.codegen.ir import kernel as ir
from exprc.ops.scalar import DERIVATIVE_OPS, SCALAR_OPS

_REDUCE = {
    "add": np.add,
    "mul": np.multiply,
    "max": np.maximum,
    "min": np.minimum,
    "and": np.logical_and,
    "or": np.logical_or,
}


class FakeGpu:
    """Installs itself over the driver with ``monkeypatch``; counts what it was asked to do."""

    def __init__(self, monkeypatch):
        self.memory = {}  # address -> the host buffer standing for a device allocation
        self.programs = {}  # source -> kernels
        self.launches, self.copies, self.to_host = [], [], []
        real_render = cuda_render.render_program

        def render(kernels, title=""):
            source = real_render(kernels, title)
            self.programs[source] = {k.name: k for k in kernels}
            return source

        monkeypatch.setattr(cuda_render, "render_program", render)
        monkeypatch.setattr(cuda_program, "render_program", render)
        monkeypatch.setattr(cuda_program, "load_cubin", lambda source, arch, name="": source.encode())
        monkeypatch.setattr(
            "exprc.codegen.cuda.build.load_cubin", lambda source, arch, cache=None, name="": source.encode()
        )
        monkeypatch.setattr(cuda_driver, "unavailable_reason", lambda: None)
        monkeypatch.setattr(cuda_driver, "use_device", lambda ordinal=0: None)
        monkeypatch.setattr(cuda_driver, "arch", lambda ordinal=0: "sm_80")
        monkeypatch.setattr(cuda_driver, "load_module", lambda cubin: self.programs[cubin.decode()])
        monkeypatch.setattr(cuda_driver, "get_function", lambda module, name: module[name])
        monkeypatch.setattr(cuda_driver, "call", self.call)
        self.pool = cuda_pool.MemoryPool(self.alloc, self.free)
        monkeypatch.setattr(cuda_pool, "_pools", {0: self.pool})
        # Programs and copy kernels loaded over the stand-in are forgotten afterwards.
        monkeypatch.setattr(cuda_copy.KERNELS, "_loaded", {})
        monkeypatch.setattr(cuda_matmul.KERNELS, "_loaded", {})
        monkeypatch.setattr(cuda_launch, "_tickets", {})  # they live in the stand-in's memory
        self.programs[cuda_gemm.gemm_source()] = {k.name: k for k in cuda_gemm.gemm_kernels()}
        monkeypatch.setattr(cuda_program, "_memo", Memo(cuda_program.MEMO_SIZE))

    # --- memory -----------------------------------------------------------------------------
    def alloc(self, nbytes):
        # Garbage, as new device memory is, aligned to 256 bytes as the driver's allocations are.
        padded = np.full(nbytes + 256, 0xAB, dtype=np.uint8)
        start = -padded.ctypes.data % 256
        buffer = padded[start : start + nbytes]
        address = buffer.ctypes.data
        self.memory[address] = buffer
        return address

    def free(self, ptr):
        del self.memory[ptr]

    def owns(self, ptr, nbytes):
        """Whether ``nbytes`` at ``ptr`` lie in one allocation."""
        return any(start <= ptr and ptr + nbytes <= start + b.size for start, b in self.memory.items())

    # --- the driver -------------------------------------------------------------------------
    def call(self, name, *args):
        ffi = cuda_driver.ffi()
        if name == "cuMemcpyHtoD_v2":
            dst, src, n = args
            assert self.owns(dst, n), "a copy to memory the pool did not hand out"
            ctypes.memmove(dst, int(ffi.cast("uintptr_t", src)), n)
        elif name == "cuMemcpyDtoH_v2":
            dst, src, n = args
            assert self.owns(src, n), "a copy from memory the pool did not hand out"
            self.to_host.append(n)
            ctypes.memmove(int(ffi.cast("uintptr_t", dst)), src, n)
        elif name == "cuMemcpyDtoD_v2":
            dst, src, n = args
            self.copies.append(n)
            ctypes.memmove(dst, src, n)
        elif name == "cuLaunchKernel":
            kernel, gx, gy, gz, threads, by, bz, shared, stream, params, extra = args
            assert stream == ffi.NULL and extra == ffi.NULL and shared == 0 and by == bz == 1
            if isinstance(kernel, cuda_gemm.GemmKernel):
                self.launches.append((kernel.name, (gx, gy, gz), threads))
                values = [ffi.cast("int64_t *", params[i])[0] for i in range(len(cuda_gemm.PARAMETERS))]
                self.interpret_gemm(kernel, values, (gx, gy, gz), threads)
                return
            assert gy == gz == 1, "an IR kernel is launched over a 1-d grid"
            blocks = gx
            chained = isinstance(kernel, ir.RowChainKernel)
            if kernel.reduction is not None or chained:
                assert threads == THREADS, "a reduction needs exactly THREADS threads"
            self.launches.append((kernel.name, blocks, threads))
            count = len(cuda_render.parameters(kernel))
            values = [ffi.cast("int64_t *", params[i])[0] for i in range(count)]
            if cuda_render.splits_rows(kernel):
                self.check_shares(kernel, values, blocks)
            (interpret_chain if chained else interpret)(kernel, values)
        elif name in ("cuCtxSynchronize", "cuStreamSynchronize"):
            pass
        else:
            raise AssertionError(f"the fake driver has no {name}")

    def check_shares(self, kernel, values, blocks):
        """A reduction whose rows blocks share gets exactly that many blocks per row, a scratch
        array for their results and the rows' counts of finished blocks (see exprc.codegen.cuda.launch)."""
        splits, shares, tickets = values[-3:]
        rows = int(np.prod(values[: kernel.ndim - kernel.reduction.naxes], dtype=np.int64))
        if splits > 1:
            acc = np.dtype("float32" if kernel.reduction.acc_dtype == "float16" else kernel.reduction.acc_dtype)
            assert blocks == rows * splits, "each row gets exactly its blocks"
            assert self.owns(shares, rows * splits * acc.itemsize), "the blocks' results fit the scratch array"
            assert self.owns(tickets, rows * 4), "a count per row"
        else:
            assert splits == 1

    def interpret_gemm(self, kernel, values, blocks, threads):
        """Compute GEMM ``kernel`` from its packed parameter ``values``, as the GPU would."""
        batch, m, n, k = values[:4]
        assert (blocks, threads) == cuda_gemm.grid(kernel, batch, m, n), "the GEMM launch shape"
        views = []
        for base, dtype, shape in (
            (4, kernel.dtype, (batch, m, k)),
            (8, kernel.dtype, (batch, k, n)),
            (12, kernel.out_dtype, (batch, m, n)),
        ):
            ptr, strides = values[base], values[base + 1 : base + 4]
            view = _view(ptr, np.dtype(dtype), shape, strides)
            if view.size:
                low = sum((s - 1) * st for s, st in zip(shape, strides) if st < 0) * view.itemsize
                high = sum((s - 1) * st for s, st in zip(shape, strides) if st > 0) * view.itemsize
                assert self.owns(ptr + low, high - low + view.itemsize), "a GEMM operand outside device memory"
            views.append(view)
        a, b, c = views
        if kernel.method == "tf32":
            a, b = _tf32(a), _tf32(b)
        if kernel.dtype == "float16":
            a, b = a.astype(np.float32), b.astype(np.float32)
        c[...] = np.matmul(a, b).astype(kernel.out_dtype)


def _tf32(x):
    """float32 values rounded to TF32 (10 bits of mantissa, to nearest, ties away from zero)."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    return ((bits + np.uint32(0x1000)) & np.uint32(0xFFFFE000)).view(np.float32)


def _view(ptr, dtype, shape, strides):
    """A NumPy array over host address ``ptr`` with element ``strides``."""
    itemsize = dtype.itemsize
    byte_strides = [s * itemsize for s in strides]
    low = sum((n - 1) * s for n, s in zip(shape, byte_strides) if s < 0 and n)
    high = sum((n - 1) * s for n, s in zip(shape, byte_strides) if s > 0 and n) + itemsize
    raw = (ctypes.c_char * (high - low)).from_address(ptr + low)
    return np.ndarray(shape, dtype, raw, -low, byte_strides)


def interpret_chain(kernel, values):
    """Compute row chain ``kernel`` (:class:`~exprc.codegen.ir.kernel.RowChainKernel`) as the GPU
    would: each reduction over the whole index space in turn, then the stores."""
    d, kept = kernel.ndim, kernel.kept
    lengths = values[:d]
    views = _views(
        kernel, values, lambda b: list(lengths[:kept]) + [1] * kernel.naxes if b.outer else lengths, flat=False
    )
    computed = {}
    axes = tuple(range(kept, d))
    with np.errstate(all="ignore"):
        for red in kernel.reductions:
            _evaluate_all([red.value], computed, views)
            value = np.broadcast_to(computed[id(red.value)], lengths).astype(red.acc_dtype)
            initial = {} if red.initial is None else {"initial": np.asarray(red.initial, red.acc_dtype)[()]}
            computed[id(red)] = _REDUCE[red.op].reduce(value, axis=axes, keepdims=True, **initial).astype(red.dtype)
        _evaluate_all([e for _, e in kernel.stores], computed, views)
        for buffer, expr in kernel.stores:
            target = views[buffer.name]
            value = np.asarray(computed[id(expr)]).astype(buffer.dtype)
            target[...] = value[(Ellipsis,) + (slice(0, 1),) * kernel.naxes] if buffer.outer and value.ndim else value


def _evaluate_all(roots, computed, views):
    """Evaluate the nodes of ``roots`` not in ``computed`` (an Acc: the value of its reduction there)."""
    for node in ir.walk(roots):
        if id(node) not in computed:
            computed[id(node)] = computed[id(node.of)] if isinstance(node, ir.Acc) else _evaluate(node, computed, views)


def _views(kernel, values, shape_of, flat):
    """Each buffer of ``kernel`` viewed through the pointer and strides its parameters give:
    of shape ``shape_of(buffer)``, or through the flat index alone where ``flat``."""
    d = kernel.ndim
    lengths = values[:d]
    pos, views = d + 1, {}
    for b in kernel.buffers:
        ptr = values[pos]
        pos += 1
        dtype = np.dtype(b.dtype)
        if not b.ndim:
            views[b.name] = _view(ptr, dtype, (), ())
            continue
        strides = values[pos : pos + d]
        pos += d
        if flat:
            views[b.name] = _view(ptr, dtype, (int(np.prod(lengths)),), (1,)).reshape(lengths)
        else:
            views[b.name] = _view(ptr, dtype, shape_of(b), strides)
    return views


def interpret(kernel, values):
    """Compute ``kernel`` as the GPU would, from its packed parameter values."""
    d = kernel.ndim
    lengths, contiguous = values[:d], values[d]
    naxes = kernel.reduction.naxes if kernel.reduction is not None else 0
    # The fast path indexes every array by the flat index; a reduction reads and writes
    # the buffers marked outer at kept indices only (one element along reduced axes).
    views = _views(
        kernel,
        values,
        lambda b: list(lengths[: d - naxes]) + [1] * naxes if b.outer else lengths,
        flat=bool(contiguous) and kernel.reduction is None,
    )
    roots = [e for _, e in kernel.stores] + ([kernel.reduction.value] if kernel.reduction else [])
    computed = {}
    with np.errstate(all="ignore"):
        if kernel.reduction is not None:
            red = kernel.reduction
            for node in ir.walk([red.value]):
                computed[id(node)] = _evaluate(node, computed, views)
            value = np.broadcast_to(computed[id(red.value)], lengths).astype(red.acc_dtype)
            axes = tuple(range(d - red.naxes, d))
            initial = {} if red.initial is None else {"initial": np.asarray(red.initial, red.acc_dtype)[()]}
            result = _REDUCE[red.op].reduce(value, axis=axes, keepdims=True, **initial)
            acc = result.astype(red.dtype)
        for node in ir.walk(roots):
            if id(node) not in computed:
                computed[id(node)] = acc if isinstance(node, ir.Acc) else _evaluate(node, computed, views)
        for buffer, expr in kernel.stores:
            target = views[buffer.name]
            value = np.asarray(computed[id(expr)]).astype(buffer.dtype)
            if kernel.reduction is not None:  # one store per kept index
                value = value[(Ellipsis,) + (slice(0, 1),) * kernel.reduction.naxes] if value.ndim else value
            target[...] = value


def _evaluate(node, computed, views):
    args = [computed[id(a)] for a in node.args]
    if isinstance(node, ir.Load):
        return views[node.buffer.name]
    if isinstance(node, ir.Const):
        return np.asarray(node.value, node.dtype)
    if isinstance(node, ir.Cast):
        return np.asarray(args[0]).astype(node.dtype)
    if isinstance(node, ir.Call):
        op = SCALAR_OPS.get(node.op) or DERIVATIVE_OPS[node.op]
        return np.asarray(op.numpy(*args)).astype(node.dtype)
    raise AssertionError(f"cannot interpret {node!r}")
