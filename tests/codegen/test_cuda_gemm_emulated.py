"""The GEMM kernels (codegen/cuda_gemm*.py) run as written on the emulated GPU.

tests/codegen/cuda_emulator.py runs the CUDA source on the CPU with the tensor
cores' instructions (mma, ldmatrix) and the asynchronous copies (cp.async, done
only when a thread waits for them) spelled out, so the tiling, the pipeline's
stages, the swizzled shared tiles, the fragments and the edges are checked
against NumPy here, without a GPU. Values are small multiples of 1/4, so every
product and sum is exact and only the final rounding to float16 or bfloat16
differs from NumPy's float64.
"""

import numpy as np
import pytest

from exprc.codegen.cuda.gemm import plan as cuda_gemm
from tests.codegen import cuda_emulator
from tests.codegen.cuda_emulator import Program

pytestmark = pytest.mark.skipif(cuda_emulator.UNAVAILABLE is not None, reason=str(cuda_emulator.UNAVAILABLE))

TOLERANCE = {"float16": 1e-3, "bfloat16": 8e-3}


@pytest.fixture(scope="module")
def program():
    return Program(cuda_gemm.gemm_source())


def _bits(values, dtype):
    """float32 values as the kernel's storage: float16, bfloat16 bits, or the dtype itself."""
    if dtype == "bfloat16":
        return (np.asarray(values, np.float32).view(np.uint32) >> 16).astype(np.uint16)
    return np.asarray(values).astype(np.float16 if dtype == "float16" else dtype)


def _values(bits, dtype):
    if dtype == "bfloat16":
        return (bits.astype(np.uint32) << 16).view(np.float32)
    return bits


class Device:
    """Host memory standing in for device memory: 256-byte aligned blocks, kept alive, their
    bytes all ones (NaN in every float dtype), so that a kernel reading an element it should
    not (past an edge, between strided columns) gives NaN."""

    def __init__(self):
        self.blocks = []

    def empty(self, count, dtype):
        dtype = np.dtype(dtype)
        raw = np.full(count * dtype.itemsize + 256, 0xFF, np.uint8)
        self.blocks.append(raw)
        start = -raw.ctypes.data % 256
        return raw[start : start + count * dtype.itemsize].view(dtype)

    def operand(self, values, dtype, along, pad=8, offset=0):
        """``values`` (batch, rows, cols) stored as ``dtype`` contiguous along ``along``
        (``"cols"``, ``"rows"``, or ``"neither"``: every other column), leading rows rounded up
        to 8 elements and padded by ``pad`` more, and the start ``offset`` elements in. Returns ``(array, (ptr, strides
        in elements))``."""
        batch, rows, cols = values.shape
        stored = _bits(values, dtype)
        if along == "cols":
            lead = -(-cols // 8) * 8 + pad
            memory = self.empty(offset + batch * rows * lead, stored.dtype)[offset:].reshape(batch, rows, lead)
            view = memory[:, :, :cols]
        elif along == "rows":
            lead = -(-rows // 8) * 8 + pad
            memory = self.empty(offset + batch * cols * lead, stored.dtype)[offset:].reshape(batch, cols, lead)
            view = memory[:, :, :rows].transpose(0, 2, 1)
        else:
            memory = self.empty(offset + batch * rows * 2 * cols, stored.dtype)[offset:].reshape(batch, rows, 2 * cols)
            view = memory[:, :, ::2]
        view[...] = stored
        return view, (view.ctypes.data, tuple(s // view.itemsize for s in view.strides))


def _product(program, kernel, a, b, a_along, b_along, c_along="cols", a_offset=0, blocks=None):
    """C = A @ B by ``kernel`` on the emulator, returned as float64 with the expected product."""
    device = Device()
    batch, m, k = a.shape
    n = b.shape[2]
    _, a_arg = device.operand(a, kernel.dtype, a_along, offset=a_offset)
    _, b_arg = device.operand(b, kernel.dtype, b_along)
    c_view, c_arg = device.operand(np.zeros((batch, m, n), np.float32), kernel.out_dtype, c_along)
    arguments = cuda_gemm.pack_gemm_arguments(batch, m, n, k, a_arg, b_arg, c_arg)
    grid, threads = cuda_gemm.grid(kernel, batch, m, n)
    program.launch(kernel.name, grid if blocks is None else (blocks, 1, 1), (threads, 1, 1), arguments.tolist())
    got = _values(c_view, kernel.out_dtype).astype(np.float64)
    return got, np.matmul(a.astype(np.float64), b.astype(np.float64)), (a_arg, b_arg)


def _exact(rng, *shape):
    return (rng.integers(-8, 8, shape) / 4).astype(np.float32)


#: How each operand of a layout name lies: A along (k: "cols", m: "rows"), B (n: "cols", k: "rows").
_ALONG = {"n": ("cols", "cols"), "t": ("rows", "rows")}


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("layout", sorted(cuda_gemm.LAYOUTS))
def test_pipelined_kernels(program, rng, dtype, layout):
    """Each layout's kernel, chosen for its operands, on products whose tiles overhang every
    edge (m = 136: a tile and 8 rows; n = 200; k = 104: three steps of 32 and one of 8, so
    the pipeline refills its stages), padded leading strides and a batch of 2."""
    batch, m, n, k = 2, 136, 200, 104
    a, b = _exact(rng, batch, m, k), _exact(rng, batch, k, n)
    kernel = cuda_gemm.kernel_for(dtype, layout=layout)
    got, expected, (a_arg, b_arg) = _product(program, kernel, a, b, _ALONG[layout[0]][0], _ALONG[layout[1]][1])
    assert cuda_gemm.choose(dtype, m, n, k, a_arg, b_arg) == kernel
    np.testing.assert_allclose(got, expected, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])


@pytest.mark.parametrize("layout", ["nn", "tt"])
def test_pipelined_kernels_loop_over_tiles_the_grid_misses(program, rng, layout):
    """Three blocks for the 2 x 3 x 2 tiles of a batch of 3: each block computes several tiles
    one after another, reusing its stages (k = 32: a single step, and k = 8)."""
    for k in (32, 8):
        a, b = _exact(rng, 3, 256, k), _exact(rng, 3, k, 136)
        kernel = cuda_gemm.kernel_for("float16", layout=layout)
        got, expected, _ = _product(program, kernel, a, b, _ALONG[layout[0]][0], _ALONG[layout[1]][1], blocks=3)
        np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3)


def test_pipelined_kernels_with_k_of_zero_store_zeros(program, rng):
    kernel = cuda_gemm.kernel_for("float16", layout="nn")
    got, expected, _ = _product(program, kernel, _exact(rng, 1, 16, 0), _exact(rng, 1, 0, 24), "cols", "cols")
    assert got.shape == (1, 16, 24) and not got.any() and not expected.any()


def test_the_emulator_catches_a_misaligned_pipelined_operand(program, rng):
    """An operand one element in is not 16-byte aligned: choose() refuses it, and launching
    the pipelined kernel on it anyway fails as cp.async would fault on the GPU."""
    kernel = cuda_gemm.kernel_for("float16", layout="nn")
    a, b = _exact(rng, 1, 16, 16), _exact(rng, 1, 16, 16)
    with pytest.raises(RuntimeError, match="cp.async: an address that is not a multiple of 16 bytes"):
        _product(program, kernel, a, b, "cols", "cols", a_offset=1)
    device = Device()
    _, a_arg = device.operand(a, "float16", "cols", offset=1)
    _, b_arg = device.operand(b, "float16", "cols")
    assert cuda_gemm.choose("float16", 16, 16, 16, a_arg, b_arg).name == "exprc_gemm_f16"


GENERAL = [k for k in cuda_gemm.gemm_kernels() if k.method != "pipelined"]


@pytest.mark.parametrize("kernel", GENERAL, ids=lambda k: k.name)
@pytest.mark.parametrize(
    "a_along, b_along, a_offset",
    [("cols", "cols", 0), ("rows", "rows", 0), ("cols", "rows", 1), ("neither", "neither", 0)],
)
def test_general_kernels(program, rng, kernel, a_along, b_along, a_offset):
    """The CUDA-core kernels and the general tensor-core ones on odd sizes (no tile or K step
    divides them; n and k end 3 elements into a group of 4 the wide loads take), with
    operands contiguous along either axis, strided along both, or one element off alignment
    (so the CUDA-core kernels' wide loads must step aside)."""
    batch, m, n, k = 2, 140, 131, 47
    a, b = _exact(rng, batch, m, k), _exact(rng, batch, k, n)
    got, expected, _ = _product(program, kernel, a, b, a_along, b_along, c_along="cols", a_offset=a_offset)
    rtol = TOLERANCE.get(kernel.dtype, 1e-6 if kernel.exact else 1e-3)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("kernel", [k for k in GENERAL if k.method == "cores"], ids=lambda k: k.name)
def test_cuda_core_kernels_store_a_strided_result_and_loop_over_tiles(program, rng, kernel):
    a, b = _exact(rng, 3, 130, 17), _exact(rng, 3, 17, 129)
    got, expected, _ = _product(program, kernel, a, b, "cols", "cols", c_along="rows", blocks=5)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)
