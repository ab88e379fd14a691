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


#: The op tests' fast tier (``-m "not slow"``): of each test function's cases on a back end,
#: this many, spread evenly over its parameter list (its first case and its last),
#: stay fast; the rest are marked ``slow``. A compiled case costs a C compile (0.1-0.3 s on
#: an idle core, several seconds on a loaded one); the full sweeps of every dtype and layout
#: hold 15,000 of them. :data:`REPRESENTATIVES` picks by rule instead, for the tests that
#: must keep every op in the fast tier.
FAST_CASES = 2


def _one_per_op(items):
    """``test_matches_numpy``: every op (and every other name of one) on one dtype and one
    layout that takes its inputs in different layouts, plus every layout for ``add`` and ``exp``."""
    from .test_elemwise import ALIASES, CASES

    chosen, seen = [], set()
    for item in items:
        cid, dtype, layout = (item.callspec.params[k] for k in ("cid", "dtype", "layout"))
        if cid in ("add", "exp") and dtype == "float64":
            chosen.append(item)
        elif cid not in seen:
            wanted = "mixed_layouts" if CASES[cid].nin > 1 and cid not in ALIASES else "strided"
            if CASES[cid].nin > 1 and cid in ALIASES:
                wanted = "mixed_layouts"
            if layout == wanted:
                seen.add(cid)
                chosen.append(item)
    return chosen


REPRESENTATIVES = {"test_matches_numpy": _one_per_op}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Mark ``slow`` all but a few representative cases of each op test (see :data:`FAST_CASES`)."""
    by_test = {}
    for item in items:
        spec = getattr(item, "callspec", None)
        if spec is None or not item.nodeid.startswith("tests/ops/"):
            continue
        by_test.setdefault((item.nodeid.split("[")[0], spec.params.get("op_backend")), []).append(item)
    for (nodeid, _), group in by_test.items():
        name = nodeid.rsplit("::", 1)[-1]
        if name in REPRESENTATIVES:
            fast = REPRESENTATIVES[name](group)
        elif len(group) <= FAST_CASES:
            continue
        else:
            step = (len(group) - 1) / (FAST_CASES - 1)
            fast = [group[round(i * step)] for i in range(FAST_CASES)]
        fast = {id(item) for item in fast}
        for item in group:
            if id(item) not in fast:
                item.add_marker(pytest.mark.slow)
