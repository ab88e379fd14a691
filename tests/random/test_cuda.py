"""The CUDA draws (codegen/cuda/philox.cuh): compiled by NVRTC, and run as written on the CPU
by the emulator (tests/codegen/cuda_emulator.py), where they must give the NumPy
reference's bits; on a GPU, through the driver too."""

import numpy as np
import pytest

from exprc.codegen.cuda import random as cuda_random
from exprc.ops.random import draw_values
from tests.codegen import cuda_emulator
from tests.random.test_backends import CASES, NORMAL_ULPS, SHAPE, STATE, _ulps


def test_nvrtc_compiles_the_draws():
    from exprc.codegen.cuda import nvrtc

    if nvrtc.unavailable_reason() is not None:
        pytest.skip(nvrtc.unavailable_reason())
    cubin = nvrtc.compile_cubin(cuda_random.source(), "exprc_random.cu", "sm_80")
    assert all(name.encode() in cubin for name in cuda_random.kernel_names())


@pytest.fixture(scope="module")
def emulated():
    if cuda_emulator.UNAVAILABLE is not None:
        pytest.skip(cuda_emulator.UNAVAILABLE)
    return cuda_emulator.Program(cuda_random.source())


@pytest.mark.parametrize("dist, dtype, params", CASES, ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_emulated_kernels_draw_the_references_bits(emulated, dist, dtype, params):
    name, out_dtype, cast, prepared = cuda_random.plan(dist, dtype, SHAPE, params)
    n = int(np.prod(SHAPE))
    out = np.zeros(SHAPE, np.uint8 if out_dtype == "bool" else out_dtype)
    state = STATE.copy()
    args = cuda_random.arguments(
        name, state.ctypes.data, 9, n, [(v.ctypes.data, s) for v, s in prepared], out.ctypes.data
    )
    # Fewer threads than blocks: the threads loop, as on a GPU with a capped grid.
    emulated.launch(f"exprc_random_{name}", (2, 1, 1), (32, 1, 1), [int(a) for a in args])
    got = out.view(bool) if out_dtype == "bool" else out
    got = got if cast is None else got.astype(cast)
    expected = draw_values(dist, 9, dtype, STATE, SHAPE, [np.asarray(p) for p in params])
    if dist == "normal":
        assert _ulps(got, expected).max() <= NORMAL_ULPS
    else:
        np.testing.assert_array_equal(got, expected)


def test_launch_shapes_cover_every_element():
    for name, per in (("uniform_f32", 4), ("uniform_f64", 2), ("binomial", 1)):
        for n in (1, 5, 10**7):
            blocks, threads = cuda_random.launch_shape(name, n)
            assert blocks * threads * per >= n or blocks == cuda_random.MAX_BLOCKS


def test_the_gpu_draws_the_references_bits():
    from exprc.codegen.cuda import driver

    if driver.unavailable_reason() is not None:
        pytest.skip(driver.unavailable_reason())
    for dist, dtype, params in CASES:
        got = cuda_random.draw(dist, 9, dtype, STATE, SHAPE, params).get()
        expected = draw_values(dist, 9, dtype, STATE, SHAPE, [np.asarray(p) for p in params])
        if dist == "normal":
            assert _ulps(got, expected).max() <= NORMAL_ULPS
        else:
            np.testing.assert_array_equal(got, expected)


def test_a_device_function_draws_the_references_values(monkeypatch):
    import exprc as ex

    if cuda_emulator.UNAVAILABLE is not None:
        pytest.skip(cuda_emulator.UNAVAILABLE)
    # The draw's step launches the Philox kernels: the emulator runs their CUDA source.
    cuda_emulator.EmulatedGpu(monkeypatch)
    srng = ex.random.RandomStream(seed=77)
    x = ex.vector("x", dtype="float32")
    mask = srng.bernoulli(0.5, size=x.shape)
    u = srng.uniform(-1.0, 1.0, size=(5,), dtype="float32")
    f = ex.function([x], [x * mask, u], updates=srng.updates(), device="cuda")
    a = np.arange(1.0, 9.0, dtype=np.float32)
    (dropped, drawn), state = [np.asarray(r.get()) for r in f(a)], np.array([77, 0], np.uint64)
    m = draw_values("bernoulli", mask.owner.op.draw, "bool", state, (8,), [np.asarray(0.5)])
    np.testing.assert_array_equal(dropped, a * m)
    expected = draw_values("uniform", u.owner.op.draw, "float32", state, (5,), [np.float32(-1), np.float32(1)])
    np.testing.assert_array_equal(drawn, expected)
    assert srng.state.get_value()[1] == 1
