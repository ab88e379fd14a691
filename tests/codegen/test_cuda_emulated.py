"""exprc's CUDA kernels run as written, on the CPU (tests/codegen/cuda_emulator.py).

The stand-in driver of cuda_fake.py checks the launcher by interpreting each
kernel's IR; here the rendered CUDA itself runs (g++ over an emulation of
blocks, barriers, shuffles and the PTX of the tensor cores), so its loops,
indexing, reduction trees, row chains and GEMM tiling and fragments are checked
against NumPy without a GPU. Transcendental functions are glibc's here, not
CUDA's: results are compared to a few ulps, not bit for bit.
"""

import numpy as np
import pytest

import exprc as ex
from exprc.codegen.cuda.array import to_device
from exprc.codegen.cuda.copy import contiguous_copy
from exprc.codegen.ir.row_chain import RowChainStep
from tests.codegen import cuda_emulator
from tests.codegen.cuda_emulator import EmulatedGpu, Program
from tests.helpers import in_layout

pytestmark = pytest.mark.skipif(cuda_emulator.UNAVAILABLE is not None, reason=str(cuda_emulator.UNAVAILABLE))


@pytest.fixture
def gpu(monkeypatch):
    return EmulatedGpu(monkeypatch)


def run(inputs, outputs, *arrays, rtol=1e-12, atol=0.0):
    """The graph's results on the emulated GPU, checked against exprc's NumPy reference."""
    got = ex.function(inputs, outputs, device="cuda")(*arrays)
    expected = ex.function(inputs, outputs, backend="numpy")(*arrays)
    got, expected = (got, expected) if isinstance(outputs, list) else ([got], [expected])
    for g, e in zip(got, expected):
        g = g.get()
        assert g.dtype == np.asarray(e).dtype and g.shape == np.shape(e)
        np.testing.assert_allclose(
            g.astype(np.float64), np.asarray(e, np.float64), rtol=rtol, atol=atol, equal_nan=True
        )
    return got


def launched(gpu):
    return [name for name, _, _ in gpu.launches]


# --- elementwise and reductions -------------------------------------------------------------------

TOLERANCE = {"float16": 1e-3, "float32": 1e-6, "float64": 1e-13}


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int8", "int32", "int64", "uint8", "bool"])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided"])
def test_elementwise_kernels(gpu, rng, dtype, layout):
    x, y = ex.matrix("x", dtype=dtype), ex.vector("y", dtype=dtype)
    if dtype == "bool":
        out = [x & ~y, ex.where(x, y, x ^ y)]
    elif dtype.startswith(("int", "uint")):
        out = [x * y + 3, x // (y | 1), ex.maximum(x, y) % 7]
    else:
        out = [ex.exp(x - y) * 0.5, ex.tanh(x) / (1 + y * y), ex.where(x > y, ex.sqrt(abs(x)), -y)]
    xv = in_layout(
        rng.integers(-20, 20, (33, 19)).astype(dtype) if dtype != "bool" else rng.random((33, 19)) > 0.5, layout
    )
    yv = rng.integers(0, 20, 19).astype(dtype) if dtype != "bool" else rng.random(19) > 0.5
    if dtype.startswith("float"):
        xv, yv = (xv / 7).astype(dtype), (yv / 5).astype(dtype)
    run([x, y], out, xv, yv, rtol=TOLERANCE.get(dtype, 0))


@pytest.mark.parametrize(
    "dtypes",
    [("float32", "float32"), ("float16", "float16"), ("float32", "float64"), ("int8", "bool"), ("uint8", "uint8")],
    ids="-".join,
)
def test_wide_loads_every_length_and_offset(gpu, rng, dtypes):
    """The fast path moves groups of up to 16 bytes when every address allows: lengths around
    multiples of the group, and views starting one element in (whose address does not allow
    it, so the single elements take over), all agree with NumPy."""
    x, y = ex.vector("x", dtype=dtypes[0]), ex.vector("y", dtype=dtypes[1])
    outputs = [x * 3 + y, x > y]
    on_gpu, on_host = ex.function([x, y], outputs, device="cuda"), ex.function([x, y], outputs, backend="numpy")
    for n in [1, 3, 4, 7, 8, 9, 16, 17, 31, 33, 64, 1000]:
        xv, yv = (rng.integers(0, 40, n + 1).astype(dtype) for dtype in dtypes)
        for offset in (0, 1):
            xd, yd = (to_device(v).view((n,), (v.itemsize,), offset * v.itemsize) for v in (xv, yv))
            got = on_gpu(xd, yd)
            for g, e in zip(got, on_host(xv[offset : offset + n], yv[offset : offset + n])):
                assert g.dtype == e.dtype
                np.testing.assert_array_equal(g.get(), e)


@pytest.mark.parametrize("op", ["sum", "prod", "max", "min"])
@pytest.mark.parametrize("axis", [0, 1, None, (0, 2)])
def test_reduction_kernels(gpu, rng, op, axis):
    x = ex.tensor("x", dtype="float64", shape=(None, None, None))
    value = rng.standard_normal((5, 300, 3))
    value[1, 7, 0] = np.nan  # max and min keep a NaN, the others carry it
    run([x], [getattr(x, op)(axis=axis), getattr(x, op)(axis=axis, keepdims=True) * 2], value, rtol=1e-12)


def test_integer_and_boolean_reductions(gpu, rng):
    x = ex.imatrix("x")
    value = rng.integers(-5, 5, (70, 513)).astype(np.int32)
    run([x], [x.sum(axis=1), (x > 0).all(axis=0), (x > 3).any(axis=1), x.max(axis=None)], value)


def test_long_rows_are_shared_by_blocks(gpu, rng):
    """Few rows of many elements: several blocks per row, the last to finish combining their
    results (sums, NaN-keeping max, logsumexp's max with initial=, float16, an epilogue), leaving
    the counts at zero for the next launch, which then gives the same bits."""
    x, h = ex.matrix("x"), ex.vector("h", dtype="float16")
    value = rng.standard_normal((3, 20000))
    value[1, 12345] = np.nan
    halves = rng.standard_normal(9000).astype(np.float16)
    f = ex.function(
        [x, h],
        [
            x.sum(axis=1),
            x.max(axis=1),
            ex.sqrt(abs(x).sum()) + 1,
            ex.logsumexp(x * 0.1),
            h.max(),
            h.sum(dtype="float32"),
        ],
        device="cuda",
    )
    first = [r.get() for r in f(value, halves)]
    assert any(grid[0] > 3 for _, grid, _ in gpu.launches), "blocks share rows"
    scaled = value * 0.1
    expected = [
        value.sum(axis=1),
        value.max(axis=1),
        np.sqrt(abs(value).sum()) + 1,
        np.log(np.exp(scaled).sum()),
        halves.max(),
        halves.sum(dtype=np.float32),
    ]
    for got, want in zip(first, expected):
        np.testing.assert_allclose(got.astype(np.float64), np.asarray(want, np.float64), rtol=1e-5, equal_nan=True)
    again = [r.get() for r in f(value, halves)]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    from exprc.codegen.cuda.launch import tickets

    assert not tickets(0).get().any(), "every row's count is back to zero"


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "uint16", "int64", "uint64", "bool", "float16"])
def test_every_accumulator_width_crosses_the_warps(gpu, rng, dtype):
    """Shuffles move 32- and 64-bit values; narrower accumulators travel as int. Rows of 700
    give every lane of every warp elements; the extreme sits in a different warp per row."""
    x = ex.matrix("x", dtype=dtype)
    if dtype == "bool":
        value = rng.random((6, 700)) > 0.02
        outputs = [x.all(axis=1), x.any(axis=0), x.max(axis=1), x.min(axis=1)]
    else:
        info = np.finfo(dtype) if dtype == "float16" else np.iinfo(dtype)
        value = rng.integers(-3 if info.min < 0 else 0, 4, (6, 700)).astype(dtype)
        value[np.arange(6), [3, 40, 300, 650, 699, 0]] = info.max
        value[np.arange(6), [5, 500, 90, 33, 1, 699]] = info.min
        outputs = [x.max(axis=1), x.min(axis=1), x.max(axis=0)]
        if dtype == "float16":
            value[2, 400] = np.nan
        else:
            outputs.append(x.sum(axis=1, dtype=dtype))  # wraps around as NumPy's does
    run([x], outputs, value)


# --- row chains --------------------------------------------------------------------------------------


def _layer_norm(x, gamma, beta):
    mean = x.mean(axis=-1, keepdims=True)
    centered = x - mean
    var = (centered * centered).mean(axis=-1, keepdims=True)
    return centered / ex.sqrt(var + 1e-5) * gamma + beta


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided"])
def test_softmax_is_one_launch(gpu, rng, dtype, layout):
    x = ex.matrix("x", dtype=dtype)
    value = in_layout((rng.standard_normal((37, 300)) * 30).astype(dtype), layout)
    value[3] = -np.inf  # a row of -inf: NaN, as NumPy's formula gives
    value[4, :5] = np.inf
    run([x], ex.softmax(x, axis=-1), value, rtol=TOLERANCE[dtype] * 4, atol=1e-30)
    assert len(launched(gpu)) == 1 and "chain" in launched(gpu)[0]


def test_log_softmax_logsumexp_and_layer_norm_chain(gpu, rng):
    x, gamma, beta = ex.matrix("x"), ex.vector("gamma"), ex.vector("beta")
    value = rng.standard_normal((40, 257)) * 4
    outputs = [ex.log_softmax(x, axis=1), ex.logsumexp(x, axis=1, keepdims=True), _layer_norm(x, gamma, beta)]
    run([x, gamma, beta], outputs, value, rng.standard_normal(257), rng.standard_normal(257), rtol=1e-12, atol=1e-12)
    assert sum("chain" in name for name in launched(gpu)) >= 2


def test_chain_over_two_trailing_axes_and_float16(gpu, rng):
    x = ex.tensor("x", dtype="float64", shape=(None, None, None))
    run([x], ex.softmax(x, axis=(1, 2)), rng.standard_normal((4, 30, 11)), rtol=1e-12)
    h = ex.matrix("h", dtype="float16")
    run([h], ex.softmax(h, axis=1), rng.standard_normal((9, 70)).astype(np.float16), rtol=2e-3, atol=1e-4)
    assert all("chain" in name for name in launched(gpu))


def test_chain_whose_shapes_differ_runs_its_parts(gpu, rng):
    """softmax(x) * y with x of one row broadcast against y's rows: the last part's index
    space is not the chain's, so the kernels run one by one."""
    x, y = ex.matrix("x"), ex.matrix("y")
    run([x, y], ex.softmax(x, axis=1) * y, rng.standard_normal((1, 50)), rng.standard_normal((6, 50)))
    assert not any("chain" in name for name in launched(gpu)) and len(launched(gpu)) == 3
    program = ex.function([x, y], ex.softmax(x, axis=1) * y, device="cuda")
    assert any(isinstance(step, RowChainStep) for step in program._program.compiled.program.steps)


# --- matrix products ------------------------------------------------------------------------------


def test_matmul_in_a_program(gpu, rng):
    x, w = ex.fmatrix("x"), ex.fmatrix("w")
    run(
        [x, w],
        ex.tanh(x @ w),
        rng.standard_normal((65, 20)).astype(np.float32),
        rng.standard_normal((20, 70)).astype(np.float32),
        rtol=1e-5,
        atol=1e-6,
    )


def test_copy_kernels(gpu, rng):
    for dtype in ("uint8", "int16", "float32", "float64"):
        value = rng.integers(0, 100, (3, 5, 7)).astype(dtype)
        view = value.transpose(2, 0, 1)[:, ::2]
        copied = contiguous_copy(to_device(value).view(view.shape, view.strides))
        np.testing.assert_array_equal(copied.get(), view)
    assert all(name.startswith("exprc_copy") for name in launched(gpu))


# --- the emulator itself ------------------------------------------------------------------------------

_SELF_TEST = """
extern "C" __global__ void __launch_bounds__(64) shuffles(long long *out)
{
    long long v = threadIdx.x;
    out[threadIdx.x] = __shfl_down_sync(0xffffffffu, v, 3) + 100 * __shfl_xor_sync(0xffffffffu, v, 1);
}

extern "C" __global__ void __launch_bounds__(64) divergent(long long *out)
{
    if (threadIdx.x < 10) __syncthreads();
    else __syncwarp();
    out[threadIdx.x] = 1;
}
"""


def test_the_emulator_shuffles_like_a_warp_and_reports_deadlocks():
    out = np.zeros(64, np.int64)
    program = Program(_SELF_TEST)
    program.launch("shuffles", (1, 1, 1), (64, 1, 1), [out.ctypes.data])
    lane = np.arange(64) % 32
    down = np.where(lane + 3 < 32, np.arange(64) + 3, np.arange(64))
    np.testing.assert_array_equal(out, down + 100 * (np.arange(64) ^ 1))
    with pytest.raises(RuntimeError, match="deadlock"):
        program.launch("divergent", (1, 1, 1), (64, 1, 1), [out.ctypes.data])


def test_an_input_sharing_the_updated_mirror_is_not_written_over(gpu):
    """Threads of the update kernel read the input where others write the mirror: with the
    two sharing memory, the update is computed into a fresh array (as on the host)."""
    w = ex.shared(np.arange(1000.0), name="w")
    x = ex.vector("x")
    step = ex.function([x], [], updates=[(w, w * 3.0 + x[::-1])], device="cuda")
    step(np.zeros(1000))
    before = w.get_value()
    step(w.device_value(to_device))
    np.testing.assert_array_equal(w.get_value(), before * 3.0 + before[::-1])
    with pytest.raises(ValueError, match="iterator is too large"):
        n = np.broadcast_to(np.ones(1), (2**32,))
        ex.function([x], (x[:, None] * x[None, :]).sum(), device="cuda")(n)
