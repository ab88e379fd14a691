"""Replayed calls on device="cuda" (codegen/cuda/replay.py), over the stand-in driver: the
stand-in computes every launch from the arguments it is given, so a slot left with an old
address, or an argument taken for an address that is not one, gives wrong numbers."""

import numpy as np
import pytest

import exprc as ex
from exprc.codegen.cuda import replay as cuda_replay
from exprc.codegen.cuda.array import to_device
from exprc.codegen.cuda.pool import device_pool
from tests.codegen.cuda_fake import FakeGpu


@pytest.fixture
def gpu(monkeypatch):
    return FakeGpu(monkeypatch)


def _compiled(f):
    return f._program.compiled


def _calls(f, make_inputs, expected, count=4):
    """Call ``f`` ``count`` times on new inputs, each checked against ``expected(*host inputs)``."""
    for _ in range(count):
        host = make_inputs()
        got = f(*(to_device(h) for h in host))
        got = got if isinstance(got, list) else [got]
        for g, e in zip(got, expected(*host)):
            assert g.dtype == np.asarray(e).dtype
            np.testing.assert_allclose(g.get(), e, rtol=1e-12)


def test_the_first_call_is_recorded_and_later_ones_replayed(gpu, rng):
    x, y = ex.matrix("x"), ex.vector("y")
    f = ex.function([x, y], [ex.exp(x) * y + 1, (x * y).sum(axis=1)], device="cuda")

    def inputs():
        return rng.standard_normal((5, 7)), rng.standard_normal(7)

    _calls(f, inputs, lambda a, b: [np.exp(a) * b + 1, (a * b).sum(axis=1)], count=1)
    assert len(_compiled(f).replays) == 1
    first_launches = list(gpu.launches)
    gpu.launches.clear()
    _calls(f, inputs, lambda a, b: [np.exp(a) * b + 1, (a * b).sum(axis=1)], count=3)
    # A replay launches the same kernels, with the same grids, as a call step by step.
    assert len(first_launches) == 2 and gpu.launches == first_launches * 3


def test_each_layout_is_recorded_on_its_own(gpu, rng):
    x = ex.matrix("x")
    f = ex.function([x], ex.tanh(x) * 2, device="cuda")
    layouts = [
        (lambda d: d, lambda h: h),
        (lambda d: d.T, lambda h: h.T),
        (lambda d: d.view((6, 4), (64, 16)), lambda h: h[:, ::2]),
    ]  # every other column
    for _ in range(3):
        for on_device, on_host in layouts:
            host = rng.standard_normal((6, 8))
            np.testing.assert_allclose(f(on_device(to_device(host))).get(), np.tanh(on_host(host)) * 2)
    assert len(_compiled(f).replays) == 3


def test_results_are_new_arrays_and_intermediates_go_back_to_the_pool(gpu, rng):
    x = ex.vector("x")
    f = ex.function([x], [ex.exp(x).sum() * x, ex.sin(x)], device="cuda")
    a = to_device(rng.standard_normal(100))
    kept = [f(a) for _ in range(4)]
    assert len(_compiled(f).replays) == 1
    pointers = {r.ptr for outs in kept for r in outs}
    assert len(pointers) == 8, "every call's results have memory of their own"
    for outs in kept:
        np.testing.assert_allclose(outs[1].get(), np.sin(a.get()))
    in_use = device_pool(0).stats()["in_use"]
    f(a)  # its results dropped at once: the intermediate sum too
    assert device_pool(0).stats()["in_use"] == in_use


def test_matrix_products_and_row_chains_replay(gpu, rng):
    a, b = ex.matrix("a"), ex.matrix("b")
    f = ex.function([a, b], ex.softmax(a @ b, axis=1), device="cuda")

    def softmax(z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    _calls(f, lambda: (rng.standard_normal((4, 6)), rng.standard_normal((6, 5))), lambda p, q: [softmax(p @ q)])
    assert len(_compiled(f).replays) == 1


def test_a_training_step_replays_its_updates_in_place(gpu, rng):
    x, y = ex.matrix("x"), ex.vector("y")
    w = ex.shared(rng.standard_normal(3), name="w")
    cost = ((x @ w - y) ** 2).mean()
    step = ex.function([x, y], cost, updates=[(w, w - 0.1 * ex.grad(cost, w))], device="cuda")
    xv, yv = rng.standard_normal((8, 3)), rng.standard_normal(8)
    xd, yd = to_device(xv), to_device(yv)
    wv = w.get_value()
    for _ in range(5):
        loss = step(xd, yd)
        r = xv @ wv - yv
        np.testing.assert_allclose(loss.get(), (r**2).mean(), rtol=1e-12)
        wv = wv - 0.1 * (2 * xv.T @ r / len(r))
    assert len(_compiled(step).replays) == 1
    np.testing.assert_allclose(w.get_value(), wv, rtol=1e-12)


def test_calls_that_copy_are_not_replayed(gpu, rng):
    x = ex.vector("x")
    # argmax runs on the host: its input is copied back, which a replay would skip.
    f = ex.function([x], ex.argmax(x) + 1, device="cuda")
    for _ in range(4):
        v = rng.standard_normal(20)
        assert int(f(to_device(v)).get()) == int(np.argmax(v)) + 1
    assert list(_compiled(f).replays.values()) == [None]
    # A host value as an input is copied over by each call: nothing is recorded.
    s = ex.scalar("s")
    g = ex.function([x, s], x * s, device="cuda")
    for k in range(3):
        v = rng.standard_normal(5)
        np.testing.assert_allclose(g(to_device(v), float(k)).get(), v * k)
    assert _compiled(g).replays == {}


def test_a_recording_notes_what_the_call_did(gpu):
    a = to_device(np.arange(4.0))
    with cuda_replay.Recorder([a]) as recorder:
        with pytest.raises(RuntimeError, match="already under way"):
            cuda_replay.Recorder([a]).__enter__()
        x = ex.vector("x")
        out = ex.function([x], x * 2, device="cuda")._program.compiled.run_steps([a])
    assert [kind for kind, _ in recorder.order] == ["allocation", "launch"]
    replay = recorder.replay(out)
    assert replay is not None and replay.results == [("allocation", 0)]
    np.testing.assert_allclose(replay([a])[0].get(), [0.0, 2.0, 4.0, 6.0])
    assert cuda_replay.signature([a, np.zeros(3)]) is None
    assert cuda_replay.signature([a]) == cuda_replay.signature([to_device(np.ones(4))])
    assert cuda_replay.signature([a]) != cuda_replay.signature([to_device(np.ones(5))])


def test_an_mlp_step_replays_though_lengths_feed_kernels_and_views(gpu, rng):
    """The mean's length is read by a kernel (copied over) and by a broadcast's shape (on the
    host): the host keeps its value, so nothing comes back from the device and the step replays."""
    X, Y = rng.standard_normal((16, 8)), np.eye(3)[rng.integers(0, 3, 16)]
    params = [rng.standard_normal((8, 5)) * 0.3, np.zeros(5), rng.standard_normal((5, 3)) * 0.3, np.zeros(3)]
    shared = [ex.shared(p.copy(), name=n) for p, n in zip(params, ("W1", "b1", "W2", "b2"))]
    W1, b1, W2, b2 = shared
    x, y = ex.matrix("x"), ex.matrix("y")
    loss = -(y * ex.log_softmax(ex.tanh(x @ W1 + b1) @ W2 + b2, axis=1)).sum(axis=1).mean()
    step = ex.function(
        [x, y], loss, updates=[(p, p - 0.5 * g) for p, g in zip(shared, ex.grad(loss, shared))], device="cuda"
    )
    reference = ex.function(
        [x, y], loss, updates=[(p, p - 0.5 * g) for p, g in zip(shared, ex.grad(loss, shared))], backend="numpy"
    )
    xd, yd = to_device(X), to_device(Y)
    losses = [float(step(xd, yd).get()) for _ in range(4)]
    assert list(_compiled(step).replays.values()) != [None]
    for p, value in zip(shared, params):
        p.set_value(value.copy())
    np.testing.assert_allclose(losses, [float(reference(X, Y)) for _ in range(4)], rtol=1e-12)
