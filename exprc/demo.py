"""A one-minute tour of exprc: run it with ``python -m exprc.demo``.

It first trains two small models on data it generates itself, a logistic
regression and then a two-layer MLP, with parameters in shared variables and
a compiled step function that updates them (a line per epoch: loss, accuracy,
time), and prints part of the C generated for the training step. Then it
builds a few more expressions, compiles them with :func:`exprc.function`,
runs them and checks every result against NumPy, printing ``OK`` or
``mismatch`` for each. Along the way it shows a graph (``exprc.debugprint``),
the generated C (``f.source``), one of the error messages exprc gives for bad
input, and a fused kernel timed against NumPy. The exit status is 1 if any
check fails.

``python -m exprc.demo --device cuda`` then trains the same MLP on the GPU
(parameters in device memory, one call per step) where one is available, and
otherwise says why not; the CPU tour runs either way.
"""

import argparse
import sys
import textwrap
import time

import numpy as np

import exprc as ex

RNG = np.random.default_rng(0)
_results = []


_sections = []


def section(title):
    _sections.append(title)
    print(f"\n== {len(_sections)}. {title}")


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


def _host(value):
    """A device array's value as NumPy (a copy from the GPU); NumPy values as they are."""
    return value.get() if hasattr(value, "get") else value


def _epochs(step, n_batches, epochs, accuracy_of):
    """Run ``step(i)`` over every minibatch ``i`` for each epoch; print loss, accuracy and time."""
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        # On the GPU the losses stay there until the epoch is done: one copy back, not one per step.
        losses = [float(_host(loss)) for loss in [step(i) for i in range(n_batches)]]
        took = time.perf_counter() - start
        print(
            f"   epoch {epoch}  loss {np.mean(losses):.4f}  accuracy {accuracy_of():6.1%}  "
            f"{took * 1e3:6.1f} ms ({n_batches} steps)"
        )


def logistic_regression():
    section("Training a logistic regression: parameters in shared variables, one compiled step")
    n, d, batch = 4000, 20, 200
    labels = RNG.integers(0, 2, n)
    points = RNG.normal(size=(2, d))[labels] + 1.5 * RNG.normal(size=(n, d))
    # The data lives in shared variables too; a minibatch is a slice of it chosen by index.
    data, targets = ex.shared(points, name="data"), ex.shared(labels.astype(float), name="targets")
    w, b = ex.shared(np.zeros(d), name="w"), ex.shared(0.0, name="b")
    x, t, i = ex.matrix("x"), ex.vector("t"), ex.lscalar("i")
    p = ex.sigmoid(x @ w + b)
    cost = -(t * ex.log(p) + (1 - t) * ex.log(1 - p)).mean()  # as written; the rewrites make it stable
    gw, gb = ex.grad(cost, [w, b])
    rows = slice(i * batch, (i + 1) * batch)
    step = ex.function(
        [i], cost, updates=[(w, w - 0.5 * gw), (b, b - 0.5 * gb)], givens={x: data[rows], t: targets[rows]}
    )
    predict = ex.function([x], p > 0.5)
    print(
        "   step = ex.function([i], cost, updates=[(w, w - 0.5 * gw), (b, b - 0.5 * gb)], givens={x: data[rows], ...})"
    )
    _epochs(step, n // batch, 4, lambda: np.mean(predict(points) == labels))
    z = points @ w.get_value() + b.get_value()
    expected = np.mean(np.logaddexp(0, -z) * labels + np.logaddexp(0, z) * (1 - labels))
    full_cost = ex.function([], cost, givens={x: data, t: targets})
    check("cost on all the data vs NumPy", full_cost(), expected, rtol=1e-10)


def mlp(device="cpu", epochs=6):
    """Train the MLP with its step compiled for ``device`` ("cpu" or "cuda")."""
    where = " on the GPU" if device == "cuda" else ""
    section(f"Training a two-layer MLP (float32){where}: tanh hidden layer, softmax cross-entropy")
    n, d, hidden, classes, batch, rate = 8192, 64, 128, 10, 256, np.float32(0.2)
    points = RNG.normal(size=(n, d)).astype(np.float32)
    teacher = np.tanh(points @ RNG.normal(size=(d, 32))) @ RNG.normal(size=(32, classes))
    labels = teacher.argmax(axis=1)
    one_hot = np.eye(classes, dtype=np.float32)[labels]
    data, targets = ex.shared(points, name="data"), ex.shared(one_hot, name="targets")
    W1 = ex.shared((RNG.normal(size=(d, hidden)) / np.sqrt(d)).astype(np.float32), name="W1")
    b1 = ex.shared(np.zeros(hidden, np.float32), name="b1")
    W2 = ex.shared((RNG.normal(size=(hidden, classes)) / np.sqrt(hidden)).astype(np.float32), name="W2")
    b2 = ex.shared(np.zeros(classes, np.float32), name="b2")
    params = [W1, b1, W2, b2]
    x, y, i = ex.fmatrix("x"), ex.fmatrix("y"), ex.lscalar("i")
    logits = ex.tanh(x @ W1 + b1) @ W2 + b2
    loss = -(y * ex.log_softmax(logits, axis=1)).sum(axis=1).mean()
    grads = ex.grad(loss, params)
    rows = slice(i * batch, (i + 1) * batch)
    step = ex.function(
        [i],
        loss,
        updates=[(p, p - rate * g) for p, g in zip(params, grads)],
        givens={x: data[rows], y: targets[rows]},
        name="mlp_step",
        device=device,
    )
    predict = ex.function([x], logits.argmax(axis=1), device=device)
    _epochs(step, n // batch, epochs, lambda: np.mean(_host(predict(points)) == labels))
    h = np.tanh(points @ W1.get_value() + b1.get_value())
    z = h @ W2.get_value() + b2.get_value()
    log_p = z - z.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    full_loss = ex.function([], loss, givens={x: data, y: targets}, device=device)
    check("loss on all the data vs NumPy", _host(full_loss()), -(one_hot * log_p).sum(axis=1).mean(), rtol=1e-5)
    source = step.source
    summary = source[: source.index("*/")].splitlines()
    language = "CUDA" if device == "cuda" else "C"
    print(
        f"   the training step's {language} (step.source, {len(source.splitlines())} lines): its plan, then one kernel"
    )
    print(indent("\n".join(summary), limit=14))
    kernel = _kernel_computing(source, "W1 - ")
    if kernel is not None:
        print(indent(kernel, limit=40))


def _kernel_computing(source, text):
    """The comment and the contiguous fast path of the first kernel in generated C that
    computes an expression starting with ``text``, or None."""
    lines = source.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(" * computes " + text):
            start = max(k for k in range(i + 1) if lines[k] == "/*")
            end = next((k for k in range(i, len(lines)) if lines[k].strip() == "} else {"), None)
            if end is not None:
                return "\n".join(lines[start:end] + ["    } else { ... the same loop for any strides ..."])
    return None


def gaussian_kernel():
    section("A Gaussian kernel row sum: exp(-x**2).sum(axis=1)")
    x = ex.matrix("x")
    y = ex.exp(-(x**2)).sum(axis=1)
    show("str(y)", y)
    show("y.type", y.type)
    f = ex.function([x], y)
    data = RNG.normal(size=(1000, 64))
    check("f(x) vs np.exp(-x**2).sum(axis=1)", f(data), np.exp(-(data**2)).sum(axis=1))


def stable_reductions():
    section("Naive formulas made safe: log(sum(exp(v))) and exp(v) / sum(exp(v)) as written")
    v = ex.vector("v")
    naive = [ex.log(ex.exp(v).sum()), ex.exp(v) / ex.exp(v).sum(keepdims=True)]
    f = ex.function([v], naive)
    data = np.array([1000.0, 1001.0, 1002.0])
    lse, sm = f(data)
    with np.errstate(over="ignore", invalid="ignore"):
        naive_lse = np.log(np.exp(data).sum())
        naive_sm = np.exp(data) / np.exp(data).sum()
    show("v", data)
    show("naive NumPy logsumexp", naive_lse)
    show("exprc, same formula", np.round(lse, 6))
    show("naive NumPy softmax", naive_sm)
    show("exprc, same formula", np.round(sm, 6))
    print("  why: the rewrites that fired (f.rewrites)")
    print(indent(str(f.rewrites)))
    shifted = data - data.max()
    check("logsumexp vs shifted NumPy", lse, np.log(np.exp(shifted).sum()) + data.max())
    check("softmax vs shifted NumPy", sm, np.exp(shifted) / np.exp(shifted).sum())


def broadcasting():
    section("Broadcasting: a length declared None that is 1 at run time")
    m = ex.matrix("m")
    w = ex.vector("w")  # length unknown (None) until the call
    f = ex.function([m, w], (m * w).sum(axis=1))
    a, b = RNG.normal(size=(4, 3)), np.array([2.5])
    show("m.type, w.type", f"{m.type}, {w.type}")
    show("called with shapes", f"{a.shape} and {b.shape}")
    check("(m * w).sum(axis=1)", f(a, b), (a * b).sum(axis=1))
    h = ex.fvector("h")
    show("dtype of fvector * 2.0", f"{(h * 2.0).dtype} (a Python scalar is weak, as in NumPy 2)")
    return f


def indexing():
    section("Integer-array indexing and inc_subtensor with repeated indices")
    x = ex.matrix("x")
    idx = ex.lvector("idx")
    gather = x[idx, 1:]
    scatter = ex.inc_subtensor(x[idx], 1.0)
    f = ex.function([x, idx], [gather, scatter])
    data, rows = np.arange(12.0).reshape(4, 3), np.array([2, 0, 2])
    got_gather, got_scatter = f(data, rows)
    expected = data.copy()
    np.add.at(expected, rows, 1.0)  # repeated rows accumulate
    show("scatter", scatter)
    show("row 2 after (+1 twice)", got_scatter[2])
    check("x[idx, 1:]", got_gather, data[rows, 1:])
    check("inc_subtensor vs np.add.at", got_scatter, expected)


def linear_algebra():
    section("Matrix product")
    a, b = ex.matrix("a"), ex.matrix("b")
    f = ex.function([a, b], ex.tanh(a @ b.T))
    da, db = RNG.normal(size=(5, 4)), RNG.normal(size=(3, 4))
    check("tanh(a @ b.T)", f(da, db), np.tanh(da @ db.T), rtol=1e-10)


def inspection(broadcast_function):
    section("Looking inside: ex.debugprint(ex.softmax(v)), max-shifted for stability")
    v = ex.vector("v")
    print(indent(ex.debugprint(ex.softmax(v), file="str")))
    section("The C the broadcasting example compiled to: its kernel, from f.source")
    source = broadcast_function.source
    kernel = _first_kernel(source)
    print(f"   (f.source has {len(source.splitlines())} lines in all: a summary, the kernels, the entry point)")
    print(indent(kernel if kernel is not None else source, limit=40))


def error_message():
    section("Bad input gets a clear error")
    v = ex.fvector("v")
    f = ex.function([v], v * 2)
    try:
        f(np.ones(3))  # float64 data for a float32 input
    except TypeError as err:
        print(textwrap.fill(f"TypeError: {err}", width=88, initial_indent="   ", subsequent_indent="     "))
    else:
        print("   mismatch: float64 data for a float32 input was accepted")
        _results.append(False)


def _first_kernel(source):
    """The comment and the loops of the first kernel in generated C, or None if not found."""
    lines = source.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("static void k")), None)
    if start is None:
        return None
    while start > 0 and lines[start - 1].strip() and not lines[start - 1].startswith("#"):
        start -= 1  # the comment block above it
    end = next((i for i in range(start, len(lines)) if lines[i] == "}"), None)
    return None if end is None else "\n".join(lines[start : end + 1])


def _best_time(fn, *args, repeat=5):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - start)
    return best


def speed():
    section("One fused loop against NumPy: exp(-x*x)*sin(y) + log1p(z*z)*tanh(x), 2,000,000 elements")
    x, y, z = ex.vector("x"), ex.vector("y"), ex.vector("z")
    start = time.perf_counter()
    f = ex.function([x, y, z], ex.exp(-x * x) * ex.sin(y) + ex.log1p(z * z) * ex.tanh(x))
    built = time.perf_counter() - start
    data = [RNG.normal(size=2_000_000) for _ in range(3)]

    def numpy_version(a, b, c):
        return np.exp(-a * a) * np.sin(b) + np.log1p(c * c) * np.tanh(a)

    check("fused kernel vs NumPy", f(*data), numpy_version(*data), rtol=1e-12, atol=1e-15)
    ours, theirs = _best_time(f, *data), _best_time(numpy_version, *data)
    show("exprc.function took", f"{built * 1e3:.0f} ms (compiled, or loaded from the disk cache)")
    show("one call, exprc", f"{ours * 1e3:.1f} ms (one pass, all cores, vector math)")
    show("one call, NumPy", f"{theirs * 1e3:.1f} ms (eight passes, eight temporaries)")


def gpu_training():
    """The MLP again, on the GPU when there is one; a line saying why not otherwise."""
    if not ex.cuda.is_available():
        print(f"\n== GPU training skipped: {'; '.join(ex.cuda.missing())}")
        return
    mlp(device="cuda")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m exprc.demo", description="A one-minute tour of exprc.")
    parser.add_argument(
        "--device", choices=("cpu", "cuda"), default="cpu", help="cuda: after the tour, train the MLP on the GPU too"
    )
    args = parser.parse_args(argv)
    print(f"exprc {ex.__version__} tour (NumPy {np.__version__}); every result is checked against NumPy")
    print("Every function compiles to C: fused loops, built once and kept in the disk cache.")
    logistic_regression()
    mlp()
    gaussian_kernel()
    stable_reductions()
    broadcast_function = broadcasting()
    indexing()
    linear_algebra()
    inspection(broadcast_function)
    error_message()
    speed()
    if args.device == "cuda":
        gpu_training()
    failed = _results.count(False)
    print(f"\n{len(_results) - failed} of {len(_results)} checks OK" + (f", {failed} mismatch" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
