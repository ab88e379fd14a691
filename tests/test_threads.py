"""exprc's thread pool: the thread count (API, environment, threadpoolctl), results that do not
depend on it bit for bit, several calling threads, fork, and no change to the environment."""

import multiprocessing
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import exprc as ex
from exprc.codegen.c import pool
from tests.codegen.test_row_pass import logistic, row_passes

COUNTS = (1, 2, 3, 8)


@pytest.fixture(autouse=True)
def _threads_restored():
    before = ex.get_num_threads()
    yield
    ex.set_num_threads(before)


def _softmax(x, axis):
    e = ex.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _np_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _cases(rng):
    """``(name, function, arguments, NumPy's results)``: reductions over every axis and over
    some, a softmax, the kernels a GPU row chain fuses, and a row pass, each big enough to be
    cut into many pieces."""
    v, m = ex.vector("v"), ex.matrix("m")
    finite = rng.standard_normal(300_001)
    nans = finite.copy()
    nans[[5, 200_000]] = np.nan
    near_one = 1 + rng.standard_normal(300_001) * 1e-6
    wide = rng.standard_normal((3, 150_001))  # blocks are ranges of a row
    tall = rng.standard_normal((40_000, 7))  # blocks are runs of rows
    a = rng.standard_normal((700, 600))
    total = ex.exp(m - m.max(axis=1, keepdims=True)).sum(axis=1, keepdims=True)
    np_total = np.exp(a - a.max(axis=1, keepdims=True)).sum(axis=1, keepdims=True)
    X, w, t = rng.standard_normal((20_000, 60)), rng.standard_normal(60), rng.choice([-1.0, 1.0], 20_000)
    z = -t * (X @ w)
    cost = np.mean(np.log1p(np.exp(z))) + 0.01 * np.sum(w**2)
    grad = X.T @ (-t / (1 + np.exp(-z)) / len(t)) + 0.02 * w
    row_pass = ex.function(*logistic())
    assert row_passes(row_pass)
    return [
        ("sum and mean", ex.function([v], [v.sum(), v.mean()]), [finite], [finite.sum(), finite.mean()]),
        ("prod", ex.function([v], v.prod()), [near_one], [np.prod(near_one)]),
        ("max and min with NaN", ex.function([v], [v.max(), v.min()]), [nans], [np.nan, np.nan]),
        ("ranges of rows", ex.function([m], [m.max(), m.min(), m.sum()]), [wide], [wide.max(), wide.min(), wide.sum()]),
        ("runs of rows", ex.function([m], [m.sum(), m.mean()]), [tall], [tall.sum(), tall.mean()]),
        (
            "over some axes",
            ex.function([m], [m.sum(axis=1), m.sum(axis=0), m.max(axis=0)]),
            [a],
            [a.sum(axis=1), a.sum(axis=0), a.max(axis=0)],
        ),
        ("softmax", ex.function([m], _softmax(m, 1)), [a], [_np_softmax(a, 1)]),
        ("a row chain's kernels", ex.function([m], [ex.exp(m) / total, total]), [a], [np.exp(a) / np_total, np_total]),
        ("row pass", row_pass, [X, w, t], [cost, grad]),
    ]


def _bits(results):
    results = results if isinstance(results, list) else [results]
    return [np.asarray(r).tobytes() for r in results]


@pytest.mark.slow
def test_results_are_the_same_bits_on_any_number_of_threads(rng):
    for name, f, args, expected in _cases(rng):
        runs = {}
        for n in COUNTS:
            ex.set_num_threads(n)
            runs[n] = f(*args)
        got = runs[1] if isinstance(runs[1], list) else [runs[1]]
        for value, truth in zip(got, expected):
            np.testing.assert_allclose(value, truth, rtol=1e-9, atol=1e-12, err_msg=name)
        for n in COUNTS[1:]:
            assert _bits(runs[n]) == _bits(runs[1]), f"{name}: {n} threads differ from one"
    assert pool.workers() >= 2  # the runs with more threads did use the pool


def test_several_python_threads_calling_one_function(rng):
    ex.set_num_threads(2)
    x = ex.vector("x")
    f = ex.function([x], [ex.exp(-x * x).sum(), ex.sin(x) * 2])
    data = [rng.standard_normal(200_000 + 1000 * i) for i in range(8)]

    def calls(a):
        for _ in range(10):
            total, sines = f(a)
            np.testing.assert_allclose(total, np.exp(-a * a).sum(), rtol=1e-10)
            np.testing.assert_allclose(sines, np.sin(a) * 2, rtol=1e-15)
        return True

    with ThreadPoolExecutor(8) as executor:
        assert all(executor.map(calls, data))


def _child(f, a, connection):
    total = f(a)
    connection.send((float(total), pool.workers()))
    connection.close()


def test_a_forked_child_runs_kernels_on_threads_of_its_own(rng):
    ex.set_num_threads(2)
    x = ex.vector("x")
    f = ex.function([x], ex.cos(x).sum())
    a = rng.standard_normal(10**6)
    expected = f(a)
    assert pool.workers() >= 1
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(f, a, send))
    child.start()
    try:
        assert receive.poll(60), "the child did not finish its kernel within 60 s"
        total, workers = receive.recv()
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0
    assert total == expected and workers >= 1  # the child made its own workers


def test_set_num_threads_and_the_context_manager():
    ex.set_num_threads(3)
    assert ex.get_num_threads() == 3
    with ex.num_threads(1):
        assert ex.get_num_threads() == 1
        with ex.num_threads(2):
            assert ex.get_num_threads() == 2
        assert ex.get_num_threads() == 1
    assert ex.get_num_threads() == 3
    with pytest.raises(ValueError, match="at least 1"):
        ex.set_num_threads(0)
    with pytest.raises(TypeError, match="must be an int"):
        ex.set_num_threads(2.5)


def test_the_environment_chooses_the_default():
    assert pool.default_threads({"EXPRC_NUM_THREADS": "3", "OMP_NUM_THREADS": "5"}) == 3
    assert pool.default_threads({"OMP_NUM_THREADS": "5,2"}) == 5
    assert pool.default_threads({"OMP_NUM_THREADS": "many"}) == pool.cpu_count()
    assert pool.default_threads({}) == pool.cpu_count()
    with pytest.raises(ValueError, match="EXPRC_NUM_THREADS"):
        pool.default_threads({"EXPRC_NUM_THREADS": "none"})


@pytest.mark.slow
def test_a_new_process_reads_the_environment():
    code = "import exprc as ex; x = ex.vector('x'); f = ex.function([x], x.sum()); print(ex.get_num_threads())"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for env, expected in (({"EXPRC_NUM_THREADS": "3", "OMP_NUM_THREADS": "2"}, "3"), ({"OMP_NUM_THREADS": "2,1"}, "2")):
        clean = {k: v for k, v in os.environ.items() if k not in ("EXPRC_NUM_THREADS", "OMP_NUM_THREADS")}
        done = subprocess.run(
            [sys.executable, "-c", code], env={**clean, **env}, cwd=root, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.split()[-1] == expected


def test_threadpoolctl_sees_and_limits_the_pool():
    threadpoolctl = pytest.importorskip("threadpoolctl", minversion="3.5")
    x = ex.vector("x")
    ex.function([x], ex.tanh(x) * 3)  # loads the run time
    from exprc.codegen.c import build

    if not os.path.basename(build.runtime_library().path).startswith(build.RUNTIME_PREFIX):
        pytest.skip("the cache names the run-time library without the prefix threadpoolctl looks for")
    ex.set_num_threads(2)
    (info,) = [i for i in threadpoolctl.threadpool_info() if i["internal_api"] == "exprc"]
    assert info["user_api"] == "openmp" and info["num_threads"] == 2
    with threadpoolctl.threadpool_limits(1):
        assert ex.get_num_threads() == 1
    assert ex.get_num_threads() == 2
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert ex.get_num_threads() == 1
    assert ex.get_num_threads() == 2


def test_compiling_and_calling_leave_the_environment_alone(rng):
    before = dict(os.environ)
    x = ex.vector("x")
    f = ex.function([x], ex.exp(x).sum() + 11.0)
    f(rng.standard_normal(10**5))
    assert dict(os.environ) == before
