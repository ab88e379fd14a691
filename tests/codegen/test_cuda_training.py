"""Shared variables and updates on device="cuda", over the stand-in driver
(tests/codegen/cuda_fake.py): a training step runs on the GPU, its updates are
written to the variables' device mirrors (in place where safe), nothing goes
back to the host during the step, and the host value follows when asked for."""

import pickle
import threading

import numpy as np
import pytest

import exprc as ex
from exprc.codegen.cuda.array import DeviceArray, to_device
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


# --- shared state that stays consistent (the host side is in tests/test_shared_state.py) ---------


def test_updates_from_several_threads_are_each_applied_whole_on_the_device(gpu):
    w = ex.shared(np.zeros(1000), name="w")
    step = ex.function([], [], updates={w: w + 1.0}, device="cuda")
    spread = ex.function([], w.max() - w.min(), device="cuda")
    seen = []

    def update():
        for _ in range(150):
            step()

    def read():
        for _ in range(100):
            seen.append(float(spread().get()))

    threads = [threading.Thread(target=job) for job in (update, update, read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert seen == [0.0] * 100, "a reader saw an update half written"
    np.testing.assert_array_equal(w.get_value(), np.full(1000, 300.0))


def test_mirrors_sharing_memory_are_not_updated_in_place_over_each_other(gpu):
    a0 = np.arange(4.0)
    a, b = ex.shared(a0, name="a"), ex.shared(a0, name="b")
    b.set_device_value(a.device_value(to_device))  # two variables, one device array
    step = ex.function([], [], updates=[(a, a + b[::-1]), (b, b * 2.0)], device="cuda")
    step()
    np.testing.assert_array_equal(a.get_value(), a0 + a0[::-1])
    np.testing.assert_array_equal(b.get_value(), a0 * 2.0)
    step()  # apart now: written in place again, and still right
    np.testing.assert_array_equal(a.get_value(), (a0 + a0[::-1]) + (a0 * 2.0)[::-1])
    np.testing.assert_array_equal(b.get_value(), a0 * 4.0)


@pytest.mark.parametrize("view", ["itself", "reversed"])
def test_a_device_input_aliasing_the_updated_mirror(gpu, view):
    w = ex.shared(np.arange(6.0), name="w")
    x = ex.vector("x")
    step = ex.function([x], (x * 1.0).sum(), updates=[(w, w * 3.0 + x[::-1])], device="cuda")
    step(np.zeros(6))  # written in place: the mirror is w's array from now on
    before = w.get_value()
    mirror = w.device_value(to_device)
    arg = mirror if view == "itself" else mirror.view((6,), (-8,), 40)
    arg_before = before if view == "itself" else before[::-1]
    total = step(arg)
    np.testing.assert_array_equal(total.get(), arg_before.sum())
    np.testing.assert_array_equal(w.get_value(), before * 3.0 + arg_before[::-1])
    # (The stand-in computes a kernel whole, so only this shows that nothing was written over.)
    assert w.device_value(to_device) is not mirror, "computed into a fresh array"


def test_a_call_with_inputs_sharing_memory_is_not_replayed_for_others(gpu):
    x, y = ex.vector("x"), ex.vector("y")
    f = ex.function([x, y], x - y, device="cuda")
    a = to_device(np.arange(4.0))
    np.testing.assert_array_equal(f(a, a).get(), np.zeros(4))
    b, c = to_device(np.arange(4.0)), to_device(np.ones(4))
    for _ in range(2):  # recorded, then replayed
        np.testing.assert_array_equal(f(b, c).get(), np.arange(4.0) - 1.0)
    np.testing.assert_array_equal(f(a, a).get(), np.zeros(4))


@pytest.mark.parametrize("n", [2**32, 2**32 + 1])
def test_an_index_space_beyond_int64_raises_as_numpy_does(gpu, n):
    x, y = ex.vector("x"), ex.vector("y")
    # Broadcast inputs: stride 0, one element each on the host and on the device.
    xv, yv = np.broadcast_to(np.ones(1), (2**32,)), np.broadcast_to(np.ones(1), (n,))
    with pytest.raises(ValueError, match="iterator is too large") as numpy_error:
        (xv[:, None] * yv[None, :]).sum()
    for out in [(x[:, None] * y[None, :]).sum(), x[:, None] * y[None, :] + 1.0]:
        with pytest.raises(ValueError, match=str(numpy_error.value)) as error:
            ex.function([x, y], out, device="cuda")(xv, yv)
        assert str(n) in str(error.value)
    assert gpu.launches == []


def test_an_output_beyond_the_largest_size_raises_as_numpy_does(gpu):
    x, y = ex.vector("x"), ex.vector("y")
    xv = np.broadcast_to(np.ones(1), (2**31,))
    with pytest.raises(ValueError, match="array is too big") as numpy_error:
        np.multiply(xv[:, None], xv[None, :])
    message = str(numpy_error.value).split(";")[0]
    with pytest.raises(ValueError, match=message):
        ex.function([x, y], x[:, None] * y[None, :], device="cuda")(xv, xv)
    assert gpu.launches == []
    # Within the limits, a broadcast input is copied over as one element, and computes.
    small = ex.function([x, y], (x[:, None] * y[None, :]).sum(), device="cuda")
    assert small(np.broadcast_to(np.full(1, 2.0), (3,)), np.arange(4.0)).get() == 2.0 * 3 * 6
