"""The CUDA back end compiles kernels that differ only in constants once
(exprc.codegen.cuda.render.distinct): one ``__global__`` function, launched for each."""

import numpy as np
import pytest

import exprc as ex
from tests.codegen import cuda_emulator
from tests.codegen.cuda_fake import FakeGpu


def _graph():
    a, b = ex.vector("a"), ex.vector("b")
    return [a, b], [a * 0.3 + b * 2.5, a * 0.7 + b * 1.25, ex.exp(a) * 0.5]


def _check(f, inputs, outputs, rng):
    av, bv = rng.standard_normal(300), rng.standard_normal(300)
    expected = ex.function(inputs, outputs, backend="numpy")(av, bv)
    for got, want in zip(f(av, bv), expected):
        np.testing.assert_allclose(got.get(), want, rtol=1e-13)


def test_kernels_differing_in_constants_are_one_cuda_function(monkeypatch, rng):
    gpu = FakeGpu(monkeypatch)
    inputs, outputs = _graph()
    f = ex.function(inputs, outputs, device="cuda")
    compiled = f._program.compiled
    names = [k.name for k in compiled.program.kernels]
    assert len(names) == 3
    assert compiled.source.count("__global__") == 2, compiled.source
    # The second kernel runs the first one's function, with its own constants.
    assert compiled.functions[names[1]] is compiled.functions[names[0]]
    assert compiled.functions[names[2]] is not compiled.functions[names[0]]
    _check(f, inputs, outputs, rng)
    assert [name for name, *_ in gpu.launches[-3:]] == [names[0], names[0], names[2]]


@pytest.mark.skipif(cuda_emulator.UNAVAILABLE is not None, reason=str(cuda_emulator.UNAVAILABLE))
def test_the_shared_cuda_function_computes_each_kernel(monkeypatch, rng):
    cuda_emulator.EmulatedGpu(monkeypatch)
    inputs, outputs = _graph()
    _check(ex.function(inputs, outputs, device="cuda"), inputs, outputs, rng)
