"""On a real GPU: device arrays, functions, the pool and interop with CuPy, PyTorch,
JAX and Numba. Every test here skips, saying why, where CUDA cannot run; the op
tests (tests/ops) then run on device="cuda" too (see tests/ops/_oracle.py).
"""

import gc

import numpy as np
import pytest

import exprc as ex

pytestmark = pytest.mark.skipif(
    not ex.cuda.is_available(), reason="needs a GPU: " + "; ".join(ex.cuda.missing() or ["CUDA is available"])
)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "bool", "uint8"])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided", "0d"])
def test_to_device_and_back(dtype, layout):
    base = (np.arange(48) % 5).astype(dtype).reshape(6, 8)
    host = {"contiguous": base, "transposed": base.T, "strided": base[::2, ::-3], "0d": base[1, 2, ...]}[layout]
    x = ex.cuda.to_device(host)
    assert x.shape == host.shape and x.dtype == host.dtype and x.flags.c_contiguous
    np.testing.assert_array_equal(x.get(), host)
    np.testing.assert_array_equal(x.T.get(), host.T)


def test_a_function_takes_numpy_and_device_arrays_and_returns_device_arrays(rng):
    x, y = ex.matrix("x"), ex.vector("y")
    f = ex.function([x, y], [ex.exp(-(x**2)).sum(axis=1) + y[0], (x @ x.T)[::2], x.T * y[:, None]], device="cuda")
    a, b = rng.uniform(-1, 1, (5, 5)), rng.uniform(-1, 1, 5)
    expected = ex.function(
        [x, y], [ex.exp(-(x**2)).sum(axis=1) + y[0], (x @ x.T)[::2], x.T * y[:, None]], backend="numpy"
    )(a, b)
    for args in [(a, b), (ex.cuda.to_device(a), ex.cuda.to_device(b)), (ex.cuda.to_device(a), b)]:
        got = f(*args)
        assert all(isinstance(g, ex.cuda.DeviceArray) for g in got)
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g.get(), e, rtol=1e-12)


def test_the_pool_serves_repeated_calls_without_new_allocations(rng):
    x = ex.vector("x")
    f = ex.function([x], ex.exp(x) * 2, device="cuda")
    data = ex.cuda.to_device(rng.uniform(size=10**5))
    f(data)
    pool = ex.cuda.memory_pool()
    before = pool.stats()["driver_allocations"]
    for _ in range(20):
        f(data)
    assert pool.stats()["driver_allocations"] == before
    gc.collect()
    assert pool.empty() > 0 and pool.stats()["cached"] == 0


def test_errors_are_clear_on_the_gpu_too():
    x, y = ex.vector("x"), ex.vector("y")
    f = ex.function([x, y], x + y, device="cuda")
    with pytest.raises(ValueError, match="shapes do not broadcast"):
        f(np.zeros(3), np.zeros(4))


# --- interop: the same memory, no copy ---------------------------------------------------------


def test_cupy_shares_memory_both_ways(rng):
    cupy = pytest.importorskip("cupy")
    x = ex.cuda.to_device(rng.uniform(size=(3, 4)))
    c = cupy.asarray(x)  # through __cuda_array_interface__
    assert c.data.ptr == x.ptr
    np.testing.assert_array_equal(cupy.asnumpy(c), x.get())
    d = cupy.from_dlpack(x)
    assert d.data.ptr == x.ptr
    v = ex.vector("v")
    source = cupy.arange(5, dtype=cupy.float64)
    out = ex.function([v], v * 3, device="cuda")(source)  # a CuPy array as an input, in place
    np.testing.assert_array_equal(out.get(), np.arange(5) * 3)


def test_pytorch_shares_memory_both_ways(rng):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("this PyTorch has no CUDA")
    x = ex.cuda.to_device(rng.uniform(size=(3, 4)).astype(np.float32))
    t = torch.from_dlpack(x)
    assert t.data_ptr() == x.ptr and t.device.type == "cuda"
    np.testing.assert_array_equal(t.cpu().numpy(), x.get())
    u = torch.as_tensor(x, device="cuda")  # through __cuda_array_interface__
    assert u.data_ptr() == x.ptr
    v = ex.fvector("v")
    source = torch.arange(6, dtype=torch.float32, device="cuda")[::2]  # strided, read in place
    out = ex.function([v], v + 1, device="cuda")(source)
    np.testing.assert_array_equal(out.get(), np.array([1, 3, 5], np.float32))
    del t, u
    gc.collect()


def test_jax_takes_device_arrays_through_dlpack(rng):
    jax = pytest.importorskip("jax")
    if not any(d.platform == "gpu" for d in jax.devices()):
        pytest.skip("this JAX has no GPU")
    x = ex.cuda.to_device(rng.uniform(size=(4,)).astype(np.float32))
    j = jax.dlpack.from_dlpack(x)
    np.testing.assert_array_equal(np.asarray(j), x.get())


def test_numba_reads_the_cuda_array_interface(rng):
    numba_cuda = pytest.importorskip("numba.cuda")
    if not numba_cuda.is_available():
        pytest.skip("Numba finds no GPU")
    x = ex.cuda.to_device(rng.uniform(size=(2, 3)))
    n = numba_cuda.as_cuda_array(x)
    assert n.device_ctypes_pointer.value == x.ptr
    np.testing.assert_array_equal(n.copy_to_host(), x.get())


# --- matrix products and training on the GPU (codegen/cuda/gemm/plan.py) -----------------------------

GEMM_SHAPES = [
    ((1, 1), (1, 1)),
    ((3, 5), (5, 7)),
    ((64, 64), (64, 64)),
    ((65, 33), (33, 129)),
    ((130, 257), (257, 70)),
    ((7,), (7, 9)),
    ((4, 33, 17), (17, 40)),
    ((3, 0), (0, 4)),
]


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("shapes", GEMM_SHAPES, ids=lambda s: f"{s[0]}@{s[1]}")
def test_gemm_kernels_on_the_gpu(rng, shapes, transposed, dtype):
    """The tiled kernels and the float16 tensor-core kernel, edges and layouts, against NumPy."""
    from exprc.codegen.cuda.matmul import matmul

    a, b = rng.uniform(-1, 1, shapes[0]), rng.uniform(-1, 1, shapes[1])
    a, b = a.astype(dtype), b.astype(dtype)
    da, db = ex.cuda.to_device(a), ex.cuda.to_device(b)
    if transposed and a.ndim == 2:
        da = ex.cuda.to_device(np.ascontiguousarray(a.T)).T
    exact = np.matmul(a.astype(np.float64), b.astype(np.float64))
    got = matmul(da, db).get()
    assert got.dtype == np.dtype(dtype) and got.shape == exact.shape
    # float16: float32 accumulation, one rounding at the end.
    rtol = {"float32": 1e-5, "float64": 1e-13, "float16": 2e-3}[dtype]
    np.testing.assert_allclose(got.astype(np.float64), exact, rtol=rtol, atol=rtol * max(1, shapes[0][-1]) ** 0.5)


@pytest.mark.parametrize("layout", ["nn", "nt", "tn", "tt"])
@pytest.mark.parametrize("mnk", [(136, 200, 104), (1024, 512, 264)], ids=str)
def test_pipelined_kernels_on_the_gpu(rng, layout, mnk):
    """The cp.async / ldmatrix / mma kernels in each layout, float16 through exprc's arrays and
    bfloat16 through PyTorch's memory, against NumPy in float64."""
    from exprc.codegen.cuda.matmul import launch_gemm, matmul

    m, n, k = mnk
    a, b = rng.uniform(-1, 1, (m, k)), rng.uniform(-1, 1, (k, n))

    def lay(value, transposed):
        return ex.cuda.to_device(np.ascontiguousarray(value.T)).T if transposed else ex.cuda.to_device(value)

    a16, b16 = a.astype(np.float16), b.astype(np.float16)
    got = matmul(lay(a16, layout[0] == "t"), lay(b16, layout[1] == "t")).get()
    exact = a16.astype(np.float64) @ b16.astype(np.float64)
    np.testing.assert_allclose(got.astype(np.float64), exact, rtol=2e-3, atol=2e-3 * k**0.5)

    torch = pytest.importorskip("torch")
    ta = torch.tensor(a, dtype=torch.bfloat16, device="cuda")
    tb = torch.tensor(b, dtype=torch.bfloat16, device="cuda")
    ta = ta.t().contiguous().t() if layout[0] == "t" else ta
    tb = tb.t().contiguous().t() if layout[1] == "t" else tb
    tc = torch.empty((m, n), dtype=torch.bfloat16, device="cuda")
    kernel = launch_gemm(
        "bfloat16",
        1,
        m,
        n,
        k,
        (ta.data_ptr(), (0, *ta.stride())),
        (tb.data_ptr(), (0, *tb.stride())),
        (tc.data_ptr(), (0, *tc.stride())),
    )
    assert kernel.name == f"exprc_gemm_bf16_{layout}"
    torch.cuda.synchronize()
    exact = ta.double().cpu().numpy() @ tb.double().cpu().numpy()
    np.testing.assert_allclose(tc.double().cpu().numpy(), exact, rtol=1e-2, atol=1e-2 * k**0.5)


def test_tf32_kernel_on_the_gpu(rng):
    from exprc.codegen.cuda.matmul import matmul

    a, b = rng.uniform(-1, 1, (130, 300)).astype(np.float32), rng.uniform(-1, 1, (300, 70)).astype(np.float32)
    got = matmul(ex.cuda.to_device(a), ex.cuda.to_device(b), allow_tf32=True).get()
    np.testing.assert_allclose(got, a.astype(np.float64) @ b, rtol=0, atol=300 * 2e-3)


def test_a_training_step_on_the_gpu_matches_numpy(rng):
    x, y = ex.fmatrix("x"), ex.fvector("y")
    w = ex.shared(rng.standard_normal((20, 1)).astype(np.float32), name="w")
    cost = ((x @ w)[:, 0] - y).__pow__(2).mean()
    step = ex.function([x, y], cost, updates=[(w, w - 0.1 * ex.grad(cost, w))], device="cuda")
    xv, yv = rng.standard_normal((100, 20)).astype(np.float32), rng.standard_normal(100).astype(np.float32)
    wv = w.get_value()
    for _ in range(5):
        loss = step(xv, yv)
        r = (xv @ wv)[:, 0] - yv
        np.testing.assert_allclose(loss.get(), (r**2).mean(), rtol=1e-4)
        wv = wv - 0.1 * (2 * xv.T @ r[:, None] / len(r))
    np.testing.assert_allclose(w.get_value(), wv, rtol=1e-4, atol=1e-5)
