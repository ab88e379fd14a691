"""Philox4x32-10 against Random123's known answers (kat_vectors: counter, key, result), in
the NumPy reference and in the C routine."""

import numpy as np
import pytest

from exprc.ops.random import philox4x32_10

#: The "philox4x32 10" lines of Random123's kat_vectors.
KNOWN_ANSWERS = [
    ((0x00000000,) * 4, (0x00000000,) * 2, (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize("ctr, key, expected", KNOWN_ANSWERS)
def test_numpy_philox_gives_random123s_known_answers(ctr, key, expected):
    out = philox4x32_10(np.array(ctr, np.uint32).reshape(4, 1), key)
    assert tuple(int(w) for w in out[:, 0]) == expected


def test_numpy_philox_computes_many_counters_at_once():
    ctrs = np.array([c for c, _, _ in KNOWN_ANSWERS[:2]], np.uint32).T
    out = philox4x32_10(ctrs, (0, 0))
    assert tuple(int(w) for w in out[:, 0]) == KNOWN_ANSWERS[0][2]
    # The second counter under the zero key is no known answer: it must match one at a time.
    alone = philox4x32_10(ctrs[:, 1:], (0, 0))
    np.testing.assert_array_equal(out[:, 1:], alone)


@pytest.mark.parametrize("ctr, key, expected", KNOWN_ANSWERS)
def test_c_philox_gives_random123s_known_answers(ctr, key, expected):
    from exprc.codegen.c.build import compiler_missing

    if compiler_missing():
        pytest.skip(compiler_missing())
    from exprc.codegen.c import random as c_random

    assert tuple(c_random.philox4x32_10(ctr, key)) == expected
