"""The classic Theano tutorials (lisa-lab/DeepLearningTutorials), run unchanged on exprc
through exprc.compat.theano and on PyTensor through a name shim, on synthetic data of
MNIST's shapes.

    python benchmarks/bench_theano_tutorials.py --tutorials DeepLearningTutorials/code \\
        [--pytensor-python PYTHON] [--n-train 5000] [--timeout 240]

(``--pytensor-python``: a Python with PyTensor installed, by default this one.)

Each tutorial runs in a subprocess of its own: its module is imported from the folder
given (the source is never edited) and its main function called with few epochs. The
child timestamps every line the tutorial prints; the report takes the loss or error of
each epoch line and the seconds between them. Writes benchmarks/results/theano-tutorials.md.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import json
import os
import pickle
import re
import subprocess
import sys
import tempfile
import textwrap
from concurrent.futures import ThreadPoolExecutor

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

#: tutorial module -> (main function, keyword arguments; "DATA" is the data set's path).
TUTORIALS = {
    "logistic_sgd": ("sgd_optimization_mnist", {"n_epochs": 3, "dataset": "DATA", "batch_size": 600}),
    "logistic_cg": ("cg_optimization_mnist", {"n_epochs": 3, "mnist_pkl_gz": "DATA"}),
    "mlp": ("test_mlp", {"n_epochs": 3, "dataset": "DATA", "batch_size": 20}),
    "dA": ("test_dA", {"training_epochs": 2, "dataset": "DATA", "batch_size": 20}),
    "cA": ("test_cA", {"training_epochs": 2, "dataset": "DATA", "batch_size": 20}),
    "convolutional_mlp": ("evaluate_lenet5", {"n_epochs": 2, "dataset": "DATA", "batch_size": 500}),
    "SdA": (
        "test_SdA",
        {"pretraining_epochs": 1, "training_epochs": 2, "dataset": "DATA", "batch_size": 20},
    ),
    "rbm": (
        "test_rbm",
        {"training_epochs": 2, "dataset": "DATA", "batch_size": 20, "n_chains": 5, "n_samples": 2},
    ),
    "DBN": (
        "test_DBN",
        {"pretraining_epochs": 1, "training_epochs": 2, "dataset": "DATA", "batch_size": 20},
    ),
}

#: Tutorials left out, and why (their data formats are not synthesized here).
NOT_RUN = {
    "hmc/hmc.py": "a sampler test, not an MNIST program (hmc/test_hmc.py); not run",
    "lstm": "needs imdb.pkl (IMDB token lists); not synthesized",
    "rnnslu": "needs the ATIS pickles and conlleval.pl; not synthesized",
    "rnnrbm": "needs MIDI files (Nottingham) and midi.utils; not synthesized",
}


def write_shim(folder: str) -> None:
    """PyTensor keeps tensor.nnet out (softmax lives in pytensor.tensor.special); the shim
    maps the names the tutorials use that PyTensor still has, and leaves out the rest."""
    files = {
        "theano/__init__.py": """
            import pytensor as _p
            from pytensor import function, shared, config, printing, gradient, In, scan
            from pytensor.gradient import grad
            from . import tensor
            __version__ = _p.__version__
            """,
        "theano/tensor/__init__.py": """
            from pytensor.tensor import *  # noqa
            from pytensor.tensor import grad  # noqa
            from . import nnet, shared_randomstreams  # noqa
            """,
        "theano/tensor/nnet/__init__.py": """
            from pytensor.tensor.special import softmax as _softmax
            from pytensor.tensor.math import sigmoid  # noqa
            from pytensor.tensor.math import softplus  # noqa
            def softmax(x):
                return _softmax(x, axis=-1)
            # conv2d and binary_crossentropy were dropped from PyTensor with tensor.nnet
            """,
        "theano/tensor/shared_randomstreams.py": """
            from pytensor.tensor.random.utils import RandomStream as RandomStreams  # noqa
            """,
        "theano/tensor/signal/__init__.py": "",
        "theano/tensor/signal/pool.py": """
            from pytensor.tensor.signal.pool import pool_2d  # noqa
            """,
        "theano/ifelse.py": "from pytensor.ifelse import ifelse  # noqa\n",
        "theano/printing.py": "from pytensor.printing import *  # noqa\n",
        "theano/sandbox/__init__.py": "",
        "theano/sandbox/rng_mrg.py": """
            # PyTensor dropped sandbox.rng_mrg (MRG_RandomStreams)
            from pytensor.sandbox.rng_mrg import MRG_RandomStreams  # noqa
            """,
    }
    for path, text in files.items():
        full = os.path.join(folder, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(textwrap.dedent(text))


# Runs in the child: stubs the two third-party modules the tutorials import that the
# benchmark environments lack (six for cPickle, PIL for saving filter images), then
# imports the tutorial and calls its main function, timestamping each printed line.
CHILD = r"""
import json, os, pickle, sys, time, types
backend, tutorials, module, func, kwargs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
six = types.ModuleType("six"); moves = types.ModuleType("six.moves")
moves.cPickle = pickle; moves.xrange = range; six.moves = moves
import urllib; moves.urllib = urllib
sys.modules.update({"six": six, "six.moves": moves, "six.moves.cPickle": pickle})
try:
    import PIL.Image
except ImportError:
    class _Img:
        def save(self, *a, **k): pass
    pil = types.ModuleType("PIL"); img = types.ModuleType("PIL.Image")
    img.fromarray = lambda *a, **k: _Img(); pil.Image = img
    sys.modules.update({"PIL": pil, "PIL.Image": img})
if backend == "exprc":
    from exprc.compat.theano import install
    install()
else:
    sys.path.insert(0, os.environ["THEANO_SHIM"])
sys.path.insert(0, tutorials)
start = time.perf_counter()
out = sys.stdout
class Stamp:
    pending = ""
    def write(self, s):
        # print("a", b) writes in pieces: stamp whole lines only
        *lines, self.pending = (self.pending + s).split("\n")
        for line in lines:
            if line.strip():
                out.write("@%.3f %s\n" % (time.perf_counter() - start, line))
        out.flush()
    def flush(self):
        out.flush()
sys.stdout = Stamp()
mod = __import__(module)
print("IMPORTED")
getattr(mod, func)(**kwargs)
print("FINISHED")
"""

EPOCH = re.compile(r"epoch[ ,:]*(\d+)", re.I)
NUMBER = re.compile(r"(-?\d+\.\d+(?:e[-+]?\d+)?)")


def make_mnist(path: str, n_train: int, seed: int = 0) -> None:
    """mnist.pkl.gz's format: a gzip pickle of (train, valid, test), each (x float32
    (n, 784) in [0, 1], y int64): ten class prototypes plus noise, so losses fall."""
    rng = np.random.default_rng(seed)
    protos = rng.random((10, 784), dtype=np.float32)
    sets = []
    for n in (n_train, n_train // 5, n_train // 5):
        y = rng.integers(0, 10, n).astype(np.int64)
        x = np.clip(protos[y] * 0.6 + rng.random((n, 784), dtype=np.float32) * 0.4, 0, 1)
        # a fifth of the labels drawn anew, so the error stays away from zero
        flip = rng.random(n) < 0.2
        y[flip] = rng.integers(0, 10, flip.sum())
        sets.append((x.astype(np.float32), y))
    with gzip.open(path, "wb") as f:
        pickle.dump(tuple(sets), f, protocol=2)


def run_one(python: str, backend: str, tutorials: str, name: str, data: str, timeout: int, env):
    func, kwargs = TUTORIALS[name]
    kwargs = {k: (data if v == "DATA" else v) for k, v in kwargs.items()}
    workdir = tempfile.mkdtemp(prefix=f"tut-{name}-{backend}-")
    cmd = [python, "-c", CHILD, backend, tutorials, name, func, json.dumps(kwargs)]
    try:
        proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
        stdout, stderr, rc = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as e:
        stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        stderr, rc = f"timed out after {timeout} s", None
    lines = []
    for line in stdout.splitlines():
        if line.startswith("@"):
            t, _, text = line[1:].partition(" ")
            lines.append((float(t), text))
    epochs, imported = [], None
    for t, text in lines:
        if text == "IMPORTED":
            imported = t
        m = EPOCH.search(text)
        nums = NUMBER.findall(text)
        if m and nums:
            epochs.append((int(m.group(1)), float(nums[-1]), t))
    # one value per epoch: the last line printed for it
    per_epoch = {}
    for e, v, t in epochs:
        per_epoch[e] = (v, t)
    error = ""
    if rc != 0:
        tail = [s for s in stderr.strip().splitlines() if s.strip()]
        error = tail[-1] if tail else f"exit {rc}"
    times = [t for _, (_, t) in sorted(per_epoch.items())]
    starts = [imported or 0.0] + times[:-1]
    secs = [round(b - a, 2) for a, b in zip(starts, times)]
    return {
        "ok": rc == 0,
        "error": error[:300],
        "values": [v for _, (v, _) in sorted(per_epoch.items())],
        "seconds": secs,
        "stderr_tail": stderr[-2000:],
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tutorials", required=True, help="the folder holding logistic_sgd.py ...")
    p.add_argument("--pytensor-python", default=sys.executable, help="a Python with PyTensor (default: this one)")
    p.add_argument("--n-train", type=int, default=5000)
    p.add_argument("--timeout", type=int, default=240)
    p.add_argument("--only", nargs="*", default=None)
    p.add_argument("--backends", nargs="*", default=["exprc", "pytensor"])
    p.add_argument("--json", default=None, help="also write the raw results here")
    p.add_argument("--merge", default=None, help="a --json file of an earlier run to keep")
    args = p.parse_args(argv)
    tutorials = os.path.abspath(args.tutorials)
    tmp = tempfile.mkdtemp(prefix="theano-tutorials-")
    data = os.path.join(tmp, "mnist.pkl.gz")
    make_mnist(data, args.n_train)
    shim = os.path.join(tmp, "shim")
    write_shim(shim)
    env = dict(os.environ, THEANO_SHIM=shim)
    names = args.only or list(TUTORIALS)
    shown = list(TUTORIALS)
    results = {}
    if args.merge:
        # earlier results for the tutorials not run again now
        with open(args.merge) as f:
            for key, r in json.load(f).items():
                name, backend = key.split("/")
                results[(name, backend)] = r
    # exprc and PyTensor run side by side, so both see the same load
    with ThreadPoolExecutor(len(args.backends)) as pool:
        for name in names:
            jobs = {
                b: pool.submit(
                    run_one,
                    sys.executable if b == "exprc" else args.pytensor_python,
                    b,
                    tutorials,
                    name,
                    data,
                    args.timeout,
                    env,
                )
                for b in args.backends
            }
            for b, job in jobs.items():
                r = results[(name, b)] = job.result()
                print(name, b, "ok" if r["ok"] else r["error"], r["values"], r["seconds"], flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({f"{k[0]}/{k[1]}": v for k, v in results.items()}, f, indent=1)
    write_report(results, [n for n in shown if any(k[0] == n for k in results)], args)
    return 0


def fmt(r) -> tuple[str, str, str]:
    if r is None:
        return "not run", "", ""
    runs = "yes" if r["ok"] else f"no: `{r['error']}`"
    vals = ", ".join(f"{v:.4g}" for v in r["values"])
    secs = ", ".join(f"{s:.1f}" for s in r["seconds"])
    return runs, vals, secs


def write_report(results, names, args) -> None:
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    rows = [
        "| tutorial | exprc runs? | exprc value per epoch | exprc s/epoch "
        "| PyTensor runs? | PyTensor value per epoch | PyTensor s/epoch |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in names:
        a = fmt(results.get((name, "exprc")))
        b = fmt(results.get((name, "pytensor")))
        rows.append(f"| {name} | " + " | ".join(a + b) + " |")
    for name, why in NOT_RUN.items():
        rows.append(f"| {name} | {why} | | | | | |")
    text = f"""# The classic Theano tutorials on exprc and PyTensor

Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC. Load (`uptime`): {load}.
Machine: 2 CPUs shared by several engineers' jobs; the times move with the load.

Command: `python benchmarks/bench_theano_tutorials.py --tutorials /tmp/dlt/code
--n-train {args.n_train} --timeout {args.timeout}` (the tutorials from
lisa-lab/DeepLearningTutorials, unedited). Data: synthetic, in mnist.pkl.gz's format and
MNIST's shapes (x float32 (n, 784) in [0, 1], y int64) but n = {args.n_train} / {args.n_train // 5}
/ {args.n_train // 5} (train / valid / test) rather than 50000 / 10000 / 10000, to fit the time.

The value per epoch is the last number the tutorial prints for that epoch (validation
error in % for the supervised programs, the training cost for the autoencoders and the
RBM, the pretraining cost of the first layer then validation error for SdA/DBN); the
seconds per epoch run from the module's import (so the first includes compiling) to each
epoch's line. Within a program exprc and PyTensor start from the same seeds, so the
values agree where both draw their random numbers the same way.

{chr(10).join(rows)}
"""
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "theano-tutorials.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    sys.exit(main())
