"""Rendering kernels of the IR (:mod:`exprc.codegen.ir.kernel`) as CUDA C++ for NVRTC.

Each kernel becomes one ``extern "C" __global__`` function named and commented as the C
back end's, taking the C back end's argument layout as 8-byte parameters; its scalar
formulas come from :mod:`exprc.codegen.cuda.ops`.
See docs/internals/cuda-back-end.md.

>>> from exprc.codegen.ir import kernel as ir
>>> x = ir.Buffer("x", "float64", 1); out = ir.Buffer("out", "float64", 1, output=True)
>>> k = ir.Kernel("k0_exp_x", 1, (x, out), ((out, ir.Call("exp", (ir.Load(x),), "float64", "exp(x)")),))
>>> [line.strip() for line in render_kernel(k).splitlines() if "exp(" in line]  # wide, fast and strided paths
['const double v1 = exp(x_v);  /* exp(x) */', 'const double v1 = exp(x_v);  /* exp(x) */', 'const double v1 = exp(x_v);  /* exp(x) */']
"""

import dataclasses
import re

import numpy as np

from exprc.codegen.cfamily.renderer import KernelRenderer, Writer, all_exprs, block_comment, comment, join, loop_dtype
from exprc.codegen.cuda.ops import (
    HALF_PRELUDE,
    PRELUDE,
    STORAGE_TYPES,
    VALUE_TYPES,
    call_expression,
    cast_expression,
    helpers,
    literal,
)
from exprc.codegen.ir import kernel as ir


def render_program(kernels, title=""):
    """The CUDA source of ``kernels``: the prelude, the device functions they call, then
    each kernel. Kernel names must be distinct (the program's are)."""
    found = {}
    for kernel in kernels:
        for expr in all_exprs(kernel):
            if isinstance(expr, ir.Call):
                found.update(helpers(expr.op, loop_dtype(expr)))
    head = [block_comment(title.splitlines())] if title else []
    head.append(PRELUDE)
    if any(_has_float16(k) for k in kernels):
        head.append(HALF_PRELUDE)
    return join(head + list(found.values()) + [render_kernel(k) for k in kernels])


_PLACEHOLDER = "exprc_kernel_name_"
_COMMENTS = re.compile(r"/\*.*?\*/", re.S)


def distinct(kernels):
    """``(unique, same)``: the kernels whose CUDA differs from every earlier one's (names and
    comments aside), and each kernel's name -> the name of the one in ``unique`` with its code.
    Kernels that differ only in constants (arguments, see :mod:`exprc.codegen.ir.constants`)
    are compiled and loaded once.

    >>> from exprc.codegen.ir import kernel as ir
    >>> x = ir.Buffer("x", "float64", 1); out = ir.Buffer("out", "float64", 1, output=True)
    >>> k0, k1 = (ir.Kernel(n, 1, (x, out), ((out, ir.Call("exp", (ir.Load(x),), "float64")),)) for n in ("k0", "k1"))
    >>> unique, same = distinct([k0, k1])
    >>> [k.name for k in unique], same
    (['k0'], {'k0': 'k0', 'k1': 'k0'})
    """
    first, unique, same = {}, [], {}
    for kernel in kernels:
        key = _COMMENTS.sub("", render_kernel(kernel, _PLACEHOLDER))
        name = first.setdefault(key, kernel.name)
        if name == kernel.name:
            unique.append(kernel)
        same[kernel.name] = name
    return unique, same


def _has_float16(kernel):
    reductions = getattr(kernel, "reductions", ()) or ([kernel.reduction] if kernel.reduction else [])
    return (
        any(b.dtype == "float16" for b in kernel.buffers)
        or any(e.dtype == "float16" for e in all_exprs(kernel))
        or any(r.acc_dtype == "float16" for r in reductions)
    )


def render_kernel(kernel, name=None):
    """The ``__global__`` function computing ``kernel`` (named ``name``, default the kernel's)."""
    if isinstance(kernel, ir.RowChainKernel):
        return _CudaChainRenderer(kernel, name).render()
    return _CudaKernelRenderer(kernel, name).render()


def parameters(kernel):
    """The kernel's parameter declarations, in the order of the module docstring.

    >>> from exprc.codegen.ir import kernel as ir
    >>> parameters(ir.Kernel("k", 1, (ir.Buffer("x", "float16", 1), ir.Buffer("s", "int32", 0, output=True)), ()))
    ['const int64_t n0', 'const int64_t contiguous', 'const exprc_half *__restrict__ x', 'const int64_t x_s0', 'int32_t *__restrict__ s']
    """
    params = [f"const int64_t n{a}" for a in range(kernel.ndim)] + ["const int64_t contiguous"]
    for b in kernel.buffers:
        const = "" if b.output else "const "
        params.append(f"{const}{STORAGE_TYPES[b.dtype]} *__restrict__ {b.name}")
        if b.ndim:
            params += [f"const int64_t {b.name}_s{a}" for a in range(kernel.ndim)]
    if splits_rows(kernel):
        params += [
            "const int64_t exprc_splits",
            f"{VALUE_TYPES[kernel.reduction.acc_dtype]} *__restrict__ exprc_shares",
            "unsigned int *__restrict__ exprc_tickets",
        ]
    return params


def splits_rows(kernel):
    """Whether ``kernel`` is a reduction whose rows may be shared by several blocks (see
    :meth:`_CudaKernelRenderer.reduction`); its last three parameters then say how."""
    return getattr(kernel, "reduction", None) is not None


def vector_width(kernel):
    """How many consecutive elements the fast path of elementwise ``kernel`` moves at a time:
    as many as fit 16 bytes of its widest array (8 at most), 1 for a reduction or chain.

    >>> from exprc.codegen.ir import kernel as ir
    >>> x = ir.Buffer("x", "float32", 1); out = ir.Buffer("out", "float64", 1, output=True)
    >>> vector_width(ir.Kernel("k", 1, (x, out), ())), vector_width(ir.Kernel("k", 1, (x,), ()))
    (2, 4)
    """
    if isinstance(kernel, ir.RowChainKernel) or kernel.reduction is not None or kernel.ndim == 0:
        return 1
    widest = max((_itemsize(b) for b in kernel.buffers if b.ndim), default=16)
    return max(1, min(8, 16 // widest))


def _itemsize(buffer):
    return np.dtype(buffer.dtype).itemsize


class _CudaKernelRenderer(KernelRenderer):
    """The C renderer's naming, levels, comments and indexing, with CUDA's loops."""

    wide = False  # whether statements are being written for the wide loop

    # --- statements -------------------------------------------------------------------
    def statement(self, expr, index):
        vtype = VALUE_TYPES[expr.dtype]
        if isinstance(expr, ir.Const):
            rhs = literal(expr.value, expr.dtype)
        elif isinstance(expr, ir.Load):
            b = expr.buffer
            rhs = f"{self.array(b)}[{index(b) if b.ndim else '0'}]"
            if b.dtype == "float16":
                rhs = f"exprc_half_to_float({rhs})"
        elif isinstance(expr, ir.Cast):
            rhs = cast_expression(self.name(expr.arg), expr.arg.dtype, expr.dtype)
        elif isinstance(expr, ir.Acc):
            rhs = cast_expression("acc", self.red.acc_dtype, expr.dtype) if self.red.acc_dtype != expr.dtype else "acc"
        else:
            rhs = call_expression(expr.op, loop_dtype(expr), expr.dtype, [self.name(a) for a in expr.args])
        return f"const {vtype} {self.name(expr)} = {rhs};{comment(expr.note)}"

    def store_lines(self, w, index, stores=None):
        for buffer, expr in self.k.stores if stores is None else stores:
            value = self.name(expr)
            if buffer.dtype == "float16":
                value = f"exprc_float_to_half({value})"  # exact: the value is a float16 already
            w.line(f"{self.array(buffer)}[{index(buffer)}] = {value};")

    def array(self, buffer):
        """How the statements name ``buffer``'s elements: its pointer, or in the wide loop
        the elements of its vector (see :meth:`wide_loop`)."""
        return f"{buffer.name}_w.v" if self.wide else buffer.name

    # --- the function -----------------------------------------------------------------
    def render(self):
        w = Writer()
        w.lines.extend(self.header())
        memo = {}
        exprs = all_exprs(self.k)
        by_level = {
            lv: [e for e in exprs if self.level(e, memo) == lv and not isinstance(e, ir.Acc)] for lv in range(4)
        }
        acc = [e for e in exprs if isinstance(e, ir.Acc)]
        self.open_function(w)
        self.invariants(w, by_level[0])
        if self.red is None:
            self.elementwise(w, by_level[1] + by_level[2])
        else:
            self.reduction(w, by_level, acc)
        w.close()
        return "\n".join(w.lines)

    def open_function(self, w):
        """The ``__global__`` function's declaration, one parameter a line, and its opening brace."""
        w.line(f'extern "C" __global__ void __launch_bounds__(EXPRC_THREADS) {self.fn}(')
        params = parameters(self.k)
        for i, param in enumerate(params):
            w.line(INDENT2 + param + ("," if i < len(params) - 1 else ")"))
        w.line("{")
        w.depth += 1

    def split(self, w, flat, axes, rest):
        """Declare indices ``i{a}`` for ``axes`` (C order) of flat index ``flat``."""
        axes = list(axes)
        if len(axes) == 1:
            w.line(f"const int64_t i{axes[0]} = {flat};")
            return
        w.line(f"int64_t {rest} = {flat};")
        for a in reversed(axes[1:]):
            w.line(f"const int64_t i{a} = {rest} % n{a};")
            w.line(f"{rest} /= n{a};")
        w.line(f"const int64_t i{axes[0]} = {rest};")

    def elementwise(self, w, body):
        if self.d == 0:
            w.open("if (blockIdx.x == 0 && threadIdx.x == 0)")
            self.emit(w, body, lambda b: "0")
            self.store_lines(w, lambda b: "0")
            w.close()
            return
        w.line("const int64_t size = " + " * ".join(f"n{a}" for a in range(self.d)) + ";")
        w.line("const int64_t exprc_thread = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;")
        w.line("const int64_t exprc_step = (int64_t)gridDim.x * blockDim.x;")
        loop = "for (int64_t i = exprc_thread; i < size; i += exprc_step)"
        w.open("if (contiguous)")
        w.line("/* fast path: every array is contiguous in index order */")
        width = vector_width(self.k)
        if width > 1:
            w.line("int64_t exprc_first = 0;  /* the first element the loop of single elements computes */")
            self.wide_loop(w, body, width)
            loop = loop.replace("i = exprc_thread", "i = exprc_first + exprc_thread")
        w.line("#pragma unroll 1")
        w.open(loop)
        self.emit(w, body, lambda b: "i")
        self.store_lines(w, lambda b: "i")
        w.close()
        w.close("} else {")
        w.depth += 1
        w.line("/* strided path: any strides, 0 where an axis broadcasts */")
        w.line("#pragma unroll 1")
        w.open(loop.replace("exprc_first + ", ""))
        self.split(w, "i", range(self.d), "exprc_rest")
        index = self.strided_index(range(self.d))
        self.emit(w, body, index)
        self.store_lines(w, index)
        w.close()
        w.close()

    def wide_loop(self, w, body, width):
        """The fast path's loop over groups of ``width`` consecutive elements, each array's
        group moved by one load or store, when every array's address allows it; the groups
        end at ``exprc_first``, where the loop of single elements takes over."""
        arrays = [b for b in self.k.buffers if b.ndim]
        vector = {b.name: f"exprc_vec<{STORAGE_TYPES[b.dtype]}, {width}>" for b in arrays}
        aligned = " && ".join(f"(uint64_t){b.name} % {width * _itemsize(b)} == 0" for b in arrays)
        w.open(f"if ({aligned})")
        w.line(f"/* wide path: {width} elements at a time, each array's read or written by one instruction */")
        w.line(f"const int64_t exprc_groups = size / {width};")
        w.line("#pragma unroll 1")
        w.open("for (int64_t exprc_group = exprc_thread; exprc_group < exprc_groups; exprc_group += exprc_step)")
        for b in arrays:
            if not b.output:
                w.line(f"const {vector[b.name]} {b.name}_w = ((const {vector[b.name]} *){b.name})[exprc_group];")
            else:
                w.line(f"{vector[b.name]} {b.name}_w;")
        w.line("#pragma unroll")
        w.open(f"for (int exprc_lane = 0; exprc_lane < {width}; exprc_lane++)")
        self.wide = True
        self.emit(w, body, lambda b: "exprc_lane")
        self.store_lines(w, lambda b: "exprc_lane")
        self.wide = False
        w.close()
        for b in arrays:
            if b.output:
                w.line(f"(({vector[b.name]} *){b.name})[exprc_group] = {b.name}_w;")
        w.close()
        w.line(f"exprc_first = exprc_groups * {width};")
        w.close()

    def reduction(self, w, by_level, acc):
        red, d, kept = self.red, self.d, self.kept
        acc_type = VALUE_TYPES[red.acc_dtype]
        index = self.open_rows(w, [(acc_type, "exprc_partial")], shared_rows=True)
        if by_level[1]:
            self.emit(w, by_level[1], index)
        w.line(f"{acc_type} acc = {self.identity()};{comment('accumulates ' + red.note)}")
        w.line("/* this thread's share of the block's: elements threadIdx.x, + EXPRC_THREADS, ... */")
        w.line("#pragma unroll 1")
        w.open(
            "for (int64_t exprc_j = exprc_share * EXPRC_THREADS + threadIdx.x; exprc_j < exprc_count; "
            "exprc_j += EXPRC_THREADS * exprc_splits)"
        )
        self.split(w, "exprc_j", range(kept, d), "exprc_rest")
        self.emit(w, by_level[2], index)
        w.line(
            self.combine(
                "acc",
                cast_expression(self.name(red.value), red.value.dtype, red.acc_dtype)
                if red.value.dtype != red.acc_dtype
                else self.name(red.value),
            )
        )
        w.close()
        self.tree(w, "acc", "exprc_partial")
        w.open("if (threadIdx.x == 0)")
        w.open("if (exprc_splits > 1)")
        w.line("/* the row's blocks each leave their result; the last one to finish combines them, in")
        w.line("   order (the count of finished blocks is the only atomic: the result stays reproducible) */")
        w.line("exprc_shares[exprc_row * exprc_splits + exprc_share] = acc;")
        w.line("__threadfence();  /* the result is visible to every block before the count says so */")
        w.line("if (atomicAdd(&exprc_tickets[exprc_row], 1u) + 1 < (unsigned int)exprc_splits) continue;")
        w.line("exprc_tickets[exprc_row] = 0;  /* ready for the next launch */")
        w.line(f"volatile {acc_type} *exprc_results = exprc_shares + exprc_row * exprc_splits;")
        w.line("acc = exprc_results[0];")
        w.line("#pragma unroll 1")
        w.open("for (int64_t exprc_k = 1; exprc_k < exprc_splits; exprc_k++)")
        w.line(f"const {acc_type} exprc_other = exprc_results[exprc_k];")
        w.line(self.combine("acc", "exprc_other"))
        w.close()
        w.close()
        if red.initial is not None:
            w.line("/* NumPy's initial= value takes part in the reduction */")
            w.line(self.combine("acc", literal(red.initial, red.acc_dtype)))
        self.emit(w, acc + by_level[3], index)
        self.store_lines(w, index)
        w.close()
        w.close()

    def open_rows(self, w, partials, shared_rows=False):
        """Open the block's loop over rows of the kept axes, declaring the shared arrays
        ``partials`` (``(type, name)`` pairs) first; returns the strided index. With
        ``shared_rows``, ``exprc_splits`` blocks share each row (see :meth:`reduction`)."""
        kept, d = self.kept, self.d
        rows = " * ".join(f"n{a}" for a in range(kept)) or "1"
        count = " * ".join(f"n{a}" for a in range(kept, d))
        each = "exprc_splits blocks each (consecutive blocks)" if shared_rows else "one block each"
        w.line(f"const int64_t exprc_rows = {rows};  /* rows of the kept axes: {each} */")
        w.line(f"const int64_t exprc_count = {count};  /* elements reduced per row */")
        for ctype, name in partials:
            w.line(f"__shared__ {ctype} {name}[EXPRC_THREADS / 32];  /* one slot per warp */")
        first, step = "blockIdx.x", "gridDim.x"
        if shared_rows:
            w.line("const int64_t exprc_share = blockIdx.x % exprc_splits;  /* this block's share of its row */")
            first, step = "blockIdx.x / exprc_splits", "gridDim.x / exprc_splits"
        w.line("#pragma unroll 1")
        w.open(f"for (int64_t exprc_row = {first}; exprc_row < exprc_rows; exprc_row += {step})")
        if kept:
            self.split(w, "exprc_row", range(kept), "exprc_rest_row")
        return self.strided_index(range(d))

    def tree(self, w, acc, partial, everyone=False):
        """Combine every thread's ``acc`` in a fixed order, through the shared array
        ``partial`` (one slot per warp): thread 0's ``acc`` then holds the block's result,
        and with ``everyone`` every thread's does. Ends with a barrier, after which
        ``partial`` may be written again."""
        ctype = VALUE_TYPES[self.red.acc_dtype]
        w.line("/* the threads' results combined in a fixed order (reproducible, no atomics): in each")
        w.line("   warp by shuffles at distance 16, 8, 4, 2, 1; then each warp's result */")
        self.shuffle_down(w, acc, ctype, "16")
        w.line(f"if (threadIdx.x % 32 == 0) {partial}[threadIdx.x / 32] = {acc};")
        w.line("__syncthreads();")
        w.line("/* the warps' results, combined the same way by every warp */")
        w.line(f"{acc} = {partial}[threadIdx.x % (EXPRC_THREADS / 32)];")
        self.shuffle_down(w, acc, ctype, "EXPRC_THREADS / 64")
        if everyone:
            w.line(f"{acc} = exprc_shfl({acc}, 0);  /* lane 0's, the block's result, in every lane */")
        w.line(f"__syncthreads();  /* every warp has read {partial} before it is written again */")

    def shuffle_down(self, w, acc, ctype, first):
        """Fold into lane l's ``acc`` lane l + d's, for d = ``first``, ..., 2, 1: lane 0 then
        holds the combination of lanes 0 .. 2 * first - 1."""
        w.line("#pragma unroll")
        w.open(f"for (int exprc_distance = {first}; exprc_distance > 0; exprc_distance /= 2)")
        w.line(f"const {ctype} exprc_other = exprc_shfl_down({acc}, exprc_distance);")
        w.line(self.combine(acc, "exprc_other"))
        w.close()

    def identity(self):
        """The reduction's identity: the C renderer's initial value, without NumPy's
        ``initial`` (which thread 0 adds once, not every thread)."""
        return self.initial(dataclasses.replace(self.red, initial=None))

    def combine(self, acc, value):
        """The statement folding ``value`` (of the accumulator's type) into ``acc``."""
        op = self.red.op
        if op in ("max", "min"):
            cmp = ">" if op == "max" else "<"
            # A NaN wins, and stays: NaN compares false, so nothing replaces it.
            nan = f" || isnan({value})" if self.red.acc_dtype in ("float16", "float32", "float64") else ""
            return f"{acc} = ({value} {cmp} {acc}{nan}) ? {value} : {acc};"
        return f"{acc} {_OPERATORS[op]}= {value};"


_OPERATORS = {"add": "+", "mul": "*", "and": "&", "or": "|"}
INDENT2 = "        "


class _CudaChainRenderer(_CudaKernelRenderer):
    """A :class:`~exprc.codegen.ir.kernel.RowChainKernel`: one block per row, as for a reduction;
    per row, each reduction in turn (a loop over the row and the block's tree, whose result
    every thread then reads), then the per-row stores (thread 0) and a last loop over the
    row for the elementwise ones. Values are computed where they are first needed: per
    row, once the reductions they use are done, or per element inside each loop."""

    def __init__(self, kernel, name=None):
        super().__init__(kernel, name)
        self.kept = kernel.kept
        self.stage = {id(r): k for k, r in enumerate(kernel.reductions)}

    def name(self, expr):
        if isinstance(expr, ir.Acc) and id(expr) not in self.names:
            self.names[id(expr)] = f"result{self.stage[id(expr.of)]}"
        return super().name(expr)

    def statement(self, expr, index):
        if isinstance(expr, ir.Acc):
            red = expr.of
            acc = f"acc{self.stage[id(red)]}"
            rhs = cast_expression(acc, red.acc_dtype, expr.dtype) if red.acc_dtype != expr.dtype else acc
            return f"const {VALUE_TYPES[expr.dtype]} {self.name(expr)} = {rhs};{comment(expr.note)}"
        return super().statement(expr, index)

    def header(self):
        lines = super().header()
        reductions = [
            f" * reduction {k}: {r.op} over the last {r.naxes} axes, accumulating in {r.acc_dtype}"
            for k, r in enumerate(self.k.reductions)
        ]
        return lines[:-1] + reductions + lines[-1:] if len(lines) > 1 else lines

    def per_element(self, expr, memo):
        """Whether ``expr`` reads a buffer at every index (not once per row)."""
        if id(expr) not in memo:
            if isinstance(expr, ir.Load):
                memo[id(expr)] = bool(expr.buffer.ndim) and not expr.buffer.outer
            else:
                memo[id(expr)] = any(self.per_element(a, memo) for a in expr.args)
        return memo[id(expr)]

    def emit_needed(self, w, roots, done, element, index):
        """Declare the nodes of ``roots`` not in ``done`` that are per element (or per row)."""
        memo = self.memo
        todo = [e for e in ir.walk(roots) if id(e) not in done and self.per_element(e, memo) == element]
        done.update(id(e) for e in todo)
        self.emit(w, todo, index)

    def render(self):
        k, w = self.k, Writer()
        self.memo = {}
        w.lines.extend(self.header())
        self.open_function(w)
        invariant = [e for e in all_exprs(k) if self.level(e, {}) == 0 and not isinstance(e, ir.Acc)]
        self.invariants(w, invariant)
        index = self.open_rows(
            w, [(VALUE_TYPES[r.acc_dtype], f"exprc_partial{s_}") for s_, r in enumerate(k.reductions)]
        )
        done = {id(e) for e in invariant}
        for s_, red in enumerate(k.reductions):
            self.red = red
            w.line(
                f"/* reduction {s_}: {red.note} */".replace("*/ */", "* / */") if red.note else f"/* reduction {s_} */"
            )
            self.emit_needed(w, [red.value], done, False, index)
            w.line(f"{VALUE_TYPES[red.acc_dtype]} acc{s_} = {self.identity()};")
            self.row_loop(w, [red.value], index, lambda: w.line(self.combine(f"acc{s_}", self.accumulated(red))))
            self.tree(w, f"acc{s_}", f"exprc_partial{s_}", everyone=True)
            if red.initial is not None:
                w.line("/* NumPy's initial= value takes part in the reduction */")
                w.line(self.combine(f"acc{s_}", literal(red.initial, red.acc_dtype)))
        row_stores = [(b, e) for b, e in k.stores if b.outer]
        full_stores = [(b, e) for b, e in k.stores if not b.outer]
        self.emit_needed(w, [e for _, e in k.stores], done, False, index)
        if row_stores:
            w.open("if (threadIdx.x == 0)")
            self.store_lines(w, index, row_stores)
            w.close()
        if full_stores:
            w.line("/* the elementwise results, over the row again */")
            self.row_loop(w, [e for _, e in full_stores], index, lambda: self.store_lines(w, index, full_stores))
        w.close()
        w.close()
        return "\n".join(w.lines)

    def accumulated(self, red):
        value = self.name(red.value)
        return cast_expression(value, red.value.dtype, red.acc_dtype) if red.value.dtype != red.acc_dtype else value

    def row_loop(self, w, roots, index, finish):
        """A loop of the block's threads over the elements of the row, computing ``roots``."""
        w.line("#pragma unroll 1")
        w.open("for (int64_t exprc_j = threadIdx.x; exprc_j < exprc_count; exprc_j += EXPRC_THREADS)")
        self.split(w, "exprc_j", range(self.kept, self.d), "exprc_rest")
        self.emit_needed(w, roots, set(), True, index)
        finish()
        w.close()
