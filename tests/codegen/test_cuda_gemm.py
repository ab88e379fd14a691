"""The GEMM kernels (codegen/cuda/gemm/plan.py) and the device matmul (codegen/cuda/matmul.py).

- every kernel compiles with NVRTC to a CUBIN for sm_80 and sm_90, without a
  warning and without spilling registers to local memory beyond a few bytes
  (skipped where NVRTC is not installed);
- matrix products of device arrays run over the stand-in driver
  (tests/codegen/cuda_fake.py), which reads each launch's packed parameters as
  the GPU would and computes the product from the memory they point at: edges,
  transposed and strided operands, vectors, broadcast and unmergeable batch
  axes, empty results, K = 0, compared with NumPy;
- programs built with ``device="cuda"`` compute ``@`` with the GEMM kernel and
  copy nothing back to the host.

The kernels' own arithmetic (the tiling, the pipeline, the tensor-core fragments)
runs on the emulated GPU in test_cuda_gemm_emulated.py, and on a GPU in
tests/test_cuda_gpu.py.
"""

import re

import numpy as np
import pytest

import exprc as ex
from exprc.codegen.cuda import matmul as cuda_matmul
from exprc.codegen.cuda import nvrtc
from exprc.codegen.cuda.array import DeviceArray, to_device
from exprc.codegen.cuda.gemm import plan as cuda_gemm
from tests.codegen.cuda_fake import FakeGpu

ARCHS = ("sm_80", "sm_90")

needs_nvrtc = pytest.mark.skipif(nvrtc.unavailable_reason() is not None, reason="NVRTC is not installed")


# --- compiling ----------------------------------------------------------------------------------


@needs_nvrtc
@pytest.mark.parametrize("arch", ARCHS)
def test_every_gemm_kernel_compiles_to_a_cubin(arch):
    cubin, log = nvrtc.compile_with_log(cuda_gemm.gemm_source(), "exprc_gemm.cu", arch, options=("--ptxas-options=-v",))
    assert cubin[:4] == b"\x7fELF"
    for kernel in cuda_gemm.gemm_kernels():
        assert kernel.name.encode() in cubin, f"{kernel.name} is missing from the {arch} CUBIN"
    assert "warning" not in log.lower(), log
    # ptxas -v reports per kernel what it spilled; a few bytes are tolerable, a loop's worth is not.
    spills = [int(n) for n in re.findall(r"(\d+) bytes spill stores", log)]
    assert len(spills) == len(cuda_gemm.gemm_kernels()), log
    assert max(spills) <= 64, log


def test_kernel_choice_and_refusals():
    assert cuda_gemm.kernel_for("float64").method == "cores"
    assert cuda_gemm.kernel_for("float16").method == "mma"
    assert cuda_gemm.kernel_for("float32", allow_tf32=True).method == "tf32"
    assert cuda_gemm.kernel_for("float64", allow_tf32=True).method == "cores"  # TF32 is for float32 only
    assert cuda_gemm.kernel_for("float32", layout="nn").method == "cores"  # layouts are for 16-bit operands
    assert not cuda_gemm.kernel_for("float32", allow_tf32=True).exact
    with pytest.raises(TypeError, match="no GEMM kernel for int32 operands"):
        cuda_gemm.kernel_for("int32")
    with pytest.raises(ValueError, match="operand b: expected 3 strides"):
        cuda_gemm.pack_gemm_arguments(1, 1, 1, 1, (0, (0, 1, 1)), (0, (1, 1)), (0, (0, 1, 1)))


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ((256, (0, 64, 1)), (512, (0, 32, 1)), "nn"),  # both C-contiguous
        ((256, (0, 1, 64)), (512, (0, 32, 1)), "tn"),  # A a transpose (m contiguous)
        ((256, (0, 64, 1)), (512, (0, 1, 64)), "nt"),  # B a transpose (k contiguous)
        ((256, (0, 1, 64)), (512, (0, 1, 64)), "tt"),
        ((256, (4096, 64, 1)), (512, (0, 32, 1)), "nn"),  # a batch of A, B broadcast
        ((256, (0, 0, 1)), (512, (0, 32, 1)), "nn"),  # one row of A repeated (a vector)
        ((264, (0, 64, 1)), (512, (0, 32, 1)), None),  # A 8 bytes off 16
        ((256, (0, 68, 1)), (512, (0, 32, 1)), None),  # A's rows 136 bytes apart
        ((256, (0, 64, 2)), (512, (0, 32, 1)), None),  # A strided along both axes
        ((256, (4100, 64, 1)), (512, (0, 32, 1)), None),  # A's products not 16-byte aligned
    ],
)
def test_pipelined_layouts(a, b, expected):
    """The pipelined kernels read 8 elements (16 bytes) at a time along an operand's unit
    stride: every such row must start on 16 bytes."""
    m, n, k = 48, 32, 64
    assert cuda_gemm.pipelined_layout(m, n, k, a, b) == expected
    name = cuda_gemm.choose("bfloat16", m, n, k, a, b).name
    assert name == ("exprc_gemm_bf16" if expected is None else f"exprc_gemm_bf16_{expected}")
    assert cuda_gemm.pipelined_layout(m, n, 60, a, b) in (None, "tn"), "k = 60 is not whole chunks along k"
    assert cuda_gemm.choose("float32", m, n, k, a, b).name == "exprc_gemm_f32_tile64"


def test_small_products_take_smaller_tiles():
    """Fewer than FEW_TILES tiles of 128 would leave most of a large GPU idle."""
    a, b = (0, (0, 4096, 1)), (0, (0, 4096, 1))
    assert cuda_gemm.choose("float32", 4096, 4096, 4096, a, b).name == "exprc_gemm_f32"  # 1024 tiles
    assert cuda_gemm.choose("float64", 2048, 2304, 64, a, b).name == "exprc_gemm_f64"  # 16 x 18 tiles
    assert cuda_gemm.choose("float64", 2048, 2048, 64, a, b).name == "exprc_gemm_f64_tile64"  # 16 x 16
    assert cuda_gemm.choose("float64", 2048, 2048, 64, a, b, batch=2).name == "exprc_gemm_f64"
    assert cuda_gemm.choose("float64", 1024, 2048, 64, a, b).name == "exprc_gemm_f64_tile64"  # 128 tiles
    assert cuda_gemm.choose("float32", 1024, 2048, 64, a, b, batch=3).name == "exprc_gemm_f32"
    assert cuda_gemm.choose("float32", 512, 256, 784, a, b, allow_tf32=True).name == "exprc_gemm_f32_tf32"


def test_grid_is_one_block_per_tile_capped():
    kernel = cuda_gemm.kernel_for("float32")
    assert cuda_gemm.grid(kernel, 1, 0, 0) == ((1, 1, 1), 256)
    assert cuda_gemm.grid(kernel, 3, 129, 128) == ((6, 1, 1), 256)
    assert cuda_gemm.grid(kernel, 10**6, 10**7, 65) == ((2**31 - 1, 1, 1), 256)
    assert cuda_gemm.grid(cuda_gemm.kernel_for("float16"), 3, 64, 65) == ((6, 1, 1), 128)
    assert cuda_gemm.grid(cuda_gemm.kernel_for("float16", layout="tn"), 1, 4096, 4096) == ((1024, 1, 1), 256)


def test_sources_read_like_cuda():
    """Each kernel says what it computes, the general tensor-core ones how their fragments lie,
    and the pipelined ones how their operands lie."""
    source = cuda_gemm.gemm_source()
    for kernel in cuda_gemm.gemm_kernels():
        assert f"/* {kernel.name}: {kernel.dtype} C = A @ B" in source
    assert source.count("Fragments, per the PTX ISA") == 3
    assert (
        "exprc_gemm_bf16_tn: bfloat16 C = A @ B on the tensor cores (mma.sync m16n8k16), float32\n"
        "   accumulation, for A contiguous along m (a transpose) and B contiguous along n" in source
    )
    assert cuda_gemm.gemm_source([cuda_gemm.kernel_for("float64")]).count("exprc_gemm_pipelined") == 0


# --- running over the stand-in driver -------------------------------------------------------------


@pytest.fixture
def gpu(monkeypatch):
    return FakeGpu(monkeypatch)


def _strided(value, layout):
    """``value`` laid out as ``layout``: C order, transposed storage, or every other element."""
    if layout == "c":
        return np.ascontiguousarray(value)
    if layout == "transposed":
        return np.ascontiguousarray(value.swapaxes(-1, -2)).swapaxes(-1, -2) if value.ndim > 1 else value
    wide = np.zeros(value.shape[:-1] + (2 * value.shape[-1],), value.dtype)
    wide[..., ::2] = value
    return wide[..., ::2]


def _device(value):
    """A device array with ``value``'s layout (a view of a copy of its whole memory)."""
    base = value
    while base.base is not None:
        base = base.base
    offset = value.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    return to_device(base).view(value.shape, value.strides, offset)


SHAPES = [
    ((3, 4), (4, 5)),
    ((65, 17), (17, 130)),
    ((1, 1), (1, 1)),
    ((64, 64), (64, 64)),
    ((4,), (4, 3)),
    ((3, 4), (4,)),
    ((7,), (7,)),
    ((2, 3, 4), (4, 5)),
    ((3, 4), (2, 4, 5)),
    ((2, 1, 3, 4), (5, 4, 2)),
    ((0, 3), (3, 4)),
    ((3, 0), (0, 4)),
    ((2, 0, 3, 4), (4, 5)),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("layouts", [("c", "c"), ("transposed", "c"), ("c", "transposed"), ("strided", "transposed")])
@pytest.mark.parametrize("shapes", SHAPES, ids=lambda s: f"{s[0]}@{s[1]}")
def test_matmul_of_device_arrays_matches_numpy(gpu, rng, shapes, layouts, dtype):
    a, b = (_strided(rng.standard_normal(s).astype(dtype), lay) for s, lay in zip(shapes, layouts))
    out = cuda_matmul.matmul(_device(a), _device(b))
    expected = np.matmul(a, b)
    assert isinstance(out, DeviceArray) and out.dtype == expected.dtype and out.shape == expected.shape
    np.testing.assert_allclose(out.get(), expected, rtol=1e-5 if dtype == "float32" else 1e-13, atol=1e-6)
    assert not expected.size or any(name.startswith("exprc_gemm") for name, _, _ in gpu.launches)


def test_unmergeable_batch_axes_take_one_launch_each(gpu, rng):
    # a's batch axes, transposed, cannot be walked by one stride: two launches of three.
    a = rng.standard_normal((3, 2, 4, 5)).transpose(1, 0, 2, 3)
    b = rng.standard_normal((5, 6))
    out = cuda_matmul.matmul(_device(a), _device(b))
    np.testing.assert_allclose(out.get(), a @ b, rtol=1e-13)
    assert [blocks for _, blocks, _ in gpu.launches] == [(3, 1, 1), (3, 1, 1)]  # a tile per product


def test_half_and_tf32_products_over_the_stand_in(gpu, rng):
    a, b = rng.standard_normal((33, 70)), rng.standard_normal((70, 9))
    half = cuda_matmul.matmul(to_device(a.astype(np.float16)), to_device(b.astype(np.float16)))
    expected = (a.astype(np.float16).astype(np.float32) @ b.astype(np.float16).astype(np.float32)).astype(np.float16)
    assert half.dtype == np.float16 and gpu.launches[-1][0] == "exprc_gemm_f16"  # k = 70: not whole chunks
    np.testing.assert_array_equal(half.get(), expected)
    a16, b16 = a[:, :64].astype(np.float16), b[:64].astype(np.float16)
    b_transposed = to_device(np.ascontiguousarray(b16.T)).T
    half = cuda_matmul.matmul(to_device(a16), b_transposed)
    assert gpu.launches[-1][0] == "exprc_gemm_f16_nt"
    np.testing.assert_array_equal(half.get(), (a16.astype(np.float32) @ b16.astype(np.float32)).astype(np.float16))
    tf32 = cuda_matmul.matmul(to_device(a.astype(np.float32)), to_device(b.astype(np.float32)), allow_tf32=True)
    assert gpu.launches[-1][0] == "exprc_gemm_f32_tf32"
    np.testing.assert_allclose(tf32.get(), a @ b, rtol=1e-2, atol=1e-2)  # 10 bits of mantissa


def test_a_packing_mistake_gives_wrong_numbers(gpu, rng, monkeypatch):
    """The stand-in reads the strides where the kernel reads them: swapping A's row and
    column strides is caught."""
    real = cuda_gemm.pack_gemm_arguments

    def swapped(batch, m, n, k, a, b, c):
        ptr, (sb, sm, sk) = a
        return real(batch, m, n, k, (ptr, (sb, sk, sm)), b, c)

    monkeypatch.setattr(cuda_matmul, "pack_gemm_arguments", swapped)
    a, b = rng.standard_normal((3, 3)), rng.standard_normal((3, 2))
    assert not np.allclose(cuda_matmul.matmul(to_device(a), to_device(b)).get(), a @ b)


def test_refusals_name_the_operands(gpu):
    x = to_device(np.ones((2, 3)))
    with pytest.raises(TypeError, match="got float64 and int64"):
        cuda_matmul.matmul(x, to_device(np.ones((3, 2), np.int64)))
    with pytest.raises(ValueError, match=r"shapes \(2, 3\) and \(2, 2\) are not aligned: 3"):
        cuda_matmul.matmul(x, to_device(np.ones((2, 2))))
    with pytest.raises(ValueError, match="batch axes of shapes"):
        cuda_matmul.matmul(to_device(np.ones((2, 2, 3))), to_device(np.ones((3, 3, 2))))


# --- in programs -----------------------------------------------------------------------------------


def test_a_program_computes_matmul_on_the_device(gpu, rng):
    x, w = ex.fmatrix("x"), ex.fmatrix("w")
    f = ex.function([x, w], ex.tanh(x @ w).sum(axis=0), device="cuda")
    assert "step 0: CUDA GEMM kernel exprc_gemm_f32 (or exprc_gemm_f32_tile64 for a small product): x @ w" in f.source
    xv, wv = rng.standard_normal((70, 30)).astype(np.float32), rng.standard_normal((30, 5)).astype(np.float32)
    xd, wd = to_device(xv), to_device(wv)
    gpu.to_host.clear()
    out = f(xd, wd)
    assert gpu.to_host == [], "nothing is copied back to the host"
    assert [name for name, _, _ in gpu.launches][-2:][0] == "exprc_gemm_f32_tile64"  # a small product
    np.testing.assert_allclose(out.get(), np.tanh(xv @ wv).sum(axis=0), rtol=1e-4)


def test_mixed_and_integer_products_stay_on_the_host(gpu, rng):
    a, b = ex.matrix("a"), ex.imatrix("b")
    f = ex.function([a, b], a @ b, device="cuda")
    av, bv = rng.standard_normal((3, 4)), rng.integers(-3, 3, (4, 2)).astype(np.int32)
    np.testing.assert_allclose(f(av, bv).get(), av @ bv, rtol=1e-13)
    assert not any(name.startswith("exprc_gemm") for name, _, _ in gpu.launches)


def test_tf32_is_asked_for_per_function(gpu, rng):
    x, w = ex.fmatrix("x"), ex.fmatrix("w")
    exact = ex.function([x, w], x @ w, device="cuda")
    fast = ex.function([x, w], x @ w, device="cuda", allow_tf32=True)
    assert "kernel exprc_gemm_f32 (or" in exact.source and "kernel exprc_gemm_f32_tf32:" in fast.source
    xv, wv = rng.standard_normal((5, 40)).astype(np.float32), rng.standard_normal((40, 3)).astype(np.float32)
    np.testing.assert_allclose(fast(xv, wv).get(), xv @ wv, rtol=1e-2, atol=1e-2)
    assert gpu.launches[-1][0] == "exprc_gemm_f32_tf32"
    with pytest.raises(ValueError, match="allow_tf32=True is for device='cuda'"):
        ex.function([x, w], x @ w, allow_tf32=True)
