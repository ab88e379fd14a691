"""Showing graphs: ``str(expr)`` as readable Python with the parentheses it needs,
``debugprint`` trees, and both on graphs deeper than Python's recursion limit.

The infix text is checked two ways: against the text a person would write, and
by evaluating it as Python on NumPy arrays, which must give what the graph
computes (so a missing pair of parentheses cannot go unnoticed).
"""

import io
import re
import sys

import numpy as np
import pytest

import exprc as ex
from exprc.graph import ancestors
from exprc.printing import MAX_INFIX, to_infix

DEEP = 5000

a, b, c = ex.vector("a"), ex.vector("b"), ex.vector("c")
x, y = ex.matrix("x"), ex.matrix("y")

_rng = np.random.default_rng(0)
VALUES = {
    a: _rng.uniform(0.5, 2.0, 4),
    b: _rng.uniform(0.5, 2.0, 4),
    c: _rng.uniform(0.5, 2.0, 4),
    x: _rng.uniform(-2.0, 2.0, (3, 3)),
    y: _rng.uniform(-2.0, 2.0, (3, 3)),
}
NAMESPACE = {
    **{v.name: value for v, value in VALUES.items()},
    **{name: getattr(np, name) for name in ("exp", "log", "sqrt", "maximum", "where", "float32", "int32")},
}

INFIX = [
    (lambda: (a + b) * c, "(a + b) * c"),
    (lambda: a + b * c, "a + b * c"),
    (lambda: a - (b - c), "a - (b - c)"),
    (lambda: (a - b) - c, "a - b - c"),
    (lambda: a / (b * c), "a / (b * c)"),
    (lambda: (a / b) * c, "a / b * c"),
    (lambda: a // b % c, "a // b % c"),
    (lambda: a // (b % c), "a // (b % c)"),
    (lambda: -(x**2), "-x ** 2"),
    (lambda: (-x) ** 2, "(-x) ** 2"),
    (lambda: (a**b) ** c, "(a ** b) ** c"),
    (lambda: a ** (b**c), "a ** b ** c"),
    (lambda: -(a + b), "-(a + b)"),
    (lambda: a - -b, "a - -b"),
    (lambda: (a * b) ** 2, "(a * b) ** 2"),
    (lambda: a * b**2, "a * b ** 2"),
    (lambda: x.T @ y, "x.T @ y"),
    (lambda: x @ y @ x, "x @ y @ x"),
    (lambda: x @ (y @ x), "x @ (y @ x)"),
    (lambda: (x + y) @ x, "(x + y) @ x"),
    (lambda: (x @ y).T, "(x @ y).T"),
    (lambda: x[1:, ::2], "x[1:, ::2]"),
    (lambda: x[::-1, 1], "x[::-1, 1]"),
    (lambda: a[1:][::2], "a[1:][::2]"),
    (lambda: x.sum(axis=1), "x.sum(axis=1)"),
    (lambda: (a + b).sum(), "(a + b).sum()"),
    (lambda: x.T.sum(axis=0), "x.T.sum(axis=0)"),
    (lambda: (-a).sum(), "(-a).sum()"),
    (lambda: ex.exp(a + b), "exp(a + b)"),
    (lambda: ex.maximum(a, b * 2), "maximum(a, b * 2)"),
    (lambda: ex.where(a > 1, a, 0.0), "where(a > 1, a, 0.0)"),
    (lambda: (a < b) & (b < c), "(a < b) & (b < c)"),
    (lambda: ~(a < b), "~(a < b)"),
    (lambda: a + b < b * c, "a + b < b * c"),
    (lambda: a < (b < c), "a < (b < c)"),
    (lambda: (a < b) < c, "(a < b) < c"),
    (lambda: a * 2.0, "a * 2.0"),
    (lambda: 2.0 * a, "2.0 * a"),
    (lambda: 2**a, "2 ** a"),
    (lambda: ex.power(-2.0, a), "(-2.0) ** a"),
    (lambda: ex.constant(-1.5) * a, "-1.5 * a"),
    (lambda: a - ex.constant(-2.0), "a - -2.0"),
    (lambda: x.astype("float32"), "x.astype(float32)"),
    (lambda: (a + 1).astype("int32"), "(a + 1).astype(int32)"),
    (lambda: x.reshape((9,)), "x.reshape((9,))"),
    (lambda: ex.constant([1.0, 2.0, 3.0, 4.0]) + a, "[1.0, 2.0, 3.0, 4.0] + a"),
    (lambda: ex.sqrt(ex.log(a) ** 2), "sqrt(log(a) ** 2)"),
]


@pytest.mark.parametrize("build,expected", INFIX)
def test_infix_text(build, expected):
    assert str(build()) == expected


@pytest.mark.parametrize("build,expected", INFIX)
def test_infix_text_evaluates_to_the_same_values(build, expected):
    """The text, run as Python on NumPy arrays, computes what the graph computes."""
    expr = build()
    text = str(expr)
    with np.errstate(all="ignore"):
        from_text = eval(text, {}, dict(NAMESPACE))  # noqa: S307 - our own text
    inputs = {v: VALUES[v] for v in ex.graph.graph_inputs([expr])}
    computed = ex.function(list(inputs), expr)(*inputs.values())
    assert np.shape(from_text) == computed.shape, text
    np.testing.assert_allclose(from_text, computed, rtol=1e-12, err_msg=text)


def test_names_and_leaves():
    assert str(a) == "a"
    assert str(ex.vector()) == "<float64 (?,)>"
    assert str(ex.constant(np.arange(10.0)) + a) == "<constant float64 (10,)> + a"
    h = a + b
    h.name = "h"
    assert str(h * c) == "h * c"
    assert repr(a + 1) == "<TensorVariable a + 1 : float64 (?,)>"


def test_renaming_changes_the_text_of_what_was_shown_before():
    v = ex.vector("v")
    inner = v + 1
    outer = ex.exp(inner * 2)
    assert str(outer) == "exp((v + 1) * 2)"
    inner.name = "inner"
    assert str(outer) == "exp(inner * 2)"
    assert str(outer + 1) == "exp(inner * 2) + 1"
    inner.name = None
    assert str(outer) == "exp((v + 1) * 2)"


def test_long_text_is_cut():
    v = ex.vector("v")
    z = v
    for _ in range(200):
        z = z + v
    text = str(z)
    assert len(text) == MAX_INFIX and text.endswith("…")


# --- debugprint ---------------------------------------------------------------------

_LINE = re.compile(r"^(?P<prefix>[ │├└─]*)(?P<title>\S.*?) \[id (?P<id>[A-Z]+)\] (?P<rest>.+)$")


def _leaf_title(var):
    if isinstance(var, ex.Constant):
        return repr(var.value.item()) if var.value.ndim == 0 else None
    return var.name


def check_debugprint(text, outputs):
    """Check ``text`` line by line against the graph of ``outputs``.

    Each output starts a tree at depth 0; a line's children are its node's inputs in order;
    each variable has one id, shown the first time with its dtype and static shape and its
    subtree, and later with ``···`` alone.
    """
    lines = text.split("\n")
    parsed = []
    for line in lines:
        match = _LINE.match(line)
        assert match, f"unexpected line {line!r}"
        prefix = match["prefix"]
        depth = 0 if not prefix else (len(prefix) - 1) // 3
        parsed.append((depth, match["title"], match["id"], match["rest"]))
    ids, seen = {}, set()
    position = 0

    def visit(var, depth):
        nonlocal position
        assert position < len(parsed), f"the text ends before {var} is shown"
        line_depth, title, ident, rest = parsed[position]
        position += 1
        assert line_depth == depth, f"{var} at depth {line_depth}, expected {depth}"
        assert ids.setdefault(var, ident) == ident, f"{var} shown as id {ident} and {ids[var]}"
        assert list(ids.values()).count(ident) == 1, f"id {ident} names two variables"
        if var.owner is not None:
            assert title.startswith(var.owner.op.debug_name()), (title, var.owner.op.debug_name())
            if var.name:
                assert f"'{var.name}'" in title
        elif _leaf_title(var) is not None:
            assert title == _leaf_title(var)
        if var in seen:
            assert rest == "···"
            return
        seen.add(var)
        assert rest == str(var.type)  # dtype, static shape and weakness
        for child in var.owner.inputs if var.owner is not None else ():
            visit(child, depth + 1)

    stack_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(stack_limit, 10000))
    try:
        for out in outputs:
            visit(out, 0)
    finally:
        sys.setrecursionlimit(stack_limit)
    assert position == len(parsed), "lines left over"
    assert seen == set(ancestors(outputs))


def test_debugprint_exact_text():
    v = ex.vector("v")
    expected = (
        "Elemwise{add} [id A] float64 (?,)\n"
        " ├─ Elemwise{exp} [id B] float64 (?,)\n"
        " │  └─ v [id C] float64 (?,)\n"
        " └─ v [id C] ···"
    )
    assert ex.debugprint(ex.exp(v) + v, file="str") == expected


def test_debugprint_shows_a_repeated_subtree_by_its_id():
    v = ex.vector("v")
    s = v * 2
    text = ex.debugprint(s + s * s, file="str")
    assert text == (
        "Elemwise{add} [id A] float64 (?,)\n"
        " ├─ Elemwise{multiply} [id B] float64 (?,)\n"
        " │  ├─ v [id C] float64 (?,)\n"
        " │  └─ 2 [id D] int64 () weak\n"
        " └─ Elemwise{multiply} [id E] float64 (?,)\n"
        "    ├─ Elemwise{multiply} [id B] ···\n"
        "    └─ Elemwise{multiply} [id B] ···"
    )
    check_debugprint(text, [s + s * s])


def test_debugprint_structure_of_a_larger_graph():
    t = ex.tensor("t", dtype="float32", shape=(None, 3))
    u = ex.fvector("u")
    scaled = t * 2.0
    scaled.name = "scaled"
    outputs = [(scaled.sum(axis=1) + u).mean(), scaled.T @ t, ex.exp(t[1:, ::2]).astype("float64")]
    text = ex.debugprint(outputs, file="str")
    check_debugprint(text, outputs)
    assert "float32 (?, 3)" in text and "float32 (3, 3)" in text and "float64 () weak" in text
    assert "'scaled'" in text


def test_debugprint_of_a_compiled_function():
    t = ex.tensor("t", dtype="float32", shape=(None, 3))
    f = ex.function([t], [t.sum(axis=1) * 2.0, ex.exp(t)])
    text = ex.debugprint(f, file="str")
    assert text == ex.debugprint(f.outputs, file="str")
    check_debugprint(text, f.outputs)
    assert text.count("t [id") == 2 and text.count("···") == 1  # t is shared by the two outputs


def test_debugprint_destinations(capsys):
    v = ex.vector("v")
    expr = ex.exp(v)
    text = ex.debugprint(expr, file="str")
    assert isinstance(text, str)
    assert capsys.readouterr().out == ""
    assert ex.debugprint(expr) is None
    assert capsys.readouterr().out == text + "\n"
    buffer = io.StringIO()
    assert ex.debugprint(expr, file=buffer) is None
    assert buffer.getvalue() == text + "\n"
    assert capsys.readouterr().out == ""


def test_debugprint_of_a_leaf_and_a_constant():
    assert ex.debugprint(ex.fvector("v"), file="str") == "v [id A] float32 (?,)"
    assert ex.debugprint(ex.constant(1.5), file="str") == "1.5 [id A] float64 () weak"
    assert ex.debugprint(ex.constant(np.arange(10.0)), file="str") == "<constant float64 (10,)> [id A] float64 (10,)"


def test_debugprint_ids_go_past_z():
    v = ex.vector("v")
    z = v
    for _ in range(30):
        z = ex.sin(z)
    text = ex.debugprint(z, file="str")
    ids = [_LINE.match(line)["id"] for line in text.split("\n")]
    assert len(ids) == len(set(ids)) == 31
    assert ids[:3] == ["A", "B", "C"] and ids[26:28] == ["AA", "AB"]


# --- deep graphs -----------------------------------------------------------------------


def _deep(v, depth=DEEP):
    z = v
    for i in range(depth):
        z = ex.sin(z) if i % 2 else ex.exp(z)
    return z


def test_str_and_repr_of_a_deep_graph():
    v = ex.vector("v")
    z = _deep(v)
    assert DEEP > sys.getrecursionlimit()
    text = str(z)
    assert text.startswith("sin(exp(sin(") and text.endswith("…") and len(text) == MAX_INFIX
    assert repr(z).startswith("<TensorVariable sin(exp(")


def test_str_of_a_value_used_twice_at_every_level_stays_short():
    # Spelled out, the text doubles at each level: at depth 200, 2 ** 200 copies of v.
    z = ex.vector("v")
    for depth in range(1, 201):
        z = z * z + 1.0
        if depth == 8:
            full = to_infix(z, limit=None)
            assert len(full) > MAX_INFIX and str(z) == full[: MAX_INFIX - 1] + "…"
    assert len(str(z)) == MAX_INFIX and str(z).endswith("…")


def test_debugprint_of_a_deep_graph():
    v = ex.vector("v")
    z = _deep(v)
    text = ex.debugprint(z, file="str")
    lines = text.split("\n")
    assert len(lines) == DEEP + 1
    assert lines[0] == "Elemwise{sin} [id A] float64 (?,)"
    assert lines[-1].lstrip(" └─").startswith("v [id ")
    assert lines[-1].endswith("float64 (?,)")
    assert len(lines[-1]) - len(lines[-1].lstrip()) >= DEEP  # indented once per level


def test_source_of_a_deep_function():
    v = ex.vector("v")
    z = _deep(v)
    f = ex.function([v], z, backend="numpy")  # the listing: one line per node
    source = f.source
    assert len(source.split("\n")) == DEEP + 2  # the inputs, one line per node, the return
    data = np.array([0.1, -0.3])
    expected = data
    for i in range(DEEP):
        expected = np.sin(expected) if i % 2 else np.exp(expected)
    np.testing.assert_allclose(f(data), expected, rtol=1e-12)


def test_a_strong_numpy_scalar_that_promotes_shows_its_dtype():
    x = ex.vector("x", dtype="float32")
    assert str(x * np.float64(0.1)) == "x * float64(0.1)"
    assert str(np.float64(2) * x + 1) == "float64(2.0) * x + 1"
    # A Python number, or a NumPy scalar of the other operand's dtype, changes nothing: plain.
    assert str(x * 0.1) == "x * 0.1"
    assert str(ex.constant(np.float32(2)) * x) == "2.0 * x"
    w = ex.shared(np.zeros(3, "float32"))
    with pytest.raises(TypeError, match=r"x \* float64\(0\.1\) is float64, expected float32"):
        ex.function([x], [], updates=[(w, x * np.float64(0.1))])


def test_debugprint_of_a_function_shows_every_update():
    x = ex.vector("x")
    w = ex.shared(np.zeros(3), name="w")
    steps = ex.shared(np.int64(0), name="steps")
    f = ex.function([x], (x * w).sum(), updates=[(w, w - 0.1 * x), (steps, steps + 1)])
    lines = ex.debugprint(f, file="str").splitlines()
    assert lines[0].startswith("Sum")
    written = [line.split(" ← ")[0] for line in lines if " ← " in line]
    assert written == ["w", "steps"]
    update = next(i for i, line in enumerate(lines) if line.startswith("w ← "))
    assert lines[update].startswith("w ← Elemwise{subtract}")
    # w itself was shown under the output first; the update's tree refers to it by id.
    assert lines[update + 1].startswith(" ├─ w [id") and lines[update + 1].endswith("···")
