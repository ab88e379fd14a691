"""The CUDA launcher end to end over a stand-in driver (tests/codegen/cuda_fake.py):
graphs lowered, their kernels' arguments packed and "launched" (interpreted from the
packed parameters), views taken of device memory, NumPy steps run on the host, and
outputs handed back as device arrays, every result compared with NumPy's."""

import struct

import numpy as np
import pytest

import exprc as ex
from exprc.codegen.cuda import launch as cuda_launch
from exprc.codegen.cuda import render as cuda_render
from exprc.codegen.cuda.array import DeviceArray
from exprc.codegen.cuda.ops import THREADS
from exprc.codegen.cuda.pool import Block
from exprc.codegen.ir import kernel as ir
from tests.codegen.cuda_fake import FakeGpu
from tests.helpers import in_layout


@pytest.fixture
def gpu(monkeypatch):
    return FakeGpu(monkeypatch)


def run(gpu, inputs, outputs, *arrays):
    """The graph on the (fake) GPU and on the NumPy reference; the GPU's results as NumPy."""
    f = ex.function(inputs, outputs, device="cuda")
    got = f(*arrays)
    expected = ex.function(inputs, outputs, backend="numpy")(*arrays)
    if not isinstance(outputs, list):
        got, expected = [got], [expected]
    host = []
    for g, e in zip(got, expected):
        assert isinstance(g, DeviceArray) and isinstance(g.base_owner, Block)  # memory of its own
        g = g.get()
        assert g.dtype == np.asarray(e).dtype and g.shape == np.shape(e)
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=0, equal_nan=True)
        host.append(g)
    return host


# --- argument packing --------------------------------------------------------------------------


def test_packed_arguments_follow_the_rendered_parameters():
    """Each 8-byte slot holds what the kernel's parameter of that position names."""
    x, s = ir.Buffer("x", "float16", 3), ir.Buffer("s", "int32", 0)
    w, out = ir.Buffer("w", "float64", 3, outer=True), ir.Buffer("out", "float64", 3, output=True, outer=True)
    value = ir.Call("multiply", (ir.Cast(ir.Load(x), "float64"), ir.Cast(ir.Load(s), "float64")), "float64")
    red = ir.Reduction("add", value, 2, "float64", "float64")
    kernel = ir.Kernel("k0_sum", 3, (x, s, w, out), ((out, ir.Acc("float64")),), reduction=red)
    given = {
        "n0": 7,
        "n1": 8,
        "n2": 9,
        "contiguous": 0,
        "x": 0x7F0000001000,
        "x_s0": 72,
        "x_s1": 9,
        "x_s2": 1,
        "s": 0x7F0000002000,
        "w": 0x7F0000003000,
        "w_s0": 1,
        "w_s1": 0,
        "w_s2": 0,
        "out": 0x7F0000004000,
        "out_s0": 1,
        "out_s1": 0,
        "out_s2": 0,
        "exprc_splits": 3,
        "exprc_shares": 0x7F0000005000,
        "exprc_tickets": 0x7F0000006000,
    }
    packed = cuda_launch.pack_arguments(
        kernel,
        [7, 8, 9],
        False,
        [(given["x"], [72, 9, 1]), (given["s"], None), (given["w"], [1, 0, 0]), (given["out"], [1, 0, 0])],
        (3, given["exprc_shares"], given["exprc_tickets"]),
    ).tobytes()
    names = [p.split()[-1] for p in cuda_render.parameters(kernel)]
    assert len(packed) == 8 * len(names)
    assert list(struct.unpack(f"<{len(names)}q", packed)) == [given[n] for n in names]


def test_packing_refuses_arguments_of_the_wrong_number():
    x, out = ir.Buffer("x", "float32", 2), ir.Buffer("out", "float32", 2, output=True)
    kernel = ir.Kernel("k0", 2, (x, out), ((out, ir.Load(x)),))
    with pytest.raises(ValueError, match="1 lengths"):
        cuda_launch.pack_arguments(kernel, [3], True, [(1, [1, 1]), (2, [1, 1])])
    with pytest.raises(ValueError, match="buffer x needs 2 strides"):
        cuda_launch.pack_arguments(kernel, [3, 4], True, [(1, [1]), (2, [1, 1])])
    with pytest.raises(ValueError, match="1 arrays"):
        cuda_launch.pack_arguments(kernel, [3, 4], True, [(1, [1, 1])])


def test_launch_shapes():
    x, out = ir.Buffer("x", "float32", 2), ir.Buffer("out", "float32", 2, output=True)
    elementwise = ir.Kernel("k0", 2, (x, out), ((out, ir.Load(x)),))
    assert cuda_launch.launch_shape(elementwise, [3, 5]) == (1, THREADS)
    assert cuda_launch.launch_shape(elementwise, [1000, 1000]) == (977, THREADS)  # a thread per 4 floats
    wider = ir.Kernel("k0", 2, (x, ir.Buffer("out", "float64", 2, output=True)), ((out, ir.Load(x)),))
    assert cuda_launch.launch_shape(wider, [1000, 1000]) == (1954, THREADS)  # per 2: 16 bytes of float64
    assert cuda_launch.launch_shape(elementwise, [10**5, 10**5]) == (cuda_launch.MAX_BLOCKS, THREADS)
    red_out = ir.Buffer("out", "float32", 2, output=True, outer=True)
    red = ir.Reduction("add", ir.Load(x), 1, "float32", "float64")
    reduction = ir.Kernel("k1", 2, (x, red_out), ((red_out, ir.Acc("float32")),), reduction=red)
    assert cuda_launch.launch_shape(reduction, [37, 10**6]) == (999, THREADS)  # 27 blocks share each row
    assert cuda_launch.launch_shape(reduction, [37, 1000]) == (37, THREADS)
    assert cuda_launch.launch_shape(reduction, [10**6, 10**6]) == (cuda_launch.MAX_BLOCKS, THREADS)
    scalar = ir.Kernel("k2", 0, (ir.Buffer("a", "int64", 0), ir.Buffer("o", "int64", 0, output=True)), ())
    assert cuda_launch.launch_shape(scalar, []) == (1, 1)


# --- whole programs -----------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided", "broadcast"])
def test_elementwise_on_every_layout(gpu, layout, rng):
    x, y = ex.matrix("x"), ex.vector("y")
    a = in_layout(rng.uniform(-2, 2, (5, 7)), layout)
    b = rng.uniform(-2, 2, 7)
    run(gpu, [x, y], ex.exp(-(x**2)) * y + ex.tanh(x), a, b)
    assert [name for name, _, _ in gpu.launches][-1].startswith("k0_")


@pytest.mark.parametrize("axis, keepdims", [(0, False), (1, True), ((0, 2), False), (None, False), (2, True)])
def test_reductions_with_prologue_and_epilogue(gpu, axis, keepdims, rng):
    x = ex.tensor3("x")
    a = in_layout(rng.uniform(-1, 1, (4, 5, 6)), "strided")
    run(gpu, [x], [ex.sqrt((x**2).sum(axis=axis, keepdims=keepdims)) + 1, ex.max(x, axis=axis)], a)
    assert all(threads == THREADS for _, _, threads in gpu.launches)


def test_softmax_and_integer_reductions(gpu, rng):
    x, i = ex.fmatrix("x"), ex.imatrix("i")
    a = rng.uniform(-3, 3, (6, 9)).astype(np.float32)
    k = rng.integers(-5, 5, (6, 9)).astype(np.int32)
    f = ex.function([x, i], [ex.softmax(x, axis=1), i.sum(axis=0), (i > 0).any(axis=1)], device="cuda")
    got = [r.get() for r in f(a, k)]
    expected = ex.function([x, i], [ex.softmax(x, axis=1), i.sum(axis=0), (i > 0).any(axis=1)], backend="numpy")(a, k)
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-6)
    np.testing.assert_array_equal(got[1], expected[1])
    np.testing.assert_array_equal(got[2], expected[2])


def test_views_are_taken_of_device_memory(gpu, rng):
    x = ex.matrix("x")
    a = rng.uniform(-1, 1, (6, 8))
    outputs = [x.T * 2, x[1::2, ::-3] + 1, x.reshape((4, 12)).sum(axis=1), ex.broadcast_to(x[0], (3, 8)) * x[1]]
    run(gpu, [x], outputs, a)


def test_a_view_of_an_input_is_returned_as_a_copy_of_its_own(gpu, rng):
    x = ex.matrix("x")
    a = ex.cuda.to_device(rng.uniform(size=(3, 4)))
    f = ex.function([x], [x, x.T, x[::2]], device="cuda")
    same, transposed, rows = f(a)
    for result, expected in [(same, a.get()), (transposed, a.get().T), (rows, a.get()[::2])]:
        assert result.ptr != a.ptr and result.flags.c_contiguous and result.owner is not a
        np.testing.assert_array_equal(result.get(), expected)


def test_reshape_of_a_strided_array_copies_on_the_device(gpu, rng):
    x = ex.matrix("x")
    a = rng.uniform(size=(4, 6))
    before = len(gpu.launches)
    run(gpu, [x], x.T.reshape((3, 8)) + 1, a)
    names = [name for name, _, _ in gpu.launches[before:]]
    assert any(name.startswith("exprc_copy_u64_") for name in names), names


def test_matmul_and_indexing_run_on_the_host(gpu, rng):
    x, w, i = ex.matrix("x"), ex.matrix("w"), ex.lvector("i")
    a, b = rng.uniform(size=(4, 5)), rng.uniform(size=(5, 3))
    run(gpu, [x, w, i], [ex.tanh(x @ w), x[i] * 2], a, b, np.array([3, 0, 3]))


def test_lengths_are_computed_on_the_host(gpu, rng):
    x = ex.vector("x")
    before = len(gpu.launches)
    run(gpu, [x], [x.shape[0] * 2 - 1, x[: x.shape[0] - 1] * 3], rng.uniform(size=5))
    launched = [name for name, _, _ in gpu.launches[before:]]
    assert len(launched) == 1 and "mul_subtensor_x" in launched[0], launched  # x.shape[0] * 2 - 1 was not


def test_device_inputs_are_used_in_place(gpu, rng):
    """A device array, and any object with __cuda_array_interface__, is read where it is."""
    x = ex.vector("x")
    a = ex.cuda.to_device(rng.uniform(size=10))

    class Foreign:
        def __init__(self, array):
            self.array = array
            self.__cuda_array_interface__ = array.__cuda_array_interface__

    f = ex.function([x], x * 2, device="cuda")
    uploads_before = gpu.pool.stats()["driver_allocations"] + gpu.pool.stats()["reused"]
    np.testing.assert_array_equal(f(a).get(), a.get() * 2)
    np.testing.assert_array_equal(f(Foreign(a)).get(), a.get() * 2)
    # one allocation per call (the output), none for the input
    assert gpu.pool.stats()["driver_allocations"] + gpu.pool.stats()["reused"] == uploads_before + 2


def test_outputs_come_from_the_pool_and_return_to_it(gpu, rng):
    x = ex.vector("x")
    f = ex.function([x], ex.exp(x) + 1, device="cuda")
    data = rng.uniform(size=1000)
    f(data)  # the result is dropped at once: its block goes back to the pool
    allocations = gpu.pool.stats()["driver_allocations"]
    for _ in range(5):
        f(data)
    assert gpu.pool.stats()["driver_allocations"] == allocations
    assert gpu.pool.stats()["reused"] >= 10  # the uploaded input and the output, each call


def test_bad_inputs_are_clear_errors(gpu, rng):
    x, y = ex.vector("x"), ex.vector("y")
    f = ex.function([x, y], x + y, device="cuda")
    with pytest.raises(ValueError, match="shapes do not broadcast"):
        f(np.zeros(3), np.zeros(4))
    with pytest.raises(TypeError, match="input 'x'.*expected float64 data, got a float32 device array"):
        f(ex.cuda.to_device(np.zeros(3, np.float32)), np.zeros(3))
    with pytest.raises(TypeError, match="input 'y'.*2-d device array"):
        f(np.zeros(3), ex.cuda.to_device(np.zeros((3, 1))))
    v = ex.fvector("v")
    with pytest.raises(TypeError, match="input 'v'.*expected float32 data, got float64"):
        ex.function([v], v + 1, device="cuda")(np.zeros(3))  # NumPy data is checked as on the CPU
    with pytest.raises(ValueError, match="backend='c' picks a CPU back end"):
        ex.function([x], x, device="cuda", backend="c")


def test_zero_size_and_zero_d(gpu):
    x, s = ex.matrix("x"), ex.scalar("s")
    run(gpu, [x, s], [x * s, x.sum(axis=0), (x + 1).sum(), s * 2], np.zeros((0, 3)), np.float64(1.5))


def test_the_source_is_cuda_named_after_the_expression(gpu):
    x = ex.vector("x")
    f = ex.function([x], ex.exp(x).sum(), device="cuda")
    assert 'extern "C" __global__' in f.source and "k0_sum_exp_x" in f.source
    assert "CUDA kernel k0_sum_exp_x" in f.source and f.backend == "cuda"
    assert "on cuda" in repr(f)
