"""A one-minute tour of exprc: run it with ``python -m exprc.demo``.

It builds a few real expressions, compiles them with :func:`exprc.function`,
runs them on generated data and checks every result against NumPy, printing
``OK`` or ``mismatch`` for each. Along the way it shows a graph
(``exprc.debugprint``), a compiled program (``f.source``) and one of the error
messages exprc gives for bad input. The exit status is 1 if any check fails.
"""
import sys
import textwrap

import numpy as np

import exprc as ex

RNG = np.random.default_rng(0)
BACKEND = "numpy"  # the reference back end: sections 1 to 8 use it; section 9 tries C
_results = []


def section(title):
    print(f"\n== {title}")


def show(label, value):
    print(f"   {label:<26}{value}")


def check(label, got, expected, rtol=1e-12, atol=0.0):
    """Compare an exprc result with NumPy's; print OK or mismatch."""
    got, expected = np.asarray(got), np.asarray(expected)
    same = got.shape == expected.shape and got.dtype == expected.dtype
    ok = same and np.allclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)
    _results.append(ok)
    detail = f"{got.dtype} {got.shape}"
    if not ok:
        detail += f" (NumPy gives {expected.dtype} {expected.shape})"
    print(f"   {'OK' if ok else 'mismatch':<9}{label}: {detail}")


def indent(text, limit=None):
    lines = text.splitlines()
    if limit is not None and len(lines) > limit:
        lines = lines[:limit] + [f"... ({len(lines) - limit} more lines)"]
    return "\n".join(("   | " + line).rstrip() for line in lines)


def gaussian_kernel():
    section("1. A Gaussian kernel row sum: exp(-x**2).sum(axis=1)")
    x = ex.matrix("x")
    y = ex.exp(-x**2).sum(axis=1)
    show("str(y)", y)
    show("y.type", y.type)
    f = ex.function([x], y, backend=BACKEND)
    data = RNG.normal(size=(1000, 64))
    check("f(x) vs np.exp(-x**2).sum(axis=1)", f(data), np.exp(-data**2).sum(axis=1))


def stable_reductions():
    section("2. Softmax and logsumexp where naive NumPy overflows")
    v = ex.vector("v")
    f = ex.function([v], [ex.logsumexp(v), ex.softmax(v)], backend=BACKEND)
    data = np.array([1000.0, 1001.0, 1002.0])
    lse, sm = f(data)
    with np.errstate(over="ignore", invalid="ignore"):
        naive_lse = np.log(np.exp(data).sum())
        naive_sm = np.exp(data) / np.exp(data).sum()
    show("v", data)
    show("naive NumPy logsumexp", naive_lse)
    show("ex.logsumexp(v)", np.round(lse, 6))
    show("naive NumPy softmax", naive_sm)
    show("ex.softmax(v)", np.round(sm, 6))
    shifted = data - data.max()
    check("logsumexp vs shifted NumPy", lse, np.log(np.exp(shifted).sum()) + data.max())
    check("softmax vs shifted NumPy", sm, np.exp(shifted) / np.exp(shifted).sum())


def broadcasting():
    section("3. Broadcasting: a length declared None that is 1 at run time")
    m = ex.matrix("m")
    w = ex.vector("w")  # length unknown (None) until the call
    f = ex.function([m, w], (m * w).sum(axis=1), backend=BACKEND)
    a, b = RNG.normal(size=(4, 3)), np.array([2.5])
    show("m.type, w.type", f"{m.type}, {w.type}")
    show("called with shapes", f"{a.shape} and {b.shape}")
    check("(m * w).sum(axis=1)", f(a, b), (a * b).sum(axis=1))
    h = ex.fvector("h")
    show("dtype of fvector * 2.0", f"{(h * 2.0).dtype} (a Python scalar is weak, as in NumPy 2)")
    return f


def indexing():
    section("4. Integer-array indexing and inc_subtensor with repeated indices")
    x = ex.matrix("x")
    idx = ex.lvector("idx")
    gather = x[idx, 1:]
    scatter = ex.inc_subtensor(x[idx], 1.0)
    f = ex.function([x, idx], [gather, scatter], backend=BACKEND)
    data, rows = np.arange(12.0).reshape(4, 3), np.array([2, 0, 2])
    got_gather, got_scatter = f(data, rows)
    expected = data.copy()
    np.add.at(expected, rows, 1.0)  # repeated rows accumulate
    show("scatter", scatter)
    show("row 2 after (+1 twice)", got_scatter[2])
    check("x[idx, 1:]", got_gather, data[rows, 1:])
    check("inc_subtensor vs np.add.at", got_scatter, expected)


def linear_algebra():
    section("5. Matrix product")
    a, b = ex.matrix("a"), ex.matrix("b")
    f = ex.function([a, b], ex.tanh(a @ b.T), backend=BACKEND)
    da, db = RNG.normal(size=(5, 4)), RNG.normal(size=(3, 4))
    check("tanh(a @ b.T)", f(da, db), np.tanh(da @ db.T), rtol=1e-10)


def inspection(broadcast_function):
    section("6. Looking inside: ex.debugprint(ex.softmax(v)), max-shifted for stability")
    v = ex.vector("v")
    print(indent(ex.debugprint(ex.softmax(v), file="str")))
    section("7. The program the broadcasting example runs: f.source")
    print(indent(broadcast_function.source))


def error_message():
    section("8. Bad input gets a clear error")
    v = ex.fvector("v")
    f = ex.function([v], v * 2, backend=BACKEND)
    try:
        f(np.ones(3))  # float64 data for a float32 input
    except TypeError as err:
        print(textwrap.fill(f"TypeError: {err}", width=88, initial_indent="   ", subsequent_indent="     "))
    else:
        print("   mismatch: float64 data for a float32 input was accepted")
        _results.append(False)


def _kernel_loop(source):
    """The loop nest of the first kernel in generated C, or None if it cannot be found."""
    lines = source.splitlines()
    body = next((i for i, line in enumerate(lines) if line.startswith("void ")), None)
    if body is None:
        return None
    loop = next((i for i in range(body, len(lines)) if "for (" in lines[i]), None)
    end = next((i for i in range(body, len(lines)) if lines[i] == "}"), None)
    if loop is None or end is None or loop > end:
        return None
    if lines[loop - 1].lstrip().startswith("#pragma"):
        loop -= 1
    return textwrap.dedent("\n".join(lines[loop:end]))


def c_backend():
    section('9. The C back end: ex.function(..., backend="c")')
    x = ex.matrix("x")
    try:
        f = ex.function([x], ex.exp(-x**2).sum(axis=1), backend="c")
        data = RNG.normal(size=(200, 64))
        got = f(data)
    except Exception as err:
        if isinstance(err, ImportError) or "is not known" in str(err):  # not built (or not registered)
            print(f"   not available yet ({type(err).__name__}: {err});")
            print("   the NumPy reference back end ran everything above")
        else:  # present but not working here (no C compiler?): say so, the tour goes on
            print(f"   present but failed on a small probe: {type(err).__name__}: {err}")
        return
    check("exp(-x**2).sum(axis=1) in C", got, np.exp(-data**2).sum(axis=1), rtol=1e-10)
    loop = _kernel_loop(f.source)
    total = len(f.source.splitlines())
    if loop is None:
        print(indent(f.source, limit=16))
    else:
        print(f"   the fused loop of the generated kernel (f.source has {total} lines in all):")
        print(indent(loop, limit=18))


def main():
    print(f"exprc {ex.__version__} tour (NumPy {np.__version__}); every result is checked against NumPy")
    print(f'Sections 1-8 compile with ex.function(..., backend="{BACKEND}"), the reference back end.')
    gaussian_kernel()
    stable_reductions()
    broadcast_function = broadcasting()
    indexing()
    linear_algebra()
    inspection(broadcast_function)
    error_message()
    c_backend()
    failed = _results.count(False)
    print(f"\n{len(_results) - failed} of {len(_results)} checks OK" + (f", {failed} mismatch" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
