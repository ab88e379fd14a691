"""CUBINs in the disk cache: built once, verified before use, keyed by source,
architecture and NVRTC version, never read from a directory others may write."""

import os
import warnings

import pytest

from exprc.codegen.cache.disk import CacheWarning, DiskCache
from exprc.codegen.cuda import build as cuda_build
from exprc.codegen.cuda import nvrtc

pytestmark = pytest.mark.skipif(nvrtc.unavailable_reason() is not None, reason="NVRTC is not installed")

SOURCE = 'extern "C" __global__ void exprc_test_fill(float *x) { x[threadIdx.x] = 1.5f; }\n'


@pytest.fixture
def cache(tmp_path):
    root = tmp_path / "cache"
    root.mkdir(mode=0o700)
    return DiskCache(root)


def _no_compiling(*args, **kwargs):
    raise AssertionError("NVRTC was called for a CUBIN the cache holds")


def test_a_cubin_is_compiled_once_then_read_from_the_cache(cache, monkeypatch):
    before = dict(cuda_build.stats)
    first = cuda_build.load_cubin(SOURCE, "sm_80", cache)
    assert first[:4] == b"\x7fELF"
    assert cuda_build.stats["compiled"] == before["compiled"] + 1
    (entry,) = cache.entries()
    assert entry.kind == "cubin"
    suffixes = sorted(p.suffix for p in entry.files)
    assert suffixes == [".cu", ".cubin", ".lock", ".ref"]
    assert next(p for p in entry.files if p.suffix == ".cu").read_text() == SOURCE

    monkeypatch.setattr(cuda_build, "compile_cubin", _no_compiling)
    assert cuda_build.load_cubin(SOURCE, "sm_80", cache) == first
    assert cuda_build.stats["loaded_from_disk"] == before["loaded_from_disk"] + 1


def test_the_key_holds_the_architecture_and_nvrtc_version(cache, monkeypatch):
    sm80 = cuda_build.load_cubin(SOURCE, "sm_80", cache)
    sm90 = cuda_build.load_cubin(SOURCE, "sm_90", cache)
    assert sm80 != sm90 and len(cache.entries()) == 2
    major, minor = nvrtc.nvrtc_version()
    monkeypatch.setattr(cuda_build, "nvrtc_version", lambda: (major, minor + 1))
    cuda_build.load_cubin(SOURCE, "sm_90", cache)
    assert len(cache.entries()) == 3


def test_a_damaged_cubin_is_compiled_again(cache):
    good = cuda_build.load_cubin(SOURCE, "sm_80", cache)
    (entry,) = cache.entries()
    cubin = next(p for p in entry.files if p.suffix == ".cubin")
    damaged = bytearray(good)
    damaged[len(damaged) // 2] ^= 0xFF
    cubin.write_bytes(bytes(damaged))
    compiled = cuda_build.stats["compiled"]
    assert cuda_build.load_cubin(SOURCE, "sm_80", cache) == good
    assert cuda_build.stats["compiled"] == compiled + 1


def test_a_directory_others_may_write_is_refused(tmp_path):
    root = tmp_path / "shared"
    root.mkdir()
    os.chmod(root, 0o777)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cubin = cuda_build.load_cubin(SOURCE, "sm_80", DiskCache(root))
    assert cubin[:4] == b"\x7fELF"
    assert any(issubclass(w.category, CacheWarning) and "refused" in str(w.message) for w in caught)
    assert list(root.iterdir()) == []


def test_a_failed_compile_names_the_source_kept_in_the_cache(cache):
    broken = SOURCE.replace("1.5f", "undeclared_name")
    with pytest.raises(nvrtc.NvrtcError, match="undeclared_name") as info:
        cuda_build.load_cubin(broken, "sm_80", cache, name="broken.cu")
    path = info.value.source_path
    assert str(path).startswith(str(cache.root)) and str(path).endswith(".cu")
    assert open(path).read() == broken
    assert str(path) in str(info.value)
    assert [e.kind for e in cache.entries()] == ["source only"]


def test_a_directory_in_a_folder_others_may_write_is_refused(tmp_path):
    parent = tmp_path / "shared"
    parent.mkdir()
    parent.chmod(0o777)  # another user could swap the cache folder for their own
    root = parent / "cache"
    root.mkdir(mode=0o700)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cubin = cuda_build.load_cubin(SOURCE, "sm_80", DiskCache(root))
    assert cubin[:4] == b"\x7fELF"
    assert any(f"other users may write to {parent}" in str(w.message) for w in caught)
    assert list(root.iterdir()) == []


def test_the_cubin_handed_on_is_the_one_verified(cache, monkeypatch):
    good = cuda_build.load_cubin(SOURCE, "sm_80", cache)
    (entry,) = cache.entries()
    real_lookup = cache.lookup_entry

    def lookup_then_replace(key):
        found = real_lookup(key)
        cubin = next(p for p in entry.files if p.suffix == ".cubin")
        cubin.with_suffix(".new").write_bytes(b"\x7fELF replaced after the check")
        os.replace(cubin.with_suffix(".new"), cubin)
        return found

    monkeypatch.setattr(cache, "lookup_entry", lookup_then_replace)
    monkeypatch.setattr(cuda_build, "compile_cubin", _no_compiling)
    assert cuda_build.load_cubin(SOURCE, "sm_80", cache) == good
