import pytest

from . import _oracle


def pytest_generate_tests(metafunc):
    """Every op test runs once per back end of ``_oracle.BACKENDS`` (the NumPy reference, the
    compiled C, then CUDA where it can run), except the tests marked ``backend_independent``:
    type rules, error messages and static shapes decided when the graph is built, which
    compile nothing and run once."""
    if "op_backend" in metafunc.fixturenames and not metafunc.definition.get_closest_marker("backend_independent"):
        metafunc.parametrize("op_backend", _oracle.BACKENDS, indirect=True, scope="function")


@pytest.fixture(autouse=True)
def op_backend(request, monkeypatch):
    """The back end the op test compiles for (see ``pytest_generate_tests``)."""
    name = getattr(request, "param", "numpy")
    if name == "cuda":
        _oracle.on_cuda(monkeypatch)
    _oracle.use_backend(name)
    yield name
    _oracle.use_backend("numpy")


def pytest_collection_finish(session):
    """Tell the batches (``_oracle.Batch``) which cases this run selected."""
    _oracle.SELECTED.clear()
    for item in session.items:
        spec = getattr(item, "callspec", None)
        if spec is not None and item.module.__name__.startswith("tests.ops."):
            _oracle.SELECTED.setdefault(item.originalname, []).append(spec.params)
