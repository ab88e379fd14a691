"""Device arrays and the two protocols that lend their memory, checked without a GPU.

Arrays are built over made-up device pointers (the constructor calls no driver
function); DLPack capsules are read back as a consumer reads them. NumPy's own
``from_dlpack`` consumes capsules of host memory made by the same code, which
checks the struct layout, dtype codes and strides against a real consumer.
"""

import gc
import weakref

import numpy as np
import pytest

from exprc.codegen.cuda import dlpack
from exprc.codegen.cuda.array import DeviceArray, as_device_array, from_cuda_array_interface

FAKE = 0x7F00_0000_0000  # a device address no test dereferences


class Owner:
    """Stands for the pool block that keeps an array's memory alive."""


def fake(shape, dtype="float32", strides=None, device_id=0):
    owner = Owner()
    return DeviceArray(FAKE, shape, dtype, strides, owner, device_id), weakref.ref(owner)


# --- __cuda_array_interface__ ----------------------------------------------------------------


@pytest.mark.parametrize(
    "dtype, typestr",
    [("float32", "<f4"), ("float64", "<f8"), ("int32", "<i4"), ("int64", "<i8"), ("uint8", "|u1"), ("bool", "|b1")],
)
def test_the_interface_of_a_contiguous_array(dtype, typestr):
    x, _ = fake((2, 3), dtype)
    assert x.__cuda_array_interface__ == {
        "shape": (2, 3),
        "typestr": typestr,
        "data": (FAKE, False),
        "version": 3,
        "strides": None,
        "stream": 1,
    }


def test_strides_are_given_in_bytes_for_other_layouts():
    x, _ = fake((4, 5), "float64")
    assert x.strides == (40, 8)
    assert x.T.__cuda_array_interface__["strides"] == (8, 40)
    assert x.T.__cuda_array_interface__["data"] == (FAKE, False)
    step = x.view((2, 5), (80, -8), offset=32)  # rows 0, 2; columns reversed from column 4
    interface = step.__cuda_array_interface__
    assert interface["strides"] == (80, -8) and interface["data"] == (FAKE + 32, False)
    assert interface["shape"] == (2, 5)


def test_length_one_axes_and_empty_arrays_count_as_contiguous():
    assert fake((3, 1), strides=(4, 1234))[0].__cuda_array_interface__["strides"] is None
    assert fake((0, 3), strides=(4, 8))[0].__cuda_array_interface__["strides"] is None
    assert fake((), "int64")[0].__cuda_array_interface__ == {
        "shape": (),
        "typestr": "<i8",
        "data": (FAKE, False),
        "version": 3,
        "strides": None,
        "stream": 1,
    }


def test_flags_and_extent_follow_numpy():
    for shape, strides in [((2, 3), None), ((3, 2), (4, 12)), ((2, 3), (24, -8)), ((4,), (0,)), ((2, 0), (4, 4))]:
        x = DeviceArray(FAKE, shape, "float32", strides)
        host = np.lib.stride_tricks.as_strided(np.zeros(64, np.float32)[32:], shape, x.strides)
        assert (x.flags.c_contiguous, x.flags.f_contiguous) == (host.flags.c_contiguous, host.flags.f_contiguous)
        low, high = x.extent()
        if host.size:
            addresses = [host[i + (Ellipsis,)].__array_interface__["data"][0] for i in np.ndindex(*shape)]
            start = host.__array_interface__["data"][0]
            assert (low, high) == (min(addresses) - start, max(addresses) - start + 4)
    assert DeviceArray(FAKE + 2, (3,), "float32").flags.aligned is False
    assert DeviceArray(FAKE, (3,), "float32", (6,)).flags.aligned is False


def test_a_bad_shape_or_strides_is_refused():
    with pytest.raises(ValueError, match="negative length"):
        DeviceArray(FAKE, (2, -1), "float32")
    with pytest.raises(ValueError, match="1 strides"):
        DeviceArray(FAKE, (2, 3), "float32", (4,))


def test_numpy_cannot_take_a_device_array_silently():
    x, _ = fake((3,))
    with pytest.raises(TypeError, match=r"call \.get\(\)"):
        np.asarray(x)


def test_views_keep_the_memory_alive():
    x, owner = fake((4, 4))
    view = x.T.view((2, 2), (8, 32))
    del x
    gc.collect()
    assert owner() is not None and isinstance(view.base_owner, Owner)
    del view
    gc.collect()
    assert owner() is None


# --- reading another library's arrays ------------------------------------------------------


class Foreign:
    """What CuPy, Numba or PyTorch arrays expose."""

    def __init__(self, **interface):
        self.__cuda_array_interface__ = {
            "shape": (2, 3),
            "typestr": "<f8",
            "data": (FAKE, False),
            "version": 3,
            **interface,
        }


def test_a_foreign_array_is_wrapped_without_a_copy():
    obj = Foreign(strides=(8, 16))
    x = as_device_array(obj)
    assert (x.ptr, x.shape, x.dtype, x.strides) == (FAKE, (2, 3), np.float64, (8, 16))
    assert x.owner is obj  # kept alive as long as the wrapper
    assert from_cuda_array_interface(Foreign(strides=None)).strides == (24, 8)
    assert as_device_array(np.zeros(3)) is None and as_device_array(x) is x


@pytest.mark.parametrize(
    "interface, message",
    [
        ({"version": 1}, "version 1 is not supported"),
        ({"mask": object()}, "masked arrays"),
        ({"data": None}, "expected 'data'"),
        ({"typestr": "<nonsense"}, "expected 'data'"),
    ],
)
def test_a_foreign_interface_exprc_cannot_read_is_a_clear_error(interface, message):
    with pytest.raises(TypeError, match=message) as info:
        from_cuda_array_interface(Foreign(**interface))
    assert "Foreign.__cuda_array_interface__" in str(info.value)


# --- DLPack ----------------------------------------------------------------------------------


def test_the_dlpack_device_is_cuda_and_the_ordinal():
    assert fake((3,))[0].__dlpack_device__() == (2, 0)
    assert fake((3,), device_id=1)[0].__dlpack_device__() == (2, 1)


@pytest.mark.parametrize("max_version, versioned", [(None, False), ((0, 8), False), ((1, 0), True), ((1, 3), True)])
def test_a_capsule_describes_the_array(max_version, versioned):
    x, _ = fake((4, 5), "float64")
    view = x.view((2, 5), (80, -8), offset=32)
    capsule = view.__dlpack__(max_version=max_version)
    found = dlpack.describe(capsule)
    assert found["versioned"] is versioned
    assert found["data"] == FAKE + 32 and found["byte_offset"] == 0
    assert found["device"] == (2, 0)
    assert found["dtype"] == (2, 64, 1)
    assert found["shape"] == (2, 5) and found["strides"] == (10, -1)  # in elements
    if versioned:
        assert found["version"] == (1, 0) and found["flags"] == 0


@pytest.mark.parametrize(
    "dtype, code",
    [("bool", (6, 8, 1)), ("int8", (0, 8, 1)), ("uint64", (1, 64, 1)), ("int32", (0, 32, 1)), ("float32", (2, 32, 1))],
)
def test_dtype_codes(dtype, code):
    assert dlpack.describe(fake((3,), dtype)[0].__dlpack__())["dtype"] == code


def test_an_unused_capsule_lets_the_owner_go_when_it_is_destroyed():
    x, owner = fake((3,))
    capsule = x.__dlpack__()
    del x
    gc.collect()
    assert owner() is not None  # the capsule holds it
    del capsule
    gc.collect()
    assert owner() is None


@pytest.mark.parametrize("max_version", [None, (1, 0)])
def test_a_consumer_keeps_the_owner_until_it_calls_the_deleter(max_version):
    x, owner = fake((3,))
    capsule = x.__dlpack__(max_version=max_version)
    delete = dlpack.consume(capsule)  # renamed "used_dltensor...": the destructor leaves it alone
    del x, capsule
    gc.collect()
    assert owner() is not None
    delete()
    gc.collect()
    assert owner() is None


def test_requests_that_need_a_copy_are_refused():
    x, _ = fake((3,))
    with pytest.raises(BufferError, match="on device"):
        x.__dlpack__(dl_device=(1, 0))
    with pytest.raises(BufferError, match="copy=True"):
        x.__dlpack__(copy=True)
    with pytest.raises(ValueError, match="stream"):
        x.__dlpack__(stream=-2)
    # The consumer's device, no copy wanted, no synchronization wanted: all fine.
    assert dlpack.describe(x.__dlpack__(dl_device=(2, 0), copy=False, stream=-1))["data"] == FAKE


def test_dtypes_dlpack_cannot_describe_are_refused():
    with pytest.raises(BufferError, match="complex128"):
        DeviceArray(FAKE, (2,), "complex128").__dlpack__()


class HostLender:
    """Host memory exported by :func:`exprc.codegen.cuda.dlpack.export`, for NumPy to consume."""

    def __init__(self, array):
        self.array, self.requests = array, []

    def __dlpack_device__(self):
        return (dlpack.KDL_CPU, 0)

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        self.requests.append(max_version)
        versioned = dlpack.check_request(self.__dlpack_device__(), stream, max_version, dl_device, copy)
        a = self.array
        return dlpack.export(
            self, a.__array_interface__["data"][0], a.shape, a.strides, a.dtype, self.__dlpack_device__(), versioned
        )


@pytest.mark.parametrize("dtype", ["float32", "float64", "int8", "int64", "uint16", "bool"])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided", "0d"])
def test_numpy_reads_the_capsules_as_exprc_builds_them(dtype, layout):
    base = (np.arange(60) % 7).astype(dtype).reshape(6, 10)
    array = {"contiguous": base, "transposed": base.T, "strided": base[::2, ::-3], "0d": base[1, 2, ...]}[layout]
    lender = HostLender(array)
    taken = np.from_dlpack(lender)
    assert taken.dtype == array.dtype and taken.shape == array.shape
    np.testing.assert_array_equal(taken, array)
    assert taken.__array_interface__["data"][0] == array.__array_interface__["data"][0]  # no copy
    owner = weakref.ref(lender)
    del lender
    gc.collect()
    assert owner() is not None  # NumPy's array still uses the memory
    del taken
    gc.collect()
    assert owner() is None  # NumPy called the deleter
