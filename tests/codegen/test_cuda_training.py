"""Shared variables and updates on device="cuda", over the stand-in driver
(tests/codegen/cuda_fake.py): a training step runs on the GPU, its updates are
written to the variables' device mirrors (in place where safe), nothing goes
back to the host during the step, and the host value follows when asked for."""

import pickle

import numpy as np
import pytest

import exprc as ex
from exprc.codegen.cuda.array import DeviceArray
from tests.codegen.cuda_fake import FakeGpu


@pytest.fixture
def gpu(monkeypatch):
    return FakeGpu(monkeypatch)


def _regression(rng, dtype="float64"):
    x, y = ex.tensor("x", dtype, (None, 3)), ex.tensor("y", dtype, (None,))
    w = ex.shared(rng.standard_normal(3).astype(dtype), name="w")
    b = ex.shared(np.asarray(0.5, dtype), name="b")
    cost = ((x @ w + b - y) ** 2).mean()
    gw, gb = ex.grad(cost, [w, b])
    return x, y, w, b, cost, [(w, w - 0.1 * gw), (b, b - 0.1 * gb)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_an_sgd_step_on_the_device_matches_numpy(gpu, rng, dtype):
    x, y, w, b, cost, updates = _regression(rng, dtype)
    step = ex.function([x, y], cost, updates=updates, device="cuda")
    xv, yv = rng.standard_normal((7, 3)).astype(dtype), rng.standard_normal(7).astype(dtype)
    wv, bv = w.get_value(), b.get_value()
    tol = 1e-5 if dtype == "float32" else 1e-12
    for _ in range(4):
        gpu.to_host.clear()
        loss = step(xv, yv)
        assert gpu.to_host == [], "the step copies nothing back to the host"
        assert isinstance(loss, DeviceArray)
        r = xv @ wv + bv - yv
        np.testing.assert_allclose(loss.get(), (r**2).mean(), rtol=tol)
        wv, bv = wv - 0.1 * (2 * xv.T @ r / len(r)), bv - 0.1 * (2 * r.mean())
    np.testing.assert_allclose(w.get_value(), wv, rtol=tol)
    np.testing.assert_allclose(b.get_value(), bv, rtol=tol)
    assert w.get_value().dtype == np.dtype(dtype)


def test_updates_are_written_over_the_mirror_where_safe(gpu, rng):
    x, y, w, b, cost, updates = _regression(rng)
    step = ex.function([x, y], cost, updates=updates, device="cuda")
    xv, yv = rng.standard_normal((4, 3)), rng.standard_normal(4)
    step(xv, yv)
    mirror = w.device_value(None)
    step(xv, yv)
    assert w.device_value(None) is mirror, "w's update is computed into w's own device memory"


def test_a_swap_sees_the_old_values(gpu):
    a, b = ex.shared(np.array([1.0, 2.0]), name="a"), ex.shared(np.array([3.0, 4.0]), name="b")
    swap = ex.function([], [], updates=[(a, b), (b, a)], device="cuda")
    swap()
    np.testing.assert_array_equal(a.get_value(), [3.0, 4.0])
    np.testing.assert_array_equal(b.get_value(), [1.0, 2.0])
    swap_scaled = ex.function([], [], updates=[(a, 2 * b), (b, 2 * a)], device="cuda")
    swap_scaled()
    np.testing.assert_array_equal(a.get_value(), [2.0, 4.0])
    np.testing.assert_array_equal(b.get_value(), [6.0, 8.0])
    assert a.device_value(None) is not b.device_value(None)


def test_an_output_that_is_updated_returns_the_old_value(gpu):
    count = ex.shared(np.zeros(2), name="count")
    tick = ex.function([], count, updates=[(count, count + 1)], device="cuda")
    assert tick().get().tolist() == [0.0, 0.0]
    assert tick().get().tolist() == [1.0, 1.0]
    np.testing.assert_array_equal(count.get_value(), [2.0, 2.0])


def test_host_and_device_values_stay_coherent(gpu):
    w = ex.shared(np.array([1.0, 2.0]), name="w")
    on_gpu = ex.function([], [], updates=[(w, w * 10)], device="cuda")
    on_cpu = ex.function([], [], updates=[(w, w + 1)])
    on_gpu()
    on_cpu()  # reads the GPU's value, writes the host's
    on_gpu()  # reads the CPU's value
    np.testing.assert_array_equal(w.get_value(), [110.0, 210.0])
    w.set_value([5.0, 6.0])
    on_gpu()
    np.testing.assert_array_equal(w.get_value(), [50.0, 60.0])
    on_gpu()
    copy = pickle.loads(pickle.dumps(w))
    np.testing.assert_array_equal(copy.get_value(), [500.0, 600.0])


def test_reading_shared_variables_without_updates(gpu, rng):
    w = ex.shared(rng.standard_normal((3, 2)), name="w")
    x = ex.matrix("x")
    f = ex.function([x], x @ w, device="cuda")
    xv = rng.standard_normal((4, 3))
    np.testing.assert_allclose(f(xv).get(), xv @ w.get_value(), rtol=1e-12)
    uploads = len(gpu.memory)
    f(xv)
    assert len(gpu.memory) == uploads, "the mirror is copied over once, not per call"


def test_an_update_of_the_wrong_shape_is_refused_before_any_is_written(gpu):
    loose = ex.shared(np.zeros(2), name="loose", shape=(None,))
    grow = ex.function([], [], updates=[(loose, ex.concatenate([loose, loose]))], device="cuda")
    grow()  # a length declared None may change
    assert loose.get_value().shape == (4,)
    fixed, u = ex.shared(np.zeros(2), name="fixed"), ex.shared(np.zeros(3), name="u")
    bad = ex.function([], [], updates=[(u, u + 1), (fixed, ex.concatenate([loose, loose]))], device="cuda")
    with pytest.raises(ex.ShapeError, match=r"computed shape \(8,\).*no update was written"):
        bad()
    np.testing.assert_array_equal(u.get_value(), np.zeros(3))
    np.testing.assert_array_equal(fixed.get_value(), np.zeros(2))


def test_the_demo_trains_its_mlp_on_the_device(gpu, capsys):
    """``python -m exprc.demo --device cuda``'s training, over the stand-in driver: the loss
    falls, the final loss is checked against NumPy, and a step copies only its loss back."""
    from exprc import demo

    results = []
    demo._results, saved = results, demo._results
    try:
        demo.mlp(device="cuda", epochs=2)
    finally:
        demo._results = saved
    out = capsys.readouterr().out
    assert results == [True], out
    losses = [float(line.split("loss ")[1].split()[0]) for line in out.splitlines() if "epoch" in line]
    assert len(losses) == 2 and losses[1] < losses[0], out
    assert "CUDA GEMM kernel exprc_gemm_f32" in out


def test_a_step_with_a_host_index_copies_nothing_back(gpu, rng):
    data = ex.shared(rng.standard_normal((40, 3)), name="data")
    w = ex.shared(np.zeros(3), name="w")
    i = ex.lscalar("i")
    cost = ((data[i * 10 : (i + 1) * 10] @ w - 1) ** 2).mean()
    step = ex.function([i], cost, updates=[(w, w - 0.1 * ex.grad(cost, w))], device="cuda")
    step(0)
    gpu.to_host.clear()
    step(1)
    assert gpu.to_host == []
