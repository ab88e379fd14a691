"""The fast tier's share of ``test_cuda_compile.py`` (whose full check is marked slow): a
sample of the kernels of each group, every :data:`EVERY` th, compiled through NVRTC for one
architecture, with the same assertions on the CUBIN.

Nothing here needs a GPU; without NVRTC (``pip install exprc[cuda]``) the tests skip.
"""

import pytest

from tests.codegen import test_cuda_compile as full

pytestmark = full.pytestmark

#: One kernel in this many.
EVERY = 40


@pytest.fixture(scope="module")
def sample():
    """Per group, every EVERY-th of the kernels the full check compiles."""
    seen = set()
    return {group: full._unique_names(make(), seen)[::EVERY] for group, make in full.GROUPS.items()}


@pytest.mark.parametrize("group", list(full.GROUPS))
def test_a_sample_of_the_kernels_compiles_to_cubin(sample, group):
    arch = full.ARCHS[-1]
    assert sample[group], f"no {group} kernels"
    for chunk, cubin, log in full._compile(sample[group], arch):
        assert cubin[:4] == b"\x7fELF", "not a CUBIN (an ELF file)"
        assert full._sm_of(cubin) == int(arch[3:]), f"machine code for sm_{full._sm_of(cubin)}, not {arch}"
        assert "warning" not in log, log
        missing = [k.name for k in chunk if k.name.encode() + b"\0" not in cubin]
        assert not missing, f"kernels missing from the {arch} CUBIN: {missing[:5]}"
