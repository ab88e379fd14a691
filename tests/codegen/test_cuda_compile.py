"""Every kernel the CUDA renderer emits for the graphs of the op tests compiles,
through NVRTC, to a CUBIN for sm_80 and for sm_90, and so do the launcher's own (copy kernels).

The graphs are those of ``tests/ops``: each elementwise op of ``test_elemwise``
for every dtype the C back end computes with (where NumPy accepts it), on
matrices, broadcasting shapes and 0-d inputs; each reduction of
``test_reduction`` over various axes, with keepdims, and logsumexp, softmax and
log_softmax; a few gradients. Besides them, every scalar operation and every
cast is rendered for every dtype the CUDA back end has (float16 included), and
float16 reductions. The kernels are compiled as a few large NVRTC programs (one
per CPU, at the same time), which keeps the test to seconds; each CUBIN must hold
every kernel's symbol, and NVRTC must not warn.

Nothing here needs a GPU; without NVRTC (``pip install exprc[cuda]``) the tests skip.
"""

import dataclasses
import os
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import exprc as ex
from exprc.codegen.c.render import _COMMENTS
from exprc.codegen.cfamily.formulas import C_DTYPES, C_OPS
from exprc.codegen.cfamily.renderer import all_exprs, loop_dtype
from exprc.codegen.cuda import nvrtc
from exprc.codegen.cuda import render as cuda_render
from exprc.codegen.cuda.copy import copy_kernels
from exprc.codegen.cuda.ops import CUDA_DTYPES, has_cuda
from exprc.codegen.cuda.target import TARGET
from exprc.codegen.ir import kernel as ir
from exprc.codegen.ir import row_chain
from exprc.codegen.ir.kernel import REDUCTION_OPS
from exprc.codegen.ir.lower import lower
from exprc.ops.scalar import DERIVATIVE_OPS, SCALAR_OPS
from tests.ops.test_elemwise import CASES, numpy_accepts
from tests.ops.test_reduction import AXES_3D, REDUCTIONS, STABLE, STABLE_AXES

pytestmark = pytest.mark.skipif(nvrtc.unavailable_reason() is not None, reason="NVRTC is not installed")

ARCHS = ("sm_80", "sm_90")

#: How the inputs of an elementwise case are declared: per input, its static shape.
SHAPES = {
    "matrix": [(None, None)],
    "broadcast": [(None, 1), (1, None), (None,)],
    "rank3": [(None, None, None), (None, None), (None,)],
    "0d": [()],
}
#: The dtypes tried on 3-d and 0-d inputs too (one per kind: the code differs by rank, not by type).
OTHER_RANK_DTYPES = ("float32", "int64", "bool")


# --- the kernels ------------------------------------------------------------------------


def _kernels(inputs, outputs):
    return lower(inputs, outputs, TARGET).kernels


def elementwise_kernels():
    """The kernels of every elementwise case, C dtype and input shape; and the set of
    ``(op, loop dtype)`` they call."""
    kernels = []
    for case in CASES.values():
        for dtype in C_DTYPES:
            dtypes = case.input_dtypes(dtype)
            if not numpy_accepts(case, dtypes):
                continue
            for shape_name, shapes in SHAPES.items():
                if shape_name in ("rank3", "0d") and dtype not in OTHER_RANK_DTYPES:
                    continue
                xs = [ex.tensor(f"x{i}", dtype=d, shape=shapes[min(i, len(shapes) - 1)]) for i, d in enumerate(dtypes)]
                kernels += _kernels(xs, [case.build(*xs)])
    # Mixed dtypes and Python scalars: the loop dtypes NumPy's promotion picks, casts on the way.
    for left, right in [("int32", "float32"), ("bool", "int64"), ("uint8", "int8"), ("int16", "float64")]:
        a, b = ex.vector("a", dtype=left), ex.vector("b", dtype=right)
        kernels += _kernels([a, b], [a * b + 1, ex.where(a > 0, a, b), (a // 2) - b**2])
    x = ex.fmatrix("x")
    kernels += _kernels([x], [(x + 2.5) * 3 - True, ex.maximum(x, 0) ** 2 % 1.5])
    # Floats to every integer type, NumPy's x86 results spelled out (c_ops.cast_expression).
    for source in ("float16", "float32", "float64"):
        f = ex.vector("f", dtype=source)
        kernels += _kernels(
            [f], [f.astype(t) for t in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")]
        )
    return kernels


def reduction_kernels():
    """The kernels of the reductions of the op tests over 3-d inputs and various axes."""
    kernels = []
    for dtype in ("float32", "float64", "int32", "int64", "bool", "uint16"):
        x = ex.tensor("x", dtype=dtype, shape=(None, 4, 5))
        for name, (build, _) in REDUCTIONS.items():
            for axis, keepdims in AXES_3D:
                if name in ("argmax", "argmin") and isinstance(axis, tuple):
                    continue
                kernels += _kernels([x], [build(x, axis=axis, keepdims=keepdims)])
        if dtype in ("float32", "float64", "int32", "int64"):
            for name, (build, _) in STABLE.items():
                for axis in STABLE_AXES:
                    if name in ("softmax", "log_softmax") and axis is None:
                        axis = (0, 1, 2)
                    kernels += _kernels([x], [build(x, axis)])
    # Gradients: reductions and broadcasting back, as training computes them.
    w, v = ex.matrix("w"), ex.vector("v")
    cost = ex.logsumexp(w * v, axis=1).sum() + (ex.softmax(w, axis=0) ** 2).mean() + ex.sigmoid(w).prod()
    kernels += _kernels([w, v], ex.grad(cost, [w, v]))
    x = ex.vector("x")
    kernels += _kernels([x], [ex.gammaln(x).sum(), ex.grad(ex.gammaln(x).sum(), x)])
    return kernels


def scalar_op_kernels():
    """What lowering does not produce (the C back end leaves float16 and digamma to NumPy)
    but the renderer must handle: one kernel per scalar op for float16 and per dtype of
    digamma, one per cast between CUDA dtypes, and float16 reductions."""
    kernels, n = [], 0
    for op_name, op in {**SCALAR_OPS, **DERIVATIVE_OPS}.items():
        for dtype in CUDA_DTYPES:
            if not has_cuda(op_name, dtype) or not (dtype == "float16" or op_name in DERIVATIVE_OPS):
                continue
            ins = [ir.Buffer(f"a{i}", "bool" if op_name == "where" and i == 0 else dtype, 2) for i in range(op.nin)]
            out_dtype = _result_dtype(op, dtype)
            out = ir.Buffer("out", out_dtype, 2, output=True)
            call = ir.Call(op_name, tuple(ir.Load(b) for b in ins), out_dtype, f"{op_name}({dtype})")
            kernels.append(ir.Kernel(f"k{n}_{op_name}_{dtype}", 2, (*ins, out), ((out, call),)))
            n += 1
    for source in CUDA_DTYPES:
        for target in CUDA_DTYPES:
            if source != target:
                a, out = ir.Buffer("a", source, 1), ir.Buffer("out", target, 1, output=True)
                kernels.append(
                    ir.Kernel(
                        f"k{n}_cast_{source}_{target}", 1, (a, out), ((out, ir.Cast(ir.Load(a), target, "a.astype()")),)
                    )
                )
                n += 1
    for op_name in ("add", "mul", "max", "min"):
        acc_dtype = "float64" if op_name == "add" else "float16"
        a, out = ir.Buffer("a", "float16", 2), ir.Buffer("out", "float16", 2, output=True, outer=True)
        value = ir.Call("exp", (ir.Load(a),), "float16", "exp(a)")
        red = ir.Reduction(
            op_name, value, 1, "float16", acc_dtype, f"{op_name} of exp(a)", initial=0.5 if op_name == "max" else None
        )
        result = ir.Call("sqrt", (ir.Acc("float16"),), "float16", "sqrt(...)")
        kernels.append(ir.Kernel(f"k{n}_{op_name}_half", 2, (a, out), ((out, result),), reduction=red))
        n += 1
    return kernels


def _result_dtype(op, dtype):
    """The result dtype of ``op`` on values of ``dtype``, as NumPy's loop gives it."""
    if op.name in ("sigmoid", "softplus", "erf", "erfc", "gammaln", "digamma", "where", "clip"):
        return dtype
    with np.errstate(all="ignore"):
        result = np.asarray(op.numpy(*[np.ones(1, dtype)] * op.nin))
    return result.dtype.name


# --- compiling them ----------------------------------------------------------------------


def _unique_names(kernels, seen):
    """The kernels, each named apart (programs of different graphs reuse ``k0_...``), less
    those whose code (comments aside) is that of a kernel in ``seen`` (which gains theirs):
    many graphs give the same loops, and compiling each once keeps the test short."""
    named = []
    for kernel in kernels:
        text = _COMMENTS.sub("", cuda_render.render_kernel(kernel, "exprc_same_name"))
        if text in seen:
            continue
        seen.add(text)
        named.append(dataclasses.replace(kernel, name=f"{kernel.name}_{len(seen)}"))
    return named


def chain_kernels():
    """Row chains (exprc.codegen.ir.row_chain): softmax-like and layer-norm-like runs, every float dtype."""
    found = []
    for dtype in ("float16", "float32", "float64"):
        x, g = ex.matrix("x", dtype=dtype), ex.vector("g", dtype=dtype)
        e = ex.exp(x - x.max(axis=1, keepdims=True))
        mean = x.mean(axis=1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=1, keepdims=True)
        outputs = [
            e / e.sum(axis=1, keepdims=True),
            ex.log(e.sum(axis=1, keepdims=True)),
            (x - mean) / ex.sqrt(var + 1e-5) * g,
        ]
        found += [
            s.kernel
            for s in row_chain.chain(lower([x, g], outputs, TARGET)).steps
            if isinstance(s, row_chain.RowChainStep)
        ]
    t = ex.tensor("t", shape=(None, None, None))
    found += [
        s.kernel
        for s in row_chain.chain(
            lower([t], [t - t.max(axis=(1, 2), keepdims=True).sum(axis=(1, 2), keepdims=True)], TARGET)
        ).steps
        if isinstance(s, row_chain.RowChainStep)
    ]
    assert len(found) >= 5, [k.name for k in found]
    return found


def launcher_kernels():
    """The kernels the launcher adds to those of programs: C-contiguous copies of strided arrays."""
    return copy_kernels()


GROUPS = {
    "elementwise": elementwise_kernels,
    "reduction": reduction_kernels,
    "scalar": scalar_op_kernels,
    "chain": chain_kernels,
    "launcher": launcher_kernels,
}


@pytest.fixture(scope="module")
def all_kernels():
    """Per group, every kernel rendered."""
    return {group: make() for group, make in GROUPS.items()}


@pytest.fixture(scope="module")
def kernels(all_kernels):
    """Per group, the kernels to compile: each code once."""
    seen = set()
    return {group: _unique_names(found, seen) for group, found in all_kernels.items()}


def _compile(kernels, arch):
    """Compile ``kernels`` as one program per CPU (at the same time: cffi lets go of the
    GIL during NVRTC's calls); returns ``[(kernels, cubin, log)]``."""
    parts = max(1, min(len(os.sched_getaffinity(0)), 8))
    chunks = [kernels[i::parts] for i in range(parts)]

    def one(chunk):
        source = cuda_render.render_program(chunk, f"{len(chunk)} kernels of the op tests")
        cubin, log = nvrtc.compile_with_log(source, "op_tests.cu", arch)
        return chunk, cubin, log

    with ThreadPoolExecutor(parts) as pool:
        return list(pool.map(one, chunks))


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("group", list(GROUPS))
def test_every_kernel_compiles_to_cubin(kernels, group, arch):
    for chunk, cubin, log in _compile(kernels[group], arch):
        assert cubin[:4] == b"\x7fELF", "not a CUBIN (an ELF file)"
        assert _sm_of(cubin) == int(arch[3:]), f"machine code for sm_{_sm_of(cubin)}, not {arch}"
        assert "warning" not in log, log
        missing = [k.name for k in chunk if k.name.encode() + b"\0" not in cubin]
        assert not missing, f"kernels missing from the {arch} CUBIN: {missing[:5]}"


def _sm_of(cubin):
    """The architecture a CUBIN holds code for: CUDA's ELF files keep it in bits 8-15 of
    the header's e_flags (offset 48 of a 64-bit ELF header)."""
    return (int.from_bytes(cubin[48:52], "little") >> 8) & 0xFF


def test_the_kernels_cover_every_op_dtype_and_reduction(all_kernels, kernels):
    """The graphs above are not vacuous: they reach every scalar op the C back end has, for
    each dtype class it has, every reduction op, reductions over 1, 2 and 3 axes and
    reductions keeping 0, 1 and 2 axes."""
    calls = {
        (e.op, loop_dtype(e))
        for k in all_kernels["elementwise"] + all_kernels["reduction"]
        for e in all_exprs(k)
        if isinstance(e, ir.Call)
    }
    kinds = {(op, np.dtype(dtype).kind) for op, dtype in calls}
    assert {(op, kind) for op, forms in C_OPS.items() for kind in forms} <= kinds
    assert {dtype for _, dtype in calls} == set(C_DTYPES)
    reducing = [k for k in kernels["reduction"] if k.reduction is not None]
    assert {k.reduction.op for k in reducing} == set(REDUCTION_OPS)
    assert {k.reduction.naxes for k in reducing} >= {1, 2, 3}
    assert {k.ndim - k.reduction.naxes for k in reducing} >= {0, 1, 2}
    assert any(k.reduction.initial is not None for k in reducing)  # max/min with initial=
    assert any(k.ndim == 0 for k in kernels["elementwise"])
    assert sum(map(len, kernels.values())) > 1000
    half_ops = {
        e.op
        for k in all_kernels["scalar"]
        for e in all_exprs(k)
        if isinstance(e, ir.Call) and loop_dtype(e) == "float16"
    }
    assert half_ops == {op for op in {**SCALAR_OPS, **DERIVATIVE_OPS} if has_cuda(op, "float16")}
    assert len(half_ops) > 50


def test_reductions_are_deterministic_trees():
    """The threads of a block combine in a fixed order, and so do the blocks sharing a row:
    the one atomic counts the finished blocks, it adds no values."""
    source = cuda_render.render_program(_unique_names(reduction_kernels()[:40], set()))
    atomics = re.findall(r"\batomic\w*\s*\([^;]*", source)
    assert atomics and set(atomics) == {
        "atomicAdd(&exprc_tickets[exprc_row], 1u) + 1 < (unsigned int)exprc_splits) continue"
    }
    assert source.count("__syncthreads();") >= 2 * source.count("__shared__")


# --- NVRTC itself ---------------------------------------------------------------------------


def test_nvrtc_supports_both_architectures():
    assert nvrtc.nvrtc_version() >= (11, 0)
    assert set(ARCHS) <= set(nvrtc.supported_archs())


def test_a_broken_source_raises_with_the_log_and_the_saved_source(tmp_path):
    source = 'extern "C" __global__ void broken(float *x) {\n    x[0] = not_declared + 1;\n}\n'
    with pytest.raises(nvrtc.NvrtcError) as info:
        nvrtc.compile_cubin(source, "broken.cu", "sm_80")
    err = info.value
    assert err.result == "NVRTC_ERROR_COMPILATION"
    assert re.search(r'broken\.cu\(2\): error: identifier "not_declared" is undefined', err.log)
    assert err.log.strip() in str(err) and err.source_path in str(err)
    with open(err.source_path) as f:
        assert f.read() == source
    os.unlink(err.source_path)
    kept = tmp_path / "kept.cu"
    with pytest.raises(nvrtc.NvrtcError) as info:
        nvrtc.compile_cubin(source, "broken.cu", "sm_90", source_path=str(kept))
    assert info.value.source_path == str(kept) and str(kept) in str(info.value)


def test_only_an_exact_architecture_is_accepted():
    for arch in ("compute_80", "sm80", "80", "sm_80 --use_fast_math", None):
        with pytest.raises(ValueError, match="one GPU architecture"):
            nvrtc.compile_cubin('extern "C" __global__ void k() {}', "k.cu", arch)


def test_missing_nvrtc_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setenv(nvrtc.ENV_LIBRARY, str(tmp_path / "libnvrtc.so.99"))
    nvrtc.reset()
    try:
        reason = nvrtc.unavailable_reason()
        assert "pip install exprc[cuda]" in reason and "libnvrtc.so.99" in reason
        with pytest.raises(nvrtc.NvrtcUnavailable, match=re.escape("pip install exprc[cuda]")):
            nvrtc.nvrtc_version()
    finally:
        monkeypatch.delenv(nvrtc.ENV_LIBRARY)
        nvrtc.reset()
    assert nvrtc.unavailable_reason() is None


def test_the_library_is_found_in_both_wheel_layouts(monkeypatch, tmp_path):
    monkeypatch.delenv(nvrtc.ENV_LIBRARY, raising=False)
    new = tmp_path / "nvidia" / "cu13" / "lib"
    old = tmp_path / "nvidia" / "cuda_nvrtc" / "lib"
    for folder, names in ((new, ["libnvrtc.so.13", "libnvrtc-builtins.so.13.0"]), (old, ["libnvrtc.so.12"])):
        folder.mkdir(parents=True)
        for name in names:
            (folder / name).write_bytes(b"")
    monkeypatch.setattr(nvrtc, "_nvidia_dirs", lambda: [tmp_path / "nvidia"])
    assert nvrtc.candidates() == [new / "libnvrtc.so.13", old / "libnvrtc.so.12"]
    monkeypatch.setenv(nvrtc.ENV_LIBRARY, "/opt/cuda/lib64/libnvrtc.so")
    assert [str(p) for p in nvrtc.candidates()] == ["/opt/cuda/lib64/libnvrtc.so"]
