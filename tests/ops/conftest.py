import pytest

from . import _oracle


@pytest.fixture(autouse=True, params=_oracle.BACKENDS)
def op_backend(request, monkeypatch):
    """Every op test runs once per back end: the NumPy reference, the compiled C, then CUDA
    where it can run (see ``_oracle.BACKENDS``)."""
    if request.param == "cuda":
        _oracle.on_cuda(monkeypatch)
    _oracle.use_backend(request.param)
    yield request.param
    _oracle.use_backend("numpy")
