"""The CUDA driver bindings, as far as they can be checked without a GPU: the
declarations parse, a missing driver is reported (never raised) by is_available,
and failures carry the driver's own error name and description."""

import pytest

from exprc.codegen.cuda import driver as cuda_driver


@pytest.fixture
def no_driver(monkeypatch):
    """The driver looked for under a name no machine has."""
    monkeypatch.setattr(cuda_driver, "LIBRARY", "libcuda-not-installed.so.1")
    cuda_driver.reset()
    yield
    cuda_driver.reset()


def test_declarations_parse_with_the_driver_abi():
    ffi = cuda_driver.ffi()
    assert ffi.sizeof("CUdeviceptr") == 8
    launch = ffi.typeof(
        "CUresult(*)(CUfunction, unsigned int, unsigned int, unsigned int, unsigned int, "
        "unsigned int, unsigned int, unsigned int, CUstream, void **, void **)"
    )
    assert launch.kind == "function"
    # The memory functions are declared under the names the driver exports for 64-bit pointers.
    for name in ("cuMemAlloc", "cuMemFree", "cuMemcpyHtoD", "cuMemcpyDtoH", "cuMemcpyDtoD"):
        assert f" {name}_v2(" in cuda_driver.CDEF and f" {name}(" not in cuda_driver.CDEF


def test_is_available_is_false_without_a_driver(no_driver):
    assert cuda_driver.is_available() is False
    reason = cuda_driver.unavailable_reason()
    assert reason.startswith("no CUDA driver") and "libcuda-not-installed.so.1" in reason
    with pytest.raises(cuda_driver.CudaUnavailable, match="no CUDA driver"):
        cuda_driver.compute_capability(0)


def test_is_available_agrees_with_the_reason():
    available = cuda_driver.is_available()
    assert isinstance(available, bool)
    assert available == (cuda_driver.unavailable_reason() is None)


class FakeDriver:
    """Answers cuGetErrorName / cuGetErrorString as the driver does, for one error."""

    def __init__(self):
        ffi = cuda_driver.ffi()
        self.texts = {
            "name": ffi.new("char[]", b"CUDA_ERROR_OUT_OF_MEMORY"),
            "string": ffi.new("char[]", b"out of memory"),
        }

    def cuGetErrorName(self, code, out):
        if code != 2:
            return 1  # CUDA_ERROR_INVALID_VALUE, as the driver answers for an unknown code
        out[0] = self.texts["name"]
        return 0

    def cuGetErrorString(self, code, out):
        if code != 2:
            return 1
        out[0] = self.texts["string"]
        return 0


def test_errors_carry_the_driver_message():
    fake = FakeDriver()
    assert cuda_driver.error_message(2, fake) == "CUDA_ERROR_OUT_OF_MEMORY: out of memory"
    with pytest.raises(
        cuda_driver.CudaError, match="cuMemAlloc_v2 failed: CUDA_ERROR_OUT_OF_MEMORY: out of memory"
    ) as info:
        cuda_driver.check(2, "cuMemAlloc_v2", fake)
    assert info.value.code == 2 and info.value.name == "CUDA_ERROR_OUT_OF_MEMORY"
    cuda_driver.check(0, "cuMemAlloc_v2", fake)  # success raises nothing


def test_an_error_the_driver_cannot_name_gives_its_number():
    assert cuda_driver.error_message(999, FakeDriver()) == "CUresult 999"
