"""Running fuzz cases: each graph compiled on every back end that can run, in
``mode="check"``, and compared with the NumPy reference; failures shrunk.

A case fails when:

- ``mismatch``: a back end's value of some node differs from the reference's
  (:class:`exprc.CheckError`, which checks every step of the compiled program
  from its own inputs); on the GPU (``"cuda"``, where one is there), where
  ``mode="check"`` does not run, an output differs from the reference's by more
  than :data:`DEVICE_RTOL` allows or is NaN or infinite where the reference's
  is not;
- ``rewrite``: the simplified graph's outputs differ from the graph's as written
  (both on the NumPy reference), beyond what rounding allows; a finite result
  where the unsimplified graph overflows to inf or NaN is an improvement, not a
  failure. ``rewrites="exact"`` is checked always, ``"fast"`` where no node of
  the graph as written makes NaN or inf (its rules assume finite values:
  ``x / x`` is 1);
- ``crash``: compiling or calling raises anything else.

:func:`shrink` then removes what the failure does not need: outputs, nodes
(bypassed by one of their arguments), inputs' lengths, layouts and static
lengths, until no single step keeps it failing.
"""

import time
import warnings
from dataclasses import dataclass, replace

import numpy as np

import exprc as ex

from .generate import Invalid, Node, generate, reference

#: The back ends a case runs on. The NumPy back end is the reference itself. See
#: :func:`cuda_backends` for the GPU's.
BACKENDS = ("c",)


def cuda_backends():
    """``("cuda",)`` where a GPU is there (each graph runs on it with ``device="cuda"``);
    else ``("cuda-compile",)`` where NVRTC is installed (the graph's CUDA kernels are
    rendered and compiled for sm_80: no result to compare, but no kernel may fail to
    compile); else none."""
    if ex.cuda.is_available():
        return ("cuda",)
    return ("cuda-compile",) if cuda_compile_available() else ()


def cuda_compile_available():
    from exprc.codegen.cuda import nvrtc

    return nvrtc.unavailable_reason() is None


#: Output-level tolerances for the rewrite check: rewrites reorder arithmetic, so errors
#: may grow through the graph; these catch wrong rules, not rounding.
REWRITE_RTOL = {"float16": 2e-2, "float32": 2e-3, "float64": 1e-6}

#: Output-level tolerances for a graph run on the GPU, whose math library rounds otherwise
#: than NumPy's (a few ulp per node, grown through the graph): relative to each value and to
#: the largest of the output (a result that cancels to 0 keeps the rounding of its terms).
DEVICE_RTOL = {"float16": 2e-2, "float32": 2e-3, "float64": 1e-6}


@dataclass
class Failure:
    kind: str  # mismatch, rewrite, crash
    backend: str
    message: str

    def same(self, other):
        return (
            other is not None
            and other.kind == self.kind
            and other.backend == self.backend
            and (self.kind != "crash" or self.message.split(":")[0] == other.message.split(":")[0])
        )


def check_case(case, backends=BACKENDS):
    """The first :class:`Failure` of ``case``, or None; Invalid when the case is not valid."""
    expected = reference(case)
    inputs, outputs, values = case.build()
    for backend in backends:
        if backend in ("cuda-compile", "cuda"):
            failure = (
                _cuda_compile(inputs, outputs)
                if backend == "cuda-compile"
                else _cuda_run(case, inputs, outputs, values)
            )
            if failure is not None:
                return failure
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                f = ex.function(inputs, outputs, backend=backend, mode="check")
                f(*values)
        except ex.CheckError as err:
            return Failure("mismatch", backend, str(err))
        except Exception as err:  # noqa: BLE001 - a crash is what the fuzzer looks for
            return Failure("crash", backend, f"{type(err).__name__}: {err}")
    for rewrites in ("exact", "fast"):
        if rewrites == "fast" and _makes_nonfinite(inputs, outputs, values):
            continue  # "fast" rules assume finite values (x / x is 1), so NaN may differ after them
        try:
            simplified = reference(case, rewrites=rewrites)
        except Invalid as err:
            return Failure("crash", f"rewrites={rewrites}", str(err))
        for name, got, want in zip(case.outputs, simplified, expected):
            problem = _rewrite_difference(np.asarray(got), np.asarray(want))
            if problem:
                return Failure("rewrite", f"rewrites={rewrites}", f"output {name}: {problem}")
    return None


def _makes_nonfinite(inputs, outputs, values):
    """Whether some node of the graph as written creates a NaN or an infinity."""
    f = ex.function(inputs, outputs, backend="numpy", rewrites=None, mode="nanguard")
    try:
        f(*values)
    except ex.NanGuardError:
        return True
    return False


def _cuda_compile(inputs, outputs):
    from exprc.codegen.cuda import nvrtc
    from exprc.codegen.cuda import render as cuda_render
    from exprc.codegen.cuda.target import TARGET
    from exprc.codegen.ir.lower import lower

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f = ex.function(inputs, outputs, backend="numpy")  # only for its simplified graph
        kernels = lower(f.inputs, f.outputs, TARGET).kernels
        if kernels:
            _, log = nvrtc.compile_with_log(cuda_render.render_program(kernels, "fuzz case"), "fuzz.cu", "sm_80")
            if "warning" in log:
                return Failure("crash", "cuda-compile", f"NVRTC warns: {log}")
    except Exception as err:  # noqa: BLE001
        return Failure("crash", "cuda-compile", f"{type(err).__name__}: {err}")
    return None


def _cuda_run(case, inputs, outputs, values):
    """Run the graph with ``device="cuda"`` and compare its outputs with those of the
    reference simplified alike (the graph as written may differ where it makes NaN: the
    rewrite check covers that)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results = ex.function(inputs, outputs, device="cuda")(*values)
            expected = ex.function(inputs, outputs, backend="numpy")(*values)
        results = [r.get() for r in (results if isinstance(results, list) else [results])]
    except Exception as err:  # noqa: BLE001 - a crash is what the fuzzer looks for
        return Failure("crash", "cuda", f"{type(err).__name__}: {err}")
    for name, got, want in zip(case.outputs, results, expected):
        problem = _device_difference(np.asarray(got), np.asarray(want))
        if problem:
            return Failure("mismatch", "cuda", f"output {name}: {problem}")
    return None


def _device_difference(got, want):
    """What is wrong with ``got``, a GPU's output, against the reference's ``want``; None if nothing."""
    return _output_difference(
        got, want, DEVICE_RTOL, absolute=1.0, finite_for_special=False, labels=("on the GPU", "in the reference")
    )


def _rewrite_difference(got, want):
    """What is wrong with ``got``, the simplified graph's output, against ``want``, the graph's
    as written: a finite value where the graph as written overflows is an improvement."""
    return _output_difference(
        got, want, REWRITE_RTOL, absolute=1e-3, finite_for_special=True, labels=("simplified", "as written")
    )


def _output_difference(got, want, rtols, absolute, finite_for_special, labels):
    """What is wrong with output ``got`` against ``want``, or None: integers equal, floats within
    ``rtols[dtype]`` of each value plus ``absolute`` times the output's largest magnitude; NaN
    and infinities equal (or, with ``finite_for_special``, any finite value in their place)."""
    if got.dtype != want.dtype or got.shape != want.shape:
        return f"dtype/shape {got.dtype}{got.shape} {labels[0]}, {want.dtype}{want.shape} {labels[1]}"
    if got.size == 0:
        return None
    if got.dtype.kind != "f":
        bad = got != want
        return f"{int(bad.sum())} values differ, e.g. {got[bad][0]!r} vs {want[bad][0]!r}" if bad.any() else None
    g, w = got.astype(float), want.astype(float)
    with np.errstate(all="ignore"):
        finite_w = np.isfinite(w)
        rtol = rtols.get(got.dtype.name, 1e-6)
        scale = max(1.0, float(np.abs(w[finite_w]).max()) if finite_w.any() else 1.0)
        special_ok = (np.isnan(w) & np.isnan(g)) | (g == w) | (np.isfinite(g) if finite_for_special else False)
        ok = np.where(finite_w, np.abs(g - w) <= rtol * (np.abs(w) + absolute * scale), special_ok)
    if ok.all():
        return None
    i = np.unravel_index(int(np.argmax(~ok)), got.shape)
    return f"at {tuple(int(k) for k in i)}: {g[i]!r} {labels[0]}, {w[i]!r} {labels[1]}"


# --- shrinking --------------------------------------------------------------------------------------


def _candidates(case):
    """Smaller variants of ``case``, the likeliest to help first."""
    if len(case.outputs) > 1:
        for name in case.outputs:
            yield case.copy(outputs=[name])
    names = list(case.nodes)
    for name in reversed(names):
        node = case.nodes[name]
        # the output becomes an earlier value
        if name in case.outputs:
            for arg in dict.fromkeys(node.args):
                yield case.copy(outputs=[arg if o == name else o for o in case.outputs])
        # users of this node read one of its arguments instead
        for arg in dict.fromkeys(node.args):
            nodes = {
                k: Node(n.template, tuple(arg if a == name else a for a in n.args))
                for k, n in case.nodes.items()
                if k != name
            }
            if name not in case.outputs and any(name in n.args for n in case.nodes.values()):
                yield case.copy(nodes=nodes)
    for i, var in enumerate(case.inputs):
        changes = []
        if var.layout != "contiguous":
            changes.append({"layout": "contiguous"})
        if any(s is not None for s in var.static):
            changes.append({"static": (None,) * len(var.shape)})
        for axis, n in enumerate(var.shape):
            for smaller in (1, 2, n // 2):
                if 0 < smaller < n:
                    shape = var.shape[:axis] + (smaller,) + var.shape[axis + 1 :]
                    static = (
                        var.static[:axis]
                        + ((smaller if var.static[axis] is not None else None),)
                        + var.static[axis + 1 :]
                    )
                    changes.append({"shape": shape, "static": static})
        if var.dtype == "float32":
            changes.append({"dtype": "float64"})
        for change in changes:
            inputs = list(case.inputs)
            inputs[i] = replace(var, **change)
            yield case.copy(inputs=inputs)


def shrink(case, failure, backends=BACKENDS, budget=300.0):
    """The smallest variant of ``case`` found (within ``budget`` seconds) that still fails
    like ``failure``, and its failure."""
    deadline = time.monotonic() + budget
    improved = True
    while improved and time.monotonic() < deadline:
        improved = False
        for candidate in _candidates(case):
            if time.monotonic() > deadline:
                break
            candidate = candidate.used()
            try:
                found = check_case(candidate, backends)
            except Invalid:
                continue
            if failure.same(found):
                case, failure, improved = candidate, found, True
                break
    return case, failure


# --- a run -----------------------------------------------------------------------------------------


@dataclass
class Report:
    graphs: int = 0
    invalid: int = 0
    failures: list = None
    seconds: float = 0.0

    backends: tuple = BACKENDS

    def summary(self):
        kinds = {}
        for _, _, failure in self.failures:
            kinds[failure.kind] = kinds.get(failure.kind, 0) + 1
        text = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "none"
        return (
            f"{self.graphs} graphs on back ends {', '.join(self.backends)} (checked against the NumPy reference) "
            f"in {self.seconds:.0f} s: failures: {text}"
        )


def fuzz(graphs, seed=0, shrink_failures=True, log=None, max_nodes=10, backends=BACKENDS, seconds=None):
    """Generate and check ``graphs`` cases from ``seed`` on ``backends`` (stopping after
    ``seconds`` when given); a :class:`Report` with, per failure, ``(case seed, shrunk case,
    failure)``."""
    report = Report(failures=[], backends=tuple(backends))
    start = time.monotonic()
    for k in range(graphs):
        if seconds is not None and time.monotonic() - start > seconds:
            break
        case_seed = seed * 1_000_003 + k
        case = generate(case_seed, max_nodes)
        try:
            failure = check_case(case, backends)
        except Invalid:
            report.invalid += 1
            continue
        finally:
            report.graphs += 1
        if failure is not None:
            if shrink_failures:
                case, failure = shrink(case, failure, backends)
            report.failures.append((case_seed, case, failure))
            if log:
                log(describe(case_seed, case, failure))
        if log and (k + 1) % 100 == 0:
            log(f"... {k + 1} graphs, {len(report.failures)} failures, {time.monotonic() - start:.0f} s")
    report.seconds = time.monotonic() - start
    return report


def describe(case_seed, case, failure):
    return (
        f"=== case {case_seed}: {failure.kind} on {failure.backend}\n{failure.message}\n"
        f"--- as a program:\n{case.code('cuda' if failure.backend == 'cuda' else 'c')}\n"
    )
