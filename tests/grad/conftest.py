import pytest


@pytest.fixture(autouse=True, scope="session")
def _cache_dir(tmp_path_factory):
    """Compiled code goes to a fresh cache directory, not the user's."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXPRC_CACHE_DIR", str(tmp_path_factory.mktemp("exprc-cache")))
        yield
