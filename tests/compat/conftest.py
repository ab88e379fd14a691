import pytest

from exprc.compat import theano as compat


@pytest.fixture
def theano():
    """Theano's module names registered for the test, removed after it."""
    module = compat.install()
    yield module
    compat.uninstall()
