import pytest

from . import _oracle


@pytest.fixture(autouse=True, params=_oracle.BACKENDS)
def op_backend(request):
    """Every op test runs once per back end: the NumPy reference, then the compiled C."""
    _oracle.use_backend(request.param)
    yield request.param
    _oracle.use_backend("numpy")
