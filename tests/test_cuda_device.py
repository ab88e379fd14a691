"""``exprc.cuda.is_available()`` and ``exprc.function(..., device="cuda")`` where CUDA
cannot run: a clear error naming what is missing (the driver, a GPU, NVRTC)."""

import numpy as np
import pytest

import exprc as ex
from exprc.codegen.cuda import driver as cuda_driver
from exprc.codegen.cuda import nvrtc

NO_DRIVER = "no CUDA driver (libcuda.so.1 cannot be loaded: not found)"
NO_GPU = "no GPU (cuInit: CUDA_ERROR_NO_DEVICE: no CUDA-capable device is detected)"
NO_NVRTC = "NVRTC (the nvidia-cuda-nvrtc package) is not installed; install it with `pip install exprc[cuda]`"


@pytest.fixture
def machine(monkeypatch):
    """Set what this machine lacks: ``machine(driver=..., nvrtc=...)`` with None for present."""

    def set_missing(driver=None, compiler=None):
        monkeypatch.setattr(cuda_driver, "unavailable_reason", lambda: driver)
        monkeypatch.setattr(nvrtc, "unavailable_reason", lambda: compiler)

    return set_missing


def _cuda_error(x):
    with pytest.raises(ex.cuda.CudaUnavailableError) as info:
        ex.function([x], ex.exp(x), device="cuda")
    return str(info.value)


@pytest.mark.parametrize(
    "driver, compiler, named, not_named",
    [
        (NO_DRIVER, None, ["no CUDA driver", "libcuda.so.1"], ["NVRTC"]),
        (NO_GPU, None, ["no GPU", "CUDA_ERROR_NO_DEVICE"], ["NVRTC"]),
        (None, NO_NVRTC, ["NVRTC", "pip install exprc[cuda]"], ["driver", "GPU"]),
        (NO_DRIVER, NO_NVRTC, ["no CUDA driver", "pip install exprc[cuda]"], []),
    ],
)
def test_device_cuda_names_what_is_missing(machine, driver, compiler, named, not_named):
    machine(driver, compiler)
    assert ex.cuda.is_available() is False
    message = _cuda_error(ex.vector("x"))
    assert message.startswith("device='cuda' cannot be used here: ")
    for text in named:
        assert text in message
    for text in not_named:
        assert text not in message


def test_with_everything_there_cuda_is_available(machine, monkeypatch):
    machine(None, None)
    assert ex.cuda.is_available() is True and ex.cuda.missing() == []
    built = []

    class Program:  # stands for the CUDA program, which needs a GPU
        def __init__(self, inputs, outputs, in_place=(), allow_tf32=False):
            built.append((inputs, outputs))

    monkeypatch.setattr("exprc.codegen.cuda.program.CudaProgram", Program)
    x = ex.vector("x")
    f = ex.function([x], x + 1, device="cuda")
    assert f.backend == "cuda" and built == [([x], f.outputs)]


def test_is_available_never_raises(monkeypatch):
    def broken():
        raise OSError("a damaged installation")

    monkeypatch.setattr(cuda_driver, "unavailable_reason", broken)
    assert ex.cuda.is_available() is False


def test_this_machine_says_why_without_being_told():
    """No mocking: whatever this machine lacks is reported, and is_available agrees."""
    if ex.cuda.is_available():
        pytest.skip("CUDA is available here")
    message = _cuda_error(ex.vector("x"))
    assert any(reason in message for reason in ex.cuda.missing())


def test_unknown_device_and_cpu():
    x = ex.vector("x")
    with pytest.raises(ValueError, match="device 'tpu' is not known"):
        ex.function([x], x + 1, device="tpu")
    f = ex.function([x], x + 1, device="cpu", backend="numpy")
    np.testing.assert_array_equal(f(np.array([1.0, 2.0])), [2.0, 3.0])
