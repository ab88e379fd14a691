"""Shared by every test, doctest and docs example: a cache directory of the run's own."""

import shutil

import pytest


@pytest.fixture(autouse=True, scope="session")
def _cache_dir(tmp_path_factory):
    """Compiled code goes to a fresh cache directory, removed after the run, not the user's."""
    path = tmp_path_factory.mktemp("exprc-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXPRC_CACHE_DIR", str(path))
        yield path
    shutil.rmtree(path, ignore_errors=True)
