import numpy as np
import pytest

from .helpers import RNG_SEED


@pytest.fixture
def rng():
    """A random generator with a fixed seed, so every run draws the same test values."""
    return np.random.default_rng(RNG_SEED)
