"""The flat JSON form of rewritten graphs (exprc.graph_format): every op round-trips, and
no file, however made, is run or built into anything but registered ops."""

import base64
import dataclasses
import importlib
import json
import pickle
import pkgutil
import subprocess
import sys
from hashlib import sha256
from pathlib import Path

import numpy as np
import pytest

import exprc as ex
from exprc import graph_format as gf
from exprc.dtypes import SUPPORTED
from exprc.graph import Op, canonical_text, toposort
from exprc.ops.elemwise import Elemwise
from exprc.ops.reduction import Max, Min
from exprc.ops.scalar import DERIVATIVE_OPS, SCALAR_OPS, cast
from exprc.ops.shape import sum_to
from exprc.rewrite import RewriteReport, rewrite

ROOT = Path(__file__).resolve().parents[1]

#: Op classes that are only bases of others, never in a graph themselves.
ABSTRACT = {"Reduce", "ArgReduce", "_Write", "Cumulative"}


def _op_classes():
    """Every Op subclass defined in exprc's front end, after importing all of its modules."""
    for info in pkgutil.walk_packages(ex.__path__, "exprc."):
        if not info.name.startswith("exprc.codegen"):
            importlib.import_module(info.name)
    found, pending = set(), [Op]
    while pending:
        for sub in pending.pop().__subclasses__():
            pending.append(sub)
            if sub.__module__.startswith("exprc.") and sub.__name__ not in ABSTRACT:
                found.add(sub)
    return found


def test_every_op_type_of_exprc_is_registered():
    registered = {entry.cls for entry in gf.OPS.values()}
    missing = sorted(cls.__qualname__ for cls in _op_classes() - registered)
    assert not missing, f"register these op types in exprc/graph_format.py: {missing}"


def test_each_registration_covers_every_field_of_its_op():
    for name, entry in gf.OPS.items():
        assert [f for f, _ in entry.fields] == [f.name for f in dataclasses.fields(entry.cls)], name


def test_register_refuses_an_op_with_a_field_left_out():
    @dataclasses.dataclass(frozen=True)
    class Scaled(Op):
        factor: float
        offset: float = 0.0

    with pytest.raises(
        ValueError, match=r"register Scaled: give a codec for each of its fields \['factor', 'offset'\]"
    ):
        gf.register(Scaled, factor=gf.OPTIONAL_FLOAT)
    assert "Scaled" not in gf.OPS


# --- graphs of every op ------------------------------------------------------------


def _elemwise_case(op):
    def build():
        if op.name in ("invert", "bitwise_and", "bitwise_or", "bitwise_xor"):
            leaves = [ex.ivector(f"i{k}") for k in range(op.nin)]
        elif op.name == "where":
            leaves = [ex.bvector("c"), ex.vector("a"), ex.vector("b")]
        else:
            leaves = [ex.vector(f"x{k}") for k in range(op.nin)]
        return leaves, [Elemwise(op)(*leaves)]

    return build


def _shapes():
    m, v = ex.matrix("m"), ex.vector("v")
    return [m, v], [
        v.shape[0] * 2,
        ex.dimshuffle(m, (1, "x", 0)),
        ex.reshape(m, (m.shape[0], -1, 1)),
        ex.broadcast_to(v, (3, v.shape[0])),
        ex.concatenate([m, m * 2.0], axis=1),
        ex.stack([v, v + 1.0], axis=1),
    ]


def _sum_to():
    g, x = ex.matrix("g"), ex.matrix("x")
    return [g, x], [sum_to(g, x)]


def _reductions():
    m = ex.tensor("m", shape=(None, 3, None))
    b = m > 0.0
    return [m], [
        ex.sum(m, axis=(0, 2), keepdims=True, dtype="float32"),
        ex.prod(m, axis=1),
        ex.all(b, axis=(1,)),
        ex.any(b),
        ex.max(m, axis=-1, keepdims=True),
        Max((0, 1), True, None, -np.inf)(m),
        Min((2,), False, None, np.inf)(m),
        ex.min(m),
        ex.argmax(m),
        ex.argmax(m, axis=None, keepdims=True),
        ex.argmin(m, axis=1),
        ex.logsumexp(m, axis=1),
    ]


def _indexing():
    m, v, i = ex.matrix("m"), ex.vector("v"), ex.lscalar("i")
    idx = ex.lvector("idx")
    return [m, v, i, idx], [
        m[1:, ::-2],
        m[i, 2 : i + 2],
        m[-1],
        m[:, None, 0],
        m[idx, 1:3],
        m[[0, 2, 2]],
        ex.set_subtensor(m[1:], 0.0),
        ex.inc_subtensor(m[i, ::2], v[0]),
        ex.inc_subtensor(v[idx], 1.0),
        ex.set_subtensor(v[[0, 0]], 5.0),
    ]


def _linalg_and_markers():
    m, v, t3 = ex.matrix("m"), ex.vector("v"), ex.tensor3("t3")
    return [m, v, t3], [
        m @ v,
        v @ m @ v,
        ex.tensordot(t3, m, axes=([1, 2], [0, 1])),
        ex.stop_gradient(m) * m,
    ]


def _nnet():
    from exprc.ops.pool import AveragePoolGrad, MaxPoolGradGrad

    x, w = ex.tensor4("x"), ex.tensor4("w")
    y = ex.nnet.conv2d(x, w, border_mode=(1, 2), subsample=(2, 1), filter_dilation=(1, 2), num_groups=2)
    p = ex.nnet.pool_2d(x, (2, 3), ignore_border=False, mode="max")
    gx, gw = ex.grad((y**2).sum(), [x, w])
    return [x, w], [
        y,
        gx,
        gw,
        ex.grad((p**2).sum(), x),
        MaxPoolGradGrad((2, 3), (2, 3), (0, 0), False, "max")(x, x),
        ex.nnet.pool_2d(x, 3, stride=(1, 2), pad=(1, 1), mode="average_exc_pad"),
        AveragePoolGrad((2, 2), (2, 2), (0, 0), True, "sum")(w, *x.shape[2:]),
    ]


def _staples():
    m, v, n = ex.matrix("m"), ex.vector("v"), ex.lscalar("n")
    return [m, v, n], [
        ex.arange(m.shape[0]) * 2,
        ex.arange(1.0, n, 0.5, dtype="float32"),
        ex.specify_shape(m, (None, 3)),
        ex.sort(m, axis=0),
        ex.argsort(v),
        ex.searchsorted(v, m, side="right"),
        ex.cumsum(m, axis=1),
        ex.cumprod(v),
        ex.cummax(m, axis=0),
        ex.cummin(m, axis=1),
    ]


def _decompositions():
    a, b, v = ex.tensor3("a"), ex.tensor3("b"), ex.vector("v")
    w, vecs = ex.linalg.eigh(a, "U")
    return [a, b, v], [
        ex.linalg.solve(a, b),
        ex.linalg.solve_triangular(a, b, lower=True, unit_diagonal=True),
        ex.linalg.inv(a),
        ex.linalg.det(a),
        *ex.linalg.slogdet(a),
        ex.grad(ex.linalg.cholesky(a, upper=True).sum(), a),
        w,
        vecs,
        *ex.linalg.svd(a, full_matrices=False),
        ex.linalg.svd(a, compute_uv=False),
        *ex.linalg.qr(a, "complete"),
        ex.linalg.lstsq(a[0], v, rcond=1e-10)[0],
        ex.einsum("bij,bjk->bik", a, b),
    ]


def _jacobian():
    x = ex.vector("x")
    return [x], [ex.jacobian(ex.exp(x) * x.sum(), x), ex.hessian((x**3).sum(), x)]


def _w4():
    X, w, t = ex.matrix("X"), ex.vector("w"), ex.vector("t")
    cost = ex.mean(ex.log1p(ex.exp(-t * (X @ w)))) + 0.01 * ex.sum(w**2)
    return [X, w, t], [cost, ex.grad(cost, w)]


def _mlp_step():
    rng = np.random.default_rng(0)
    shapes = {"W1": (6, 5), "b1": (5,), "W2": (5, 3), "b2": (3,)}
    params = [ex.shared(rng.standard_normal(s).astype(np.float32), name=n) for n, s in shapes.items()]
    W1, b1, W2, b2 = params
    X, Y = ex.fmatrix("X"), ex.fmatrix("Y")
    loss = -(Y * ex.log_softmax(ex.tanh(X @ W1 + b1) @ W2 + b2, axis=1)).sum(axis=1).mean()
    grads = ex.grad(loss, params)
    return [X, Y, *params], [loss] + [p - np.float32(0.1) * g for p, g in zip(params, grads)]


def _random():
    srng = ex.random.RandomStream(seed=3)
    x = ex.matrix("x")
    draws = [srng.uniform(x, 2.0), srng.normal(size=x.shape) * x, srng.choice(5, size=(2,), replace=False)]
    return [x, srng.state], draws + [ex.grad(draws[0].sum(), x)]


def _constants():
    x = ex.vector("x")
    outputs = []
    for dtype in SUPPORTED:
        for value in (np.arange(6).reshape(2, 3) % 2, np.ones(()), np.zeros((0,)), np.zeros((2, 0, 3))):
            c = ex.constant(np.asarray(value).astype(dtype), name=None if value.ndim else f"one_{dtype}")
            outputs.append(ex.astype(c, "float64").sum() + x)
    special = ex.constant(np.array([np.inf, -np.inf, np.nan, -0.0, 5e-324], dtype=np.float64))
    outputs += [x * 2.5, x + 2**62, x + 2**63, ex.where(x > 0, True, x), x * special.sum()]
    return [x], outputs


def _loops():
    x, h0, w = ex.vector("x"), ex.vector("h0"), ex.scalar("w")
    sums, _ = ex.scan(lambda v, acc: acc * w + v, sequences=x, outputs_info=ex.constant(0.0))
    fib, _ = ex.scan(lambda a, b: a + b, outputs_info=dict(initial=h0, taps=[-2, -1]), n_steps=4)
    back, _ = ex.scan(lambda a, b: (a * b, ex.until(a > 2)), sequences=dict(input=x, taps=[-1, 0]), go_backwards=True)
    nested, _ = ex.scan(lambda v: ex.scan(lambda u: u * v, sequences=h0)[0].sum(), sequences=x)
    grads = ex.grad(sums.sum() + fib.sum() + nested.sum(), [x, h0, w])
    loop = ex.while_loop(lambda c: c < 10.0, lambda c: c * w, w * 1.0, max_steps=5)
    return [x, h0, w], [sums, fib, back, nested, *grads, loop, ex.ifelse(w > 0, (x * w, w), (x, -w))[0]]


CASES = {
    **{f"elemwise_{name}": _elemwise_case(op) for name, op in {**SCALAR_OPS, **DERIVATIVE_OPS}.items()},
    **{f"elemwise_astype_{d}": _elemwise_case(cast(d)) for d in SUPPORTED},
    "shapes": _shapes,
    "sum_to": _sum_to,
    "reductions": _reductions,
    "indexing": _indexing,
    "linalg_and_markers": _linalg_and_markers,
    "jacobian_and_hessian": _jacobian,
    "nnet": _nnet,
    "w4": _w4,
    "mlp_step": _mlp_step,
    "constants": _constants,
    "random": _random,
    "staples": _staples,
    "loops": _loops,
    "decompositions": _decompositions,
}


def _rewritten(name):
    leaves, outputs = CASES[name]()
    fired = RewriteReport()
    return leaves, rewrite(outputs, "fast", fired), fired


def test_the_cases_hold_every_registered_op():
    held = set()
    for name, build in CASES.items():
        for outputs in (build()[1], _rewritten(name)[1]):
            held |= {type(node.op).__name__ for node in toposort(outputs)}
    assert held == set(gf.OPS)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("rewritten", [False, True], ids=["built", "rewritten"])
def test_round_trip(name, rewritten):
    if rewritten:
        leaves, outputs, fired = _rewritten(name)
    else:
        (leaves, outputs), fired = CASES[name](), []
    loaded, loaded_fired = gf.loads(gf.dumps(outputs, leaves, fired), leaves)
    assert [str(f) for f in loaded_fired] == [str(f) for f in fired]
    if any(not type(node.op).__dataclass_params__.eq for node in toposort(outputs)):
        # A Rows op (or a loop) compares by identity: a new one comes back, holding the same graph.
        assert canonical_text(leaves, loaded, sha256) == canonical_text(leaves, outputs, sha256)
        return
    # Graphs are hash-consed: the very same variables come back only if every op, parameter,
    # constant and input is equal to the original's.
    assert len(loaded) == len(outputs) and all(a is b for a, b in zip(loaded, outputs))


@pytest.mark.parametrize("rewritten", [False, True], ids=["built", "rewritten"])
def test_jacobian_and_hessian_read_back_compute_numpys_values(rewritten):
    if rewritten:
        leaves, outputs, fired = _rewritten("jacobian_and_hessian")
    else:
        (leaves, outputs), fired = _jacobian(), []
    loaded, _ = gf.loads(gf.dumps(outputs, leaves, fired), leaves)
    x = np.array([0.5, -1.0, 2.0])
    jacobian, hessian = ex.function(leaves, loaded, backend="numpy", rewrites=None)(x)
    np.testing.assert_allclose(jacobian, np.diag(np.exp(x) * x.sum()) + np.exp(x)[:, None], rtol=1e-12)
    np.testing.assert_allclose(hessian, np.diag(6 * x), rtol=1e-12)


def test_round_trip_keeps_parameter_types():
    x = ex.tensor3("x")
    op = Max((0, 2), True, "float64", -np.inf)
    (loaded,), _ = gf.loads(gf.dumps([op(x)], [x]), [x])
    assert loaded.owner.op == op and repr(loaded.owner.op) == repr(op)
    assert type(loaded.owner.op.initial) is float and type(loaded.owner.op.axis) is tuple


def test_w4_gradient_read_back_computes_numpys_values():
    leaves, outputs, fired = _rewritten("w4")
    data = gf.dumps(outputs, leaves, fired)
    loaded, _ = gf.loads(data, leaves)
    rng = np.random.default_rng(1)
    X, w, t = rng.normal(size=(20, 4)), rng.normal(size=4), rng.choice([-1.0, 1.0], 20)
    cost, grad = ex.function(leaves, loaded, backend="numpy", rewrites=None)(X, w, t)
    e = np.exp(-t * (X @ w))
    np.testing.assert_allclose(cost, np.mean(np.log1p(e)) + 0.01 * np.sum(w**2), rtol=1e-12)
    np.testing.assert_allclose(grad, X.T @ (-t * (e / (1.0 + e)) / X.shape[0]) + 0.02 * w, rtol=1e-10)


_FRESH_PROCESS = """
import base64, json, sys
from hashlib import sha256
import numpy as np
import exprc as ex
from exprc import graph_format
from exprc.graph import canonical_text
from exprc.tensor import TensorType, TensorVariable

texts = {}
for name, case in json.loads(open(sys.argv[1]).read()).items():
    leaves = [TensorVariable(TensorType(d, tuple(s), w), name=n) for d, s, w, n in case["leaves"]]
    # Leaves of this process: every node is built here, through make_node.
    outputs, fired = graph_format.loads(base64.b64decode(case["data"]), leaves)
    texts[name] = canonical_text(leaves, outputs, sha256)
print(json.dumps(texts))
"""


def test_a_new_process_rebuilds_every_case_to_the_same_graph(tmp_path):
    expected, cases = {}, {}
    for name in CASES:
        leaves, outputs, fired = _rewritten(name)
        spec = [[v.type.dtype, list(v.type.shape), v.type.weak, v.name] for v in leaves]
        cases[name] = {"leaves": spec, "data": base64.b64encode(gf.dumps(outputs, leaves, fired)).decode()}
        expected[name] = canonical_text(leaves, outputs, sha256)
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(cases))
    done = subprocess.run(
        [sys.executable, "-c", _FRESH_PROCESS, str(path)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got.keys() == expected.keys()
    for name in expected:
        assert got[name] == expected[name], name


# --- what is refused ---------------------------------------------------------------


def _sample():
    x, i = ex.vector("x"), ex.lscalar("i")
    outputs = [ex.exp(x[1:i]).sum(axis=0, keepdims=True) * 2.0 + ex.constant(np.arange(3.0))[i]]
    return [x, i], outputs, json.loads(gf.dumps(outputs, [x, i]))


def _refused(document, leaves, match):
    data = document if isinstance(document, bytes) else json.dumps(document).encode()
    with pytest.raises(gf.GraphFormatError, match=match):
        gf.loads(data, leaves)


def _node(document, tag):
    return next(entry for entry in document["nodes"] if entry[0] == tag)


def test_the_sample_reads_back():
    leaves, outputs, document = _sample()
    assert gf.loads(json.dumps(document).encode(), leaves)[0] == outputs


@pytest.mark.parametrize("name", ["os.system", "builtins.eval", "__reduce__", "Op", "TensorVariable", "exp", ""])
def test_an_op_name_that_is_not_registered_is_refused(name):
    leaves, _, document = _sample()
    document["ops"][0][0] = name
    _refused(document, leaves, f"no op is registered as {name!r}")


@pytest.mark.parametrize(
    "params",
    [
        [{"__reduce__": ["os.system", ["touch /tmp/exprc-owned"]]}],
        [{"py/reduce": [{"py/function": "os.system"}, {"py/tuple": ["id"]}]}],
        [["os", "system"]],
        ["__import__('os').system('id')"],
    ],
)
def test_reduce_style_payloads_in_parameters_are_refused(params):
    leaves, _, document = _sample()
    elemwise = next(spec for spec in document["ops"] if spec[0] == "Elemwise")
    elemwise[1] = params
    _refused(document, leaves, "scalar op")


def test_a_pickle_payload_never_runs(tmp_path):
    marker, check = tmp_path / "marker", tmp_path / "check1"  # names of one length

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    leaves, _, _ = _sample()
    for protocol in (0, pickle.HIGHEST_PROTOCOL):
        payload = pickle.dumps(Payload(), protocol=protocol)
        # The same bytes given to pickle create the file: the check below can fail.
        pickle.loads(payload.replace(b"marker", b"check1")).close()
        assert check.exists()
        check.unlink()
        _refused(payload, leaves, "not readable")
    assert not marker.exists()


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda d: d.update(format="exprc-graph-0"), "format 'exprc-graph-0'"),
        (lambda d: d.pop("fired"), "keys"),
        (lambda d: d.update(extra=1), "keys"),
        (lambda d: d.update(nodes={"0": 1}), "nodes must be a list"),
        (lambda d: _node(d, "leaf").__setitem__(1, "0"), "no leaf '0'"),
        (lambda d: _node(d, "leaf").__setitem__(1, 7), "no leaf 7"),
        (lambda d: _node(d, "leaf").__setitem__(1, True), "no leaf True"),
        (lambda d: _node(d, "apply").__setitem__(1, 99), "no op 99"),
        (lambda d: _node(d, "apply").__setitem__(2, [-1]), "not the position of an earlier entry"),
        (lambda d: _node(d, "apply").__setitem__(2, [50]), "not the position of an earlier entry"),
        (lambda d: _node(d, "apply").__setitem__(2, "0"), "inputs must be a list"),
        (lambda d: _node(d, "apply").__setitem__(3, 2), "the file says 2"),
        (lambda d: _node(d, "apply").append(0), "is none of"),
        (lambda d: d["nodes"].append(["eval", "1"]), r"\['eval', '1'\] is none of"),
        (lambda d: d["nodes"].append("leaf"), "is none of"),
        (lambda d: d.update(outputs=[1000]), "not the position"),
        (lambda d: d.update(outputs=[0.5]), "not the position"),
        (lambda d: d["leaves"].pop(), "written over 1 leaves, read over 2"),
        (lambda d: d["leaves"][0].__setitem__(0, "float32"), "leaf 0 was written as"),
        (lambda d: d.update(fired=[["rule", "before", 3]]), "three strings"),
        (lambda d: d.update(fired=[["rule", "before"]]), r"\[rule, before, after\]"),
        (lambda d: d["ops"][0].append("more"), "an op is"),
        (lambda d: d["ops"][0].__setitem__(1, []), "takes a list of"),
    ],
)
def test_wrong_structure_and_types_are_refused(edit, match):
    leaves, _, document = _sample()
    edit(document)
    _refused(document, leaves, match)


def _op_spec(document, name):
    return next(spec for spec in document["ops"] if spec[0] == name)


@pytest.mark.parametrize(
    "op, params, match",
    [
        ("Sum", [[0], 1, None], "expected a bool"),
        ("Sum", [[0.0], True, None], "must be an int"),
        ("Sum", [0, True, None], "axes must be a list"),
        ("Sum", [[0], True, "object"], "expected a dtype name"),
        ("Sum", [[0], True, "float64", "extra"], "takes a list of 3"),
        ("Sum", [[5], True, None], r"does not apply to its inputs: axes \[5\] are not distinct, sorted axes"),
        ("Sum", [[0, 0], True, None], r"axes \[0, 0\] are not distinct"),
        ("Sum", [[-1], True, None], "are not distinct, sorted axes of a 1-d input"),
        ("Subtensor", [[["slice", 1, None, None]]], "a basic index takes one input per dynamic part"),
        ("Subtensor", [[["slice", 1, "$", None], ["int", 0]]], "2 indexed axes of a 1-d input"),
        ("Subtensor", [[["array"]]], "a basic index takes one input per dynamic part, and no arrays"),
        ("Subtensor", [[["slice", 1, "0", None]]], "must be an int"),
        ("Subtensor", [[["call", 1]]], "is not an index entry"),
        ("Subtensor", [[["int", None]]], "must be an int"),
        ("Elemwise", ["astype_object"], "no scalar op is called 'astype_object'"),
        ("Elemwise", [7], "must be named by a string"),
    ],
)
def test_wrong_parameters_are_refused(op, params, match):
    leaves, _, document = _sample()
    _op_spec(document, op)[1] = params
    _refused(document, leaves, match)


def test_an_op_applied_to_inputs_it_does_not_take_is_refused():
    leaves, _, document = _sample()
    exp = document["ops"].index(["Elemwise", ["exp"]])
    document["ops"][exp] = ["Elemwise", ["add"]]  # two inputs, one given
    _refused(document, leaves, "does not apply to its inputs: TypeError: add takes 2 inputs")


def test_a_constant_whose_bytes_do_not_fill_its_shape_is_refused():
    leaves, _, document = _sample()
    const = next(e for e in document["nodes"] if e[0] == "const" and e[2] == [3])
    good = list(const)
    for shape in ([4], [2], [1, 2], [2**62, 2**62]):
        const[:] = good
        const[2] = shape
        _refused(document, leaves, "the data of a float64 constant")
    for data in (base64.b64encode(b"\0" * 23).decode(), "", "!!!!" * 8, good[5][:-4]):
        const[:] = good
        const[5] = data
        _refused(document, leaves, "constant|not readable")


@pytest.mark.parametrize(
    "entry, match",
    [
        (["const", "object", [], False, None, ""], "'object' is not a supported dtype"),
        (["const", "float64", [None], False, None, ""], "shape must be known lengths"),
        (["const", "float64", [-1], False, None, ""], "shape must be known lengths"),
        (["const", "float64", [1.0], False, None, ""], "shape must be known lengths"),
        (["var", "float64", [-1], False, None], "not a static shape"),
        (["const", "float64", [1], True, None, "AAAAAAAAAAA="], "only for 0-d types"),
        (["const", "float32", [], True, None, "AAAAAA=="], "a weak constant is bool, int64, uint64 or float64"),
        (["const", "float64", [], False, 3, "AAAAAAAAAAA="], "a name must be a string"),
        (["const", "bool", [2], False, None, "AQI="], "bytes other than 0 and 1"),
        (["var", "float64", [], "yes", None], "weak must be a bool"),
    ],
)
def test_wrong_leaf_entries_are_refused(entry, match):
    leaves, _, document = _sample()
    document["nodes"].insert(0, entry)  # positions shift; the entry is refused before that matters
    _refused(document, leaves, match)


def test_an_output_may_not_depend_on_a_loop_index():
    x = ex.vector("x")
    document = json.loads(gf.dumps([x + 1.0], [x]))
    document["nodes"] = [
        ["leaf", 0],
        ["var", "float64", [None], False, "row"],  # only a Rows op's index is written so
        ["apply", 0, [0, 1], 1],
    ]
    document["outputs"] = [2]
    _refused(document, [x], "depends on a loop index")


def test_every_truncation_is_refused():
    leaves, _, document = _sample()
    data = json.dumps(document).encode()
    for end in range(len(data)):
        with pytest.raises(gf.GraphFormatError):
            gf.loads(data[:end], leaves)


@pytest.mark.parametrize(
    "data",
    [b"", b"\xff\xfe\x00", b"[" * 100_000 + b"]" * 100_000, b'"' + b"a" * 1000, b"null", b"[]", "{}"],
    ids=["empty", "not utf-8", "deep", "open string", "null", "list", "str"],
)
def test_data_that_is_not_a_graph_file_is_refused(data):
    _refused(data, [], "graph file")


def test_sizes_are_bounded(monkeypatch):
    leaves, _, document = _sample()
    monkeypatch.setattr(gf, "MAX_ENTRIES", 3)
    _refused(document, leaves, "more than the 3 allowed")
    monkeypatch.setattr(gf, "MAX_BYTES", 100)
    _refused(document, leaves, "more than the 100 allowed")


# --- what cannot be written -----------------------------------------------------------


def test_an_unregistered_op_cannot_be_written():
    @dataclasses.dataclass(frozen=True)
    class Twice(Op):
        def make_node(self, x):
            return ex.Apply(self, [x], [x.type])

    x = ex.vector("x")
    with pytest.raises(gf.GraphFormatError, match="Twice is not registered in exprc.graph_format"):
        gf.dumps([Twice()(x)], [x])


def test_a_leaf_not_among_the_leaves_cannot_be_written():
    x, y = ex.vector("x"), ex.vector("y")
    with pytest.raises(gf.GraphFormatError, match="the leaf y is not among the leaves given"):
        gf.dumps([x + y], [x])


def test_a_parameter_of_another_type_cannot_be_written():
    x = ex.vector("x")
    with pytest.raises(gf.GraphFormatError, match="expected a float or None"):
        gf.dumps([Max((0,), False, None, np.float32(1.0))(x)], [x])


def test_parameters_the_reader_would_refuse_are_not_written():
    x = ex.matrix("x")
    with pytest.raises(gf.GraphFormatError, match=r"axes \[1, 0\] are not distinct, sorted axes of a 2-d input"):
        gf.dumps([ex.ops.Sum((1, 0))(x)], [x])
