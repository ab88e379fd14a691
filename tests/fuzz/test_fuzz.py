"""The short fuzz run of every test run, and the fuzzer's own machinery: shrinking, printing."""

import numpy as np
import pytest

import exprc as ex
from tests.codegen.cuda_fake import FakeGpu
from tests.test_check import wrong_kernel

from .generate import Case, Input, Node, generate, reference
from .run import check_case, describe, fuzz, shrink

#: The short run: CHUNKS runs of GRAPHS graphs each (chunks spread over pytest-xdist's workers);
#: about four minutes of CPU with a cold compile cache (two on two workers).
CHUNKS, GRAPHS = 8, 40


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_short_fuzz_run(chunk):
    report = fuzz(GRAPHS, seed=1000 + chunk)
    assert report.graphs == GRAPHS and report.invalid == 0
    assert not report.failures, "\n".join(describe(*failure) for failure in report.failures)


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_short_fuzz_run_on_the_stand_in_gpu(chunk, monkeypatch):
    """Graphs on device="cuda" over the stand-in driver, which computes every launch from
    its packed arguments: the launcher's planning (chains, views, host steps, replays) on
    shapes no test chose."""
    FakeGpu(monkeypatch)
    report = fuzz(GRAPHS, seed=2000 + chunk, backends=("cuda",))
    assert report.graphs == GRAPHS and report.invalid == 0
    assert not report.failures, "\n".join(describe(*failure) for failure in report.failures)


def test_generation_is_repeatable_and_valid():
    for seed in range(5):
        case = generate(seed)
        assert case.code() == generate(seed).code()
        reference(case)  # runs


def _case_with_exp():
    x = Input("x0", "float64", (4, 3), (None, None), "strided", 7)
    y = Input("x1", "float64", (3,), (None,), "contiguous", 8)
    nodes = {
        "v2": Node("ex.exp({0})", ("x0",)),
        "v3": Node("{0} * {1}", ("v2", "x1")),
        "v4": Node("{0}.sum(axis=0, keepdims=False)", ("v3",)),
        "v5": Node("ex.tanh({0}) + {1}", ("v4", "x1")),
        "v6": Node("{0}.max(axis=None, keepdims=False)", ("v5",)),
    }
    return Case([x, y], nodes, ["v4", "v6"])


def test_a_wrong_kernel_is_found_shrunk_and_printed_as_a_program():
    hook, _ = wrong_kernel(None, "exp", "expm1")
    case = _case_with_exp()
    with hook:
        failure = check_case(case)
        assert failure is not None and failure.kind == "mismatch"
        small, small_failure = shrink(case, failure)
        assert list(small.nodes) == ["v2"] and small.outputs == ["v2"]
        assert [v.name for v in small.inputs] == ["x0"] and small.inputs[0].shape == (1, 1)
        assert small.inputs[0].layout == "contiguous"
        program = small.code()
        assert "v2 = ex.exp(x0)" in program and 'mode="check"' in program
        with pytest.raises(ex.CheckError, match="computes exp\\(x0\\)"):
            exec(program, {})
    exec(program, {})  # without the wrong kernel the program passes
    assert "case 5: mismatch on c" in describe(5, small, small_failure)


def test_printed_values_are_the_case_values():
    case = _case_with_exp()
    namespace = {}
    exec(case.code().rsplit("\n", 1)[0], namespace)  # all but the call
    for var in case.inputs:
        given = namespace[f"{var.name}_value"]
        np.testing.assert_array_equal(given, var.value())
        assert given.strides == var.value().strides


def test_graphs_run_on_the_gpu_against_the_reference(monkeypatch):
    """Where a GPU is there (here the stand-in driver, which interprets each launch with
    NumPy), each graph runs with device="cuda" and its outputs are compared with the
    reference's."""
    from tests.codegen.cuda_fake import FakeGpu

    gpu = FakeGpu(monkeypatch)
    for seed in range(2000, 2012):
        case = generate(seed)
        failure = check_case(case, ("cuda",))
        assert failure is None, describe(seed, case, failure)
    assert len(gpu.launches) >= 12


def test_a_wrong_gpu_output_is_a_mismatch_printed_as_a_gpu_program(monkeypatch):
    from tests.codegen.cuda_fake import FakeGpu

    FakeGpu(monkeypatch)
    real = ex.function

    class Off:
        def __init__(self, array):
            self.array = array

        def get(self):
            return self.array.get() * 1.01

    def function(inputs, outputs, **options):
        f = real(inputs, outputs, **options)
        if options.get("device") != "cuda":
            return f
        return lambda *args: [Off(r) for r in f(*args)]

    monkeypatch.setattr(ex, "function", function)
    case = _case_with_exp()
    failure = check_case(case, ("cuda",))
    assert failure is not None and failure.kind == "mismatch" and failure.backend == "cuda"
    assert "output v4" in failure.message and "on the GPU" in failure.message
    text = describe(3, case, failure)
    assert 'device="cuda"' in text and "assert_allclose(got.get(), want" in text
