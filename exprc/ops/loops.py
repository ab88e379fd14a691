"""Loops and a lazy conditional: Theano's ``scan`` (with ``map``, ``reduce``, ``foldl``,
``foldr`` and ``until``), JAX-style ``fori_loop`` and ``while_loop``, and ``ifelse``.

A loop is one :class:`Scan` node whose body is an inner graph: it is built by calling the
user's ``fn`` on fresh placeholders, checked, and simplified once. The NumPy reference runs
the loop in Python; the C and CUDA back ends run it as a host step (see docs/loops.md).

>>> import numpy as np
>>> import exprc as ex
>>> x = ex.vector("x")
>>> sums, _ = ex.scan(lambda v, acc: acc + v, sequences=x, outputs_info=ex.constant(0.0))
>>> sums.eval({x: [1.0, 2.0, 3.0]})
array([1., 3., 6.])
"""

from __future__ import annotations

import contextvars
import dataclasses
import hashlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from ..dtypes import is_float
from ..graph import Apply, Constant, Op, Variable, canonical_text, graph_inputs, substitute, toposort
from ..printing import ATOM, call_text, to_infix
from ..reference import value_of
from ..shapes import fmt_shape
from ..tensor import TensorType, TensorVariable, as_tensor, constant
from .elemwise import where
from .indexing import inc_subtensor, set_subtensor
from .random import THREADED, default_updates
from .shape import concatenate, expand_dims, stack, zeros_like

__all__ = [
    "IfElse",
    "Scan",
    "Until",
    "compiled_step",
    "foldl",
    "foldr",
    "fori_loop",
    "ifelse",
    "map",
    "reduce",
    "scan",
    "until",
    "while_loop",
]

#: How a body is run: ``(key, factory)``; ``factory(inputs, outputs)`` gives an object whose
#: ``run(arrays)`` returns the outputs. The NumPy reference is the default.
_BODY_RUNNER: contextvars.ContextVar = contextvars.ContextVar("exprc_loop_body", default=None)

#: n_steps of a loop bounded by its sequences or its condition alone.
_UNBOUNDED = -1


class _ReferenceBody:
    """A body run node by node through the ops' NumPy references: the reference back end's
    program without its per-call floating-point state and freeing (the loop sets the state
    once, and a body is small)."""

    def __init__(self, inputs, outputs):
        self.inputs, self.outputs = list(inputs), list(outputs)
        self.order = toposort(self.outputs)

    def run(self, arrays):
        values = dict(zip(self.inputs, arrays))
        for node in self.order:
            results = node.op.perform(node, [value_of(v, values) for v in node.inputs])
            values.update(zip(node.outputs, results))
        return [value_of(v, values) for v in self.outputs]


def _reference_program(inputs, outputs):
    return _ReferenceBody(inputs, outputs)


def compiled_step(key: str, factory: Callable) -> Callable:
    """A back end's step for a loop or ifelse node (``Lowering.run``): ``run(node, inputs)``
    runs the op with its bodies compiled once by ``factory(inputs, outputs)`` and kept on
    the op, keyed by ``key``.

    >>> import numpy as np, exprc as ex
    >>> step = compiled_step("numpy", _reference_program)
    >>> x = ex.vector("x")
    >>> ys, _ = ex.scan(lambda v: v * 2, sequences=x)
    >>> step(ys.owner, [np.asarray(-1), np.array([1.0, 2.0])])[0]
    array([2., 4.])
    """

    def run(node, inputs):
        token = _BODY_RUNNER.set((key, factory))
        try:
            return node.op.perform(node, inputs)
        finally:
            _BODY_RUNNER.reset(token)

    return run


class _Bodies:
    """The inner graphs of a loop or ifelse node, each compiled once per back end."""

    @cached_property
    def _programs(self) -> dict:
        return {}

    def _program(self, which, inputs, outputs):
        key, factory = _BODY_RUNNER.get() or ("numpy", _reference_program)
        found = self._programs.get((key, which))
        if found is None:
            found = self._programs[(key, which)] = factory(list(inputs), list(outputs))
        return found

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_programs", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    def _digest(self, inputs, outputs):
        return hashlib.sha256(canonical_text(list(inputs), list(outputs), hashlib.sha256).encode()).hexdigest()[:24]


def _strong(var: TensorVariable) -> TensorVariable:
    """``var`` with a strong type (a Python scalar becomes a NumPy one of its dtype)."""
    if not var.type.weak:
        return var
    if isinstance(var, Constant):
        return constant(np.asarray(var.value, dtype=var.dtype))
    return var.astype(var.dtype)


def _placeholder(t: TensorType, name: str | None = None) -> TensorVariable:
    return TensorType(t.dtype, t.shape).make_variable(name=name)


def _same_shape(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


def _describe(var: Variable) -> str:
    return f"{to_infix(var, limit=50)} ({var.type.dtype} {fmt_shape(var.type.shape)})"


# --- Scan ------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class Scan(_Bodies, Op):
    """A loop over steps ``t = 0, 1, ...``: one node whose body is the inner graph from
    ``inner_inputs`` to ``inner_outputs``.

    Node inputs: ``(n_steps, *sequences, *initial values, *non-sequences)``; ``n_steps`` is
    an int64 scalar, negative for no bound but the sequences' lengths (and the condition).
    ``inner_inputs``: for each sequence, one placeholder per offset in ``seq_offsets``
    (step ``t`` reads ``sequence[t + offset]``); for each recurrent output, one per tap of
    ``out_taps`` (negative: the value ``-tap`` steps back; the initial value holds the
    ``-min(taps)`` values before the first step along its first axis); then one per
    non-sequence. ``inner_outputs``: the new value of each recurrent output, then each
    per-step output not fed back (``n_plain``), then the stop condition when ``until``.
    Node outputs: each recurrent output stacked over the steps (its last value alone where
    ``keep_last``), each per-step output stacked, and the number of steps run.
    """

    name: str
    inner_inputs: tuple
    inner_outputs: tuple
    seq_offsets: tuple
    out_taps: tuple
    keep_last: tuple
    n_plain: int
    go_backwards: bool = False
    truncate_gradient: int = -1
    until: bool = False
    bounded: bool = True

    # --- structure -------------------------------------------------------------------
    @property
    def n_seqs(self) -> int:
        return len(self.seq_offsets)

    @property
    def n_recurrent(self) -> int:
        return len(self.out_taps)

    @cached_property
    def _slots(self):
        """``(sequence placeholders, tap placeholders, non-sequence placeholders)``."""
        n_seq = sum(len(o) for o in self.seq_offsets)
        n_tap = sum(len(t) for t in self.out_taps)
        p = self.inner_inputs
        return p[:n_seq], p[n_seq : n_seq + n_tap], p[n_seq + n_tap :]

    def _split(self, inputs):
        s, r = self.n_seqs, self.n_recurrent
        return inputs[0], list(inputs[1 : 1 + s]), list(inputs[1 + s : 1 + s + r]), list(inputs[1 + s + r :])

    def __repr__(self):
        # The cache keys of compiled programs are made from ops' reprs: the body's digest is part of it.
        digest = self._digest(self.inner_inputs, self.inner_outputs)
        return (
            f"Scan(name={self.name!r}, body={digest}, seq_offsets={self.seq_offsets}, out_taps={self.out_taps}, "
            f"keep_last={self.keep_last}, n_plain={self.n_plain}, go_backwards={self.go_backwards}, "
            f"truncate_gradient={self.truncate_gradient}, until={self.until}, bounded={self.bounded})"
        )

    def debug_name(self):
        return f"Scan{{{self.name}}}"

    def infix(self, node, show):
        return call_text(f"scan[{self.name}]", *(show(v) for v in node.inputs)), ATOM

    # --- types -----------------------------------------------------------------------
    def make_node(self, n_steps, *inputs):
        seq_p, tap_p, ns_p = self._slots
        n_ns = len(ns_p)
        if len(inputs) != self.n_seqs + self.n_recurrent + n_ns:
            raise TypeError(
                f"scan {self.name!r}: takes {self.n_seqs} sequences, {self.n_recurrent} initial values and "
                f"{n_ns} non-sequences, got {len(inputs)} inputs"
            )
        _, seqs, inits, nonseqs = self._split([n_steps, *inputs])
        if n_steps.ndim != 0 or n_steps.dtype != "int64":
            raise TypeError(f"scan {self.name!r}: n_steps must be an int64 scalar, got {_describe(n_steps)}")
        for seq in seqs:
            if seq.ndim < 1:
                raise TypeError(f"scan {self.name!r}: a sequence must have an axis to loop over, got {_describe(seq)}")
        k = 0
        for j, (seq, offsets) in enumerate(zip(seqs, self.seq_offsets)):
            for _ in offsets:
                _check_slot(self.name, f"sequence {j}", seq.dtype, seq.type.shape[1:], seq_p[k])
                k += 1
        k = 0
        for j, (init, taps) in enumerate(zip(inits, self.out_taps)):
            for _ in taps:
                _check_slot(self.name, f"output {j}'s initial value", init.dtype, init.type.shape[1:], tap_p[k])
                k += 1
        for j, (v, p) in enumerate(zip(nonseqs, ns_p)):
            _check_slot(self.name, f"non-sequence {j}", v.dtype, v.type.shape, p)
        steps = self._static_steps(n_steps, seqs)
        types = []
        for init, last in zip(inits, self.keep_last):
            item = init.type.shape[1:]
            types.append(TensorType(init.dtype, item if last else (steps, *item)))
        for out in self.inner_outputs[self.n_recurrent : self.n_recurrent + self.n_plain]:
            types.append(TensorType(out.dtype, (steps, *out.type.shape)))
        types.append(TensorType("int64", ()))
        return Apply(self, [n_steps, *inputs], types)

    def _static_steps(self, n_steps, seqs):
        if self.until:
            return None
        bounds = []
        if isinstance(n_steps, Constant):
            if int(n_steps.value) >= 0:
                bounds.append(int(n_steps.value))
        for seq, offsets in zip(seqs, self.seq_offsets):
            length = seq.type.shape[0]
            if length is None:
                return None
            bounds.append(max(length - max(offsets), 0))
        return min(bounds) if bounds else None

    # --- the reference ---------------------------------------------------------------
    def perform(self, node, inputs):
        n_steps, seqs, inits, nonseqs = self._split(list(inputs))
        seqs = [np.asarray(s) for s in seqs]
        if self.go_backwards:
            seqs = [s[::-1] for s in seqs]
        steps = int(n_steps)
        bounds = [steps] if steps >= 0 else []
        bounds += [max(len(s) - max(o), 0) for s, o in zip(seqs, self.seq_offsets)]
        if not bounds and not self.until:
            raise ValueError(f"scan {self.name!r}: no sequence and no n_steps: the number of steps is unknown")
        steps = min(bounds) if bounds else None  # None: until the condition holds
        windows = []
        for j, (init, taps) in enumerate(zip(inits, self.out_taps)):
            init = np.asarray(init)
            depth = -min(taps)
            if init.ndim == 0 or init.shape[0] < depth:
                raise ValueError(
                    f"scan {self.name!r}: output {j} reads {depth} steps back (taps {list(taps)}), so its initial "
                    f"value needs at least {depth} entries along its first axis; got shape {init.shape}"
                )
            windows.append(list(init[init.shape[0] - depth :]))
        program = self._program("body", self.inner_inputs, self.inner_outputs)
        with np.errstate(all="ignore"):  # as the reference back end runs every node
            return self._loop(node, program, seqs, windows, nonseqs, steps)

    def _loop(self, node, program, seqs, windows, nonseqs, steps):
        rec_out = [[] for _ in self.out_taps]
        plain_out = [[] for _ in range(self.n_plain)]
        r, done = self.n_recurrent, 0
        # Fixed for the whole loop: worked out once, not per step.
        reads = [(s, o) for s, offsets in zip(seqs, self.seq_offsets) for o in offsets]
        taps = [(w, tap) for w, ts in zip(windows, self.out_taps) for tap in ts]
        carries = [
            (j, w, np.dtype(node.outputs[j].dtype), np.shape(w[-1]), rec_out[j] if not last else None)
            for j, (w, last) in enumerate(zip(windows, self.keep_last))
        ]
        for t in range(steps) if steps is not None else itertools.count():
            args = [np.asarray(s[t + o]) for s, o in reads]
            args += [w[len(w) + tap] for w, tap in taps]
            args += nonseqs
            results = program.run(args)
            for (j, window, dtype, shape, stored), value in zip(carries, results):
                value = np.asarray(value, dtype=dtype)
                if value.shape != shape:
                    raise ValueError(
                        f"scan {self.name!r}: output {j} changed shape from {shape} to "
                        f"{value.shape} at step {t}; a recurrent output keeps its initial value's shape"
                    )
                window.append(value)
                del window[0]
                if stored is not None:
                    stored.append(value)
            for j, value in enumerate(results[r : r + self.n_plain]):
                plain_out[j].append(np.asarray(value))
            done = t + 1
            if self.until and bool(np.asarray(results[-1])):
                break
        outputs = []
        for j, (window, last) in enumerate(zip(windows, self.keep_last)):
            item = np.shape(window[-1]) if window else ()
            outputs.append(window[-1] if last else _stacked(rec_out[j], item, node.outputs[j].dtype))
        for j, values in enumerate(plain_out):
            var = node.outputs[r + j]
            item = tuple(0 if d is None else d for d in var.type.shape[1:])
            outputs.append(_stacked(values, item, var.dtype))
        outputs.append(np.asarray(done, dtype=np.int64))
        return outputs

    # --- the gradient ----------------------------------------------------------------
    def grad(self, node, output_grads):
        return _scan_grad(self, node, output_grads)


def _stacked(values, item_shape, dtype):
    if not values:
        return np.zeros((0, *item_shape), dtype=dtype)
    return np.stack(values).astype(dtype, copy=False)


def _check_slot(name, what, dtype, shape, placeholder):
    if dtype != placeholder.dtype or not _same_shape(tuple(shape), placeholder.type.shape):
        raise TypeError(
            f"scan {name!r}: {what} gives the body {dtype} {fmt_shape(tuple(shape))} per step, "
            f"but the body was built for {placeholder.type}"
        )


def _check_carry(name, j, new, placeholder, what="output"):
    """A recurrent output's new value must have its previous value's dtype and shape."""
    if (
        new.dtype != placeholder.dtype
        or new.ndim != placeholder.ndim
        or not _same_shape(new.type.shape, placeholder.type.shape)
    ):
        raise TypeError(
            f"scan {name!r}: {what} {j} is {placeholder.type} before a step and {new.type} after it "
            f"({to_infix(new, limit=50)}); a carry must keep its dtype and shape (cast it, or give an "
            "initial value of the type the step returns)"
        )


def _build_scan(
    name,
    n_steps,
    sequences,
    seq_offsets,
    seq_placeholders,
    inits,
    out_taps,
    tap_placeholders,
    nonseqs,
    ns_placeholders,
    rec_outputs,
    plain_outputs,
    cond=None,
    keep_last=None,
    go_backwards=False,
    truncate_gradient=-1,
    bounded=True,
    simplify_body=True,
):
    """The outputs of a :class:`Scan` node: the body checked, the variables it captures made
    non-sequences, and the body simplified once."""
    position = 0
    for j, (new, taps) in enumerate(zip(rec_outputs, out_taps)):
        _check_carry(name, j, new, tap_placeholders[position])
        position += len(taps)
    if cond is not None:
        if cond.ndim != 0:
            raise TypeError(
                f"scan {name!r}: the until condition must be a scalar, got {_describe(cond)}; reduce it "
                "(with .any() or .all())"
            )
        if cond.dtype != "bool":
            cond = cond != 0
    inner_outputs = [*rec_outputs, *plain_outputs] + ([cond] if cond is not None else [])
    own = set(seq_placeholders) | set(tap_placeholders) | set(ns_placeholders)
    captured = [v for v in graph_inputs(inner_outputs) if v not in own]
    captured_p = [_placeholder(v.type, v.name) for v in captured]
    if captured:
        inner_outputs = substitute(inner_outputs, dict(zip(captured, captured_p)))
    if simplify_body:
        from ..rewrite import simplify

        inner_outputs = list(simplify(list(inner_outputs)))
    inner_inputs = (*seq_placeholders, *tap_placeholders, *ns_placeholders, *captured_p)
    op = Scan(
        name=name,
        inner_inputs=tuple(inner_inputs),
        inner_outputs=tuple(inner_outputs),
        seq_offsets=tuple(tuple(o) for o in seq_offsets),
        out_taps=tuple(tuple(t) for t in out_taps),
        keep_last=tuple(keep_last or (False,) * len(out_taps)),
        n_plain=len(plain_outputs),
        go_backwards=bool(go_backwards),
        truncate_gradient=int(truncate_gradient),
        until=cond is not None,
        bounded=bool(bounded),
    )
    n_steps = constant(np.int64(n_steps)) if isinstance(n_steps, int) else as_tensor(n_steps).astype("int64")
    node = op(n_steps, *sequences, *inits, *nonseqs, *captured)
    return list(node) if isinstance(node, (list, tuple)) else [node]


def _scan_grad(op: Scan, node, output_grads):
    """Back-propagation through time: a scan running backwards over the steps, whose body
    is the gradient of the forward body. A window of pending gradients is carried per
    recurrent output (``-min(taps)`` values), and one sum per non-sequence."""
    if not op.bounded:
        raise NotImplementedError(
            f"exprc cannot differentiate the loop {op.name!r}: a while_loop is differentiable only when "
            "max_steps bounds it (ex.while_loop(..., max_steps=n))"
        )
    from ..grad import grad as _grad

    n_steps, seqs, inits, nonseqs = op._split(list(node.inputs))
    seq_p, tap_p, ns_p = op._slots
    r, m = op.n_recurrent, op.n_plain
    rec_outs, plain_outs = op.inner_outputs[:r], op.inner_outputs[r : r + m]
    steps = node.outputs[-1]
    if any(op.keep_last):
        # Only the last values were kept: run the loop again, keeping every value (the
        # forward pass stores what it returns, the backward pass recomputes the rest).
        again = dataclasses.replace(op, keep_last=(False,) * r)
        states = list(again(*node.inputs))[:r]
    else:
        states = list(node.outputs[:r])
    eff_seqs = [s[::-1] if op.go_backwards else s for s in seqs]
    if op.truncate_gradient > 0:
        from .elemwise import maximum

        start = maximum(steps - op.truncate_gradient, 0)
    else:
        start = constant(np.int64(0))
    count = steps - start
    depths = [-min(t) for t in op.out_taps]
    heads = [init[init.shape[0] - d :] for init, d in zip(inits, depths)]
    buffers = [concatenate([h, y]) for h, y in zip(heads, states)]

    # The backward body's inputs: per step, the forward inputs and the output gradients.
    b_seqs, b_seq_p = [], []
    k = 0
    for s, offsets in zip(eff_seqs, op.seq_offsets):
        for off in offsets:
            b_seqs.append(s[start + off : start + off + count])
            b_seq_p.append(seq_p[k])
            k += 1
    k = 0
    for buf, taps, d in zip(buffers, op.out_taps, depths):
        for tap in taps:
            b_seqs.append(buf[start + d + tap : start + d + tap + count])
            b_seq_p.append(tap_p[k])
            k += 1
    seeds = {}

    def seed(var, g):
        if is_float(var.dtype) and not isinstance(var, Constant):
            seeds[var] = g if var not in seeds else seeds[var] + g

    windows_p, window_init = [], []
    for j in range(r):
        item = inits[j].type.shape[1:]
        w = _placeholder(TensorType(inits[j].dtype, (depths[j], *item)), f"pending{j}")
        windows_p.append(w)
        g = output_grads[j]
        zero = zeros_like(heads[j])
        if op.keep_last[j]:
            window_init.append(set_subtensor(zero[depths[j] - 1], g.astype(zero.dtype)))
            seed(rec_outs[j], w[depths[j] - 1])
        else:
            window_init.append(zero)
            gy = _placeholder(TensorType(g.dtype, g.type.shape[1:]), f"g{j}")
            b_seqs.append(g[start : start + count])
            b_seq_p.append(gy)
            seed(rec_outs[j], w[depths[j] - 1] + gy)
    for j in range(m):
        g = output_grads[r + j]
        gz = _placeholder(TensorType(g.dtype, g.type.shape[1:]), f"g_out{j}")
        b_seqs.append(g[start : start + count])
        b_seq_p.append(gz)
        seed(plain_outs[j], gz)
    wrt = [p for p in (*seq_p, *tap_p, *ns_p) if is_float(p.dtype)]
    if seeds and wrt:
        found = _grad(None, wrt, known_grads=seeds, disconnected_inputs="ignore", return_disconnected="none")
    else:
        found = [None] * len(wrt)
    inner_grads = dict(zip(wrt, found))

    # New windows: shift by one step, then add what this step's taps read.
    new_windows = []
    k = 0
    for j in range(r):
        w, d = windows_p[j], depths[j]
        rows = [None] + [w[i - 1] for i in range(1, d)]
        for tap in op.out_taps[j]:
            g = inner_grads.get(tap_p[k])
            if g is not None:
                rows[d + tap] = g if rows[d + tap] is None else rows[d + tap] + g
            k += 1
        rows = [zeros_like(w[0]) if row is None else row.astype(w.dtype) for row in rows]
        new_windows.append(stack(rows) if d > 1 else expand_dims(rows[0], 0))
    sums_p, sums_init, sums_new, sum_of = [], [], [], {}
    for j, (p, v) in enumerate(zip(ns_p, nonseqs)):
        g = inner_grads.get(p)
        if g is None:
            continue
        acc = _placeholder(p.type, f"g_nonseq{j}")
        sum_of[j] = len(sums_p)
        sums_p.append(acc)
        sums_init.append(zeros_like(v))
        sums_new.append(acc + g.astype(acc.dtype))
    seq_grads = [(k, inner_grads.get(p)) for k, p in enumerate(seq_p)]
    seq_grads = [(k, g) for k, g in seq_grads if g is not None]
    outs = _build_scan(
        f"grad of {op.name}",
        count,
        b_seqs,
        [(0,)] * len(b_seqs),
        b_seq_p,
        [expand_dims(v, 0) for v in (*window_init, *sums_init)],
        [(-1,)] * (r + len(sums_p)),
        [*windows_p, *sums_p],
        list(nonseqs),
        list(ns_p),
        [*new_windows, *sums_new],
        [g.astype(seq_p[k].dtype) for k, g in seq_grads],
        keep_last=(True,) * (r + len(sums_p)),
        go_backwards=True,
    )
    final_windows, final_sums = outs[:r], outs[r : r + len(sums_p)]
    per_step = outs[r + len(sums_p) : -1]

    # Gradients of the sequences: each offset's per-step gradients, in time order, added in place.
    seq_totals = [None] * len(seqs)
    flat = [(j, off) for j, offsets in enumerate(op.seq_offsets) for off in offsets]
    for (k, _), g in zip(seq_grads, per_step):
        j, off = flat[k]
        total = seq_totals[j] if seq_totals[j] is not None else zeros_like(eff_seqs[j])
        seq_totals[j] = inc_subtensor(total[start + off : start + off + count], g[::-1])
    seq_results = []
    for s, total in zip(seqs, seq_totals):
        if total is None or not is_float(s.dtype):
            seq_results.append(None)
        else:
            seq_results.append(total[::-1] if op.go_backwards else total)
    init_results = []
    for init, w, d in zip(inits, final_windows, depths):
        if not is_float(init.dtype):
            init_results.append(None)
            continue
        if op.truncate_gradient > 0:
            w = where(start == 0, w, zeros_like(w))
        init_results.append(inc_subtensor(zeros_like(init)[init.shape[0] - d :], w))
    ns_results = [final_sums[sum_of[j]] if j in sum_of else None for j in range(len(nonseqs))]
    return [None, *seq_results, *init_results, *ns_results]


# --- until, scan and Theano's helpers ----------------------------------------------------------


@dataclass(frozen=True)
class Until:
    """The stop condition a scan body returns beside its outputs (see :func:`until`)."""

    condition: Any


def until(condition: Any) -> Until:
    """Stop the scan after the step where ``condition`` (a scalar) holds, as Theano's
    ``scan_module.until``; ``fn`` returns it beside its outputs.

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> ys, _ = ex.scan(lambda v: (v * 2, ex.until(v > 1)), sequences=x)
    >>> ys.eval({x: [0.0, 1.0, 2.0, 3.0]})
    array([0., 2., 4.])
    """
    return Until(as_tensor(condition))


def _parse_sequence(entry, j, name):
    if isinstance(entry, dict):
        if "input" not in entry:
            raise TypeError(f"scan {name!r}: sequence {j} is a dict without 'input'")
        var, taps = as_tensor(entry["input"]), list(entry.get("taps", [0]))
    else:
        var, taps = as_tensor(entry), [0]
    if not taps or not all(isinstance(t, (int, np.integer)) for t in taps):
        raise TypeError(f"scan {name!r}: sequence {j}'s taps must be a non-empty list of ints, got {taps!r}")
    if var.ndim < 1:
        raise TypeError(f"scan {name!r}: sequence {j} must have an axis to loop over, got {_describe(var)}")
    return _strong(var), [int(t) for t in taps]


def _parse_output(entry, j, name):
    """``(initial value or None, taps)`` of an ``outputs_info`` entry."""
    if isinstance(entry, dict):
        init = entry.get("initial")
        if init is None:
            return None, []
        taps = list(entry.get("taps", [-1]))
    elif entry is None:
        return None, []
    else:
        init, taps = entry, [-1]
    if not taps or not all(isinstance(t, (int, np.integer)) for t in taps):
        raise TypeError(f"scan {name!r}: output {j}'s taps must be a non-empty list of ints, got {taps!r}")
    if any(t >= 0 for t in taps):
        raise ValueError(
            f"scan {name!r}: output {j} has taps {taps}: an output's taps must be negative (the values of "
            "earlier steps; -1 is the previous one)"
        )
    init = _strong(as_tensor(init))
    depth = -min(taps)
    if taps == [-1]:  # the initial value is the previous value itself
        return expand_dims(init, 0), [-1]
    if init.ndim == 0:
        raise ValueError(f"scan {name!r}: output {j} has taps {taps}, so its initial value needs a first axis")
    length = init.type.shape[0]
    if length is not None and length < depth:
        raise ValueError(
            f"scan {name!r}: output {j} reads {depth} steps back (taps {taps}), before the start of its initial "
            f"value of {length} entries along its first axis"
        )
    return init, [int(t) for t in taps]


def _as_list(value):
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _split_result(result, name):
    """``(outputs, updates, until condition)`` of what ``fn`` returned, in any order."""
    items = list(result) if isinstance(result, (list, tuple)) else [result]
    outputs, updates, cond = [], {}, None
    for item in items:
        if isinstance(item, Until):
            cond = item.condition
        elif isinstance(item, dict):
            updates.update(item)
        elif isinstance(item, (list, tuple)):
            outputs.extend(item)
        else:
            outputs.append(item)
    for k, out in enumerate(outputs):
        if out is None:
            raise TypeError(f"scan {name!r}: fn returned None as output {k}")
    return [as_tensor(o) for o in outputs], updates, cond


def scan(
    fn: Callable,
    sequences: Any = None,
    outputs_info: Any = None,
    non_sequences: Any = None,
    n_steps: Any = None,
    truncate_gradient: int = -1,
    go_backwards: bool = False,
    name: str | None = None,
    strict: bool = False,
    return_list: bool = False,
    *,
    _keep_last: bool = False,
) -> tuple[Any, dict]:
    """Loop ``fn`` over ``sequences``, with Theano's signature and semantics: returns
    ``(outputs, updates)``.

    ``fn`` receives, in order, the slice of each sequence (one per tap), the previous values
    of each fed-back output (one per tap), and the non-sequences; it returns the outputs of
    the step, and may add a dict of shared-variable updates and :func:`until`. Entries of
    ``outputs_info`` are an initial value (tap ``-1``), ``dict(initial=x0, taps=[-2, -1])``,
    or None for an output not fed back. Outputs are stacked over the steps; the number of
    steps is the shortest sequence's (or ``n_steps``). Gradients run back through the steps
    (``truncate_gradient`` limits how many).

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> fib, _ = ex.scan(lambda a, b: a + b, outputs_info=dict(initial=x, taps=[-2, -1]), n_steps=5)
    >>> fib.eval({x: [0.0, 1.0]})
    array([1., 2., 3., 5., 8.])
    """
    name = name or getattr(fn, "__name__", "scan")
    seqs_in = _as_list(sequences)
    outs_in = outputs_info if isinstance(outputs_info, (list, tuple)) else [outputs_info]
    if outputs_info is None:
        outs_in = []
    ns_in = [_strong(as_tensor(v)) for v in _as_list(non_sequences)]
    sequences_, seq_offsets, seq_p, args = [], [], [], []
    for j, entry in enumerate(seqs_in):
        var, taps = _parse_sequence(entry, j, name)
        low = min(taps)
        sequences_.append(var)
        seq_offsets.append([t - low for t in taps])
        for t in taps:
            p = _placeholder(TensorType(var.dtype, var.type.shape[1:]), f"{var.name or 'seq'}[t{t:+d}]")
            seq_p.append(p)
            args.append(p)
    parsed = [_parse_output(entry, j, name) for j, entry in enumerate(outs_in)]
    tap_p = []
    for init, taps in parsed:
        for t in taps:
            p = _placeholder(TensorType(init.dtype, init.type.shape[1:]), f"prev{t}")
            tap_p.append(p)
            args.append(p)
    ns_p = [_placeholder(v.type, v.name) for v in ns_in]
    args += ns_p
    if n_steps is None and not sequences_:
        raise ValueError(f"scan {name!r}: give sequences or n_steps (the number of steps is unknown)")
    result = fn(*args)
    outputs, updates, cond = _split_result(result, name)
    # A stream the body draws from moves on at every step (as Theano's scan updates a random
    # stream's state): its default update joins the body's updates, carried through the loop.
    drawn = default_updates(outputs + list(updates.values()) + ([] if cond is None else [as_tensor(cond)]))
    threaded = [var for var, _ in drawn if var not in updates]
    for var, new in drawn:
        updates.setdefault(var, new)
    if len(outputs) == 0 and not updates:
        raise TypeError(f"scan {name!r}: fn returned no output")
    if len(outputs) != len(parsed) and parsed:
        raise TypeError(
            f"scan {name!r}: fn returned {len(outputs)} outputs, but outputs_info has {len(parsed)} entries "
            "(one per output, None for an output not fed back)"
        )
    if not parsed:
        parsed = [(None, [])] * len(outputs)
    rec = [(k, init, taps) for k, (init, taps) in enumerate(parsed) if init is not None]
    plain = [k for k, (init, _) in enumerate(parsed) if init is None]
    shared_vars = list(updates)
    shared_p = []
    from ..shared import SharedVariable

    for var in shared_vars:
        if not isinstance(var, SharedVariable):
            raise TypeError(f"scan {name!r}: fn's updates must be keyed by shared variables, got {var!r}")
        shared_p.append(_placeholder(var.type, var.name))
    new_shared = []
    for var in shared_vars:
        new = as_tensor(updates[var])
        if new.dtype != var.dtype and new.type.weak:
            new = new.astype(var.dtype)
        new_shared.append(new)
    inner = [outputs[k] for k, _, _ in rec] + new_shared + [outputs[k] for k in plain]
    inner += [] if cond is None else [as_tensor(cond)]
    if shared_p:  # the body reads each updated shared variable through its carry
        inner = substitute(inner, dict(zip(shared_vars, shared_p)))
    n_rec = len(rec) + len(shared_vars)
    rec_new, plain_new = inner[:n_rec], inner[n_rec : n_rec + len(plain)]
    cond_new = inner[-1] if cond is not None else None
    if strict:
        own = set(seq_p) | set(tap_p) | set(ns_p) | set(shared_p)
        free = [v for v in graph_inputs(inner) if v not in own]
        if free:
            raise ValueError(
                f"scan {name!r}: strict=True, and fn reads {', '.join(_describe(v) for v in free)} "
                "without its being a non-sequence"
            )
    keep = [_keep_last and taps == [-1] for _, _, taps in rec] + [True] * len(shared_vars)
    outs = _build_scan(
        name,
        _UNBOUNDED if n_steps is None else n_steps,
        sequences_,
        seq_offsets,
        seq_p,
        [init for _, init, _ in rec] + [expand_dims(v, 0) for v in shared_vars],
        [taps for _, _, taps in rec] + [[-1]] * len(shared_vars),
        tap_p + shared_p,
        ns_in,
        ns_p,
        rec_new,
        plain_new,
        cond=cond_new,
        keep_last=keep,
        go_backwards=go_backwards,
        truncate_gradient=truncate_gradient,
    )
    results = [None] * len(parsed)
    for (k, _, _), out in zip(rec, outs):
        results[k] = out
    for k, out in zip(plain, outs[n_rec : n_rec + len(plain)]):
        results[k] = out
    new_updates = dict(zip(shared_vars, outs[len(rec) : n_rec]))
    if threaded:
        moved_on = [(var, new_updates[var]) for var in threaded]
        for out in outs:
            THREADED[out] = moved_on
    if return_list or len(results) != 1:
        return results, new_updates
    return results[0], new_updates


def map(
    fn: Callable,
    sequences: Any,
    non_sequences: Any = None,
    truncate_gradient: int = -1,
    go_backwards: bool = False,
    name: str | None = None,
) -> tuple[Any, dict]:
    """``fn`` applied to each step of ``sequences`` (Theano's ``map``): ``(outputs, updates)``.

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> ex.map(lambda v: v ** 2, x)[0].eval({x: [1.0, 2.0]})
    array([1., 4.])
    """
    return scan(
        fn,
        sequences=sequences,
        non_sequences=non_sequences,
        truncate_gradient=truncate_gradient,
        go_backwards=go_backwards,
        name=name or "map",
    )


def reduce(
    fn: Callable,
    sequences: Any,
    outputs_info: Any,
    non_sequences: Any = None,
    go_backwards: bool = False,
    name: str | None = None,
) -> tuple[Any, dict]:
    """The last value of each output of :func:`scan` (Theano's ``reduce``); only that value is kept.

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> ex.reduce(lambda v, acc: acc + v, x, ex.constant(0.0))[0].eval({x: [1.0, 2.0]})
    array(3.)
    """
    outputs, updates = scan(
        fn,
        sequences=sequences,
        outputs_info=outputs_info,
        non_sequences=non_sequences,
        go_backwards=go_backwards,
        name=name or "reduce",
        return_list=True,
        _keep_last=True,
    )
    last = [out if _is_last_value(out) else out[-1] for out in outputs]
    return (last[0] if len(last) == 1 else last), updates


def _is_last_value(out):
    node = out.owner
    if node is None or not isinstance(node.op, Scan) or out.index >= node.op.n_recurrent:
        return False
    return node.op.keep_last[out.index]


def foldl(fn: Callable, sequences: Any, outputs_info: Any, non_sequences: Any = None, name: str | None = None):
    """:func:`reduce` from the first step to the last (Theano's ``foldl``).

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> ex.foldl(lambda v, acc: acc * 2 + v, x, ex.constant(0.0))[0].eval({x: [1.0, 0.0]})
    array(2.)
    """
    return reduce(fn, sequences, outputs_info, non_sequences, go_backwards=False, name=name or "foldl")


def foldr(fn: Callable, sequences: Any, outputs_info: Any, non_sequences: Any = None, name: str | None = None):
    """:func:`reduce` from the last step to the first (Theano's ``foldr``).

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> ex.foldr(lambda v, acc: acc * 2 + v, x, ex.constant(0.0))[0].eval({x: [1.0, 0.0]})
    array(1.)
    """
    return reduce(fn, sequences, outputs_info, non_sequences, go_backwards=True, name=name or "foldr")


# --- JAX-style loops ---------------------------------------------------------------------


def _flatten_tree(tree):
    """The tensors of a nested tuple/list, and a function rebuilding the structure."""
    if isinstance(tree, (list, tuple)):
        parts = [_flatten_tree(t) for t in tree]
        leaves = [leaf for p in parts for leaf in p[0]]
        kind = type(tree)

        def rebuild(values):
            values, out = list(values), []
            for p_leaves, p_rebuild in parts:
                out.append(p_rebuild(values[: len(p_leaves)]))
                values = values[len(p_leaves) :]
            return kind(out)

        return leaves, rebuild
    return [tree], (lambda values: values[0])


def _carry_loop(what, fn_name, init, step, n_steps, bounded=True, hidden=0):
    """A scan whose carries are the leaves of ``init`` (last values kept), the body
    ``step(carry placeholders) -> (new carry leaves, until condition or None)``."""
    leaves, rebuild = _flatten_tree(init)
    leaves = [_strong(as_tensor(v)) for v in leaves]
    placeholders = [_placeholder(v.type, f"carry{k}") for k, v in enumerate(leaves)]
    new, cond = step(placeholders, rebuild)
    new_leaves, new_rebuild = _flatten_tree(new)
    if len(new_leaves) != len(leaves):
        raise TypeError(
            f"{what} {fn_name!r}: the body returned {len(new_leaves) - hidden} tensors for a carry of "
            f"{len(leaves) - hidden} "
            "(the carry's structure must stay the same)"
        )
    new_leaves = [as_tensor(v) for v in new_leaves]
    new_leaves = [
        v.astype(p.dtype) if v.type.weak and v.dtype != p.dtype else v for v, p in zip(new_leaves, placeholders)
    ]
    for k, (v, p) in enumerate(zip(new_leaves, placeholders)):
        if v.dtype != p.dtype or not _same_shape(v.type.shape, p.type.shape) or v.ndim != p.ndim:
            raise TypeError(
                f"{what} {fn_name!r}: carry {k - hidden} is {p.type} before a step and {v.type} after it "
                f"({to_infix(v, limit=50)}); a carry must keep its dtype and shape"
            )
    outs = _build_scan(
        fn_name,
        n_steps,
        [],
        [],
        [],
        [expand_dims(v, 0) for v in leaves],
        [[-1]] * len(leaves),
        placeholders,
        [],
        [],
        new_leaves,
        [],
        cond=cond,
        keep_last=[True] * len(leaves),
        bounded=bounded,
    )
    return rebuild(outs[: len(leaves)])


def fori_loop(lower: Any, upper: Any, body: Callable, init: Any) -> Any:
    """``body(i, carry)`` for ``i`` from ``lower`` to ``upper - 1``, starting from ``init`` (a
    tensor or nested tuple of them), as JAX's ``lax.fori_loop``; differentiable.

    >>> import exprc as ex
    >>> x = ex.scalar("x")
    >>> ex.fori_loop(0, 3, lambda i, c: c * x + i, ex.constant(1.0)).eval({x: 2.0})
    array(12.)
    """
    name = getattr(body, "__name__", "fori_loop")
    if isinstance(lower, (int, np.integer)) and isinstance(upper, (int, np.integer)):
        n_steps = max(int(upper) - int(lower), 0)
    else:
        from .elemwise import maximum

        n_steps = maximum(as_tensor(upper).astype("int64") - as_tensor(lower).astype("int64"), 0)
    lower = as_tensor(lower).astype("int64")

    def step(carry, rebuild):
        i, *rest = carry
        new = body(i, rebuild(rest))
        return [i + 1, *_flatten_tree(new)[0]], None

    counter = lower
    leaves, rebuild = _flatten_tree(init)
    results = _carry_loop("fori_loop", name, [counter, *leaves], lambda c, _: step(c, rebuild), n_steps, hidden=1)
    return rebuild(list(results[1:]))


def while_loop(cond: Callable, body: Callable, init: Any, max_steps: int | None = None) -> Any:
    """``carry = body(carry)`` while ``cond(carry)`` holds (a scalar), from ``init``, as JAX's
    ``lax.while_loop``. With ``max_steps``, at most that many steps run and the loop is
    differentiable (through the steps it ran); without, ``ex.grad`` refuses it.

    >>> import exprc as ex
    >>> x = ex.scalar("x")
    >>> ex.while_loop(lambda c: c < 10, lambda c: c * x, ex.constant(1.0)).eval({x: 3.0})
    array(27.)
    """
    name = getattr(body, "__name__", "while_loop")
    leaves, rebuild = _flatten_tree(init)

    def step(carry, _):
        c = as_tensor(cond(rebuild(carry)))
        if c.ndim != 0:
            raise TypeError(f"while_loop {name!r}: cond must return a scalar, got {_describe(c)}")
        c = c if c.dtype == "bool" else c != 0
        new, _ = _flatten_tree(body(rebuild(carry)))
        if len(new) != len(carry):
            raise TypeError(
                f"while_loop {name!r}: the body returned {len(new)} tensors for a carry of {len(carry)} "
                "(the carry's structure must stay the same)"
            )
        new = [as_tensor(v) for v in new]
        new = [v.astype(p.dtype) if v.type.weak and v.dtype != p.dtype else v for v, p in zip(new, carry)]
        kept = [where(c, v, p) if v.dtype == p.dtype and v.ndim == p.ndim else v for v, p in zip(new, carry)]
        return kept, ~c

    if max_steps is not None and (not isinstance(max_steps, int) or max_steps < 0):
        raise ValueError(f"while_loop {name!r}: max_steps must be a non-negative int, got {max_steps!r}")
    steps = _UNBOUNDED if max_steps is None else max_steps
    results = _carry_loop("while_loop", name, leaves, step, steps, bounded=max_steps is not None)
    return rebuild(list(results))


# --- ifelse ------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class IfElse(_Bodies, Op):
    """``then_outputs`` if the condition holds, else ``else_outputs``; only the chosen branch
    runs. Node inputs: ``(condition, *captured)``, bound in order to ``inner_inputs``."""

    name: str
    inner_inputs: tuple
    then_outputs: tuple
    else_outputs: tuple

    def __repr__(self):
        then = self._digest(self.inner_inputs, self.then_outputs)
        other = self._digest(self.inner_inputs, self.else_outputs)
        return f"IfElse(name={self.name!r}, then={then}, else={other})"

    def debug_name(self):
        return f"IfElse{{{self.name}}}" if self.name != "ifelse" else "IfElse"

    def infix(self, node, show):
        return call_text("ifelse", *(show(v) for v in node.inputs)), ATOM

    def make_node(self, cond, *inputs):
        if cond.ndim != 0:
            raise TypeError(f"ifelse {self.name!r}: the condition must be a scalar, got {_describe(cond)}")
        if len(inputs) != len(self.inner_inputs):
            raise TypeError(f"ifelse {self.name!r}: takes {len(self.inner_inputs)} inputs, got {len(inputs)}")
        for v, p in zip(inputs, self.inner_inputs):
            if v.dtype != p.dtype or not _same_shape(v.type.shape, p.type.shape):
                raise TypeError(f"ifelse {self.name!r}: input {_describe(v)} where the branches expect {p.type}")
        types = []
        for a, b in zip(self.then_outputs, self.else_outputs):
            shape = tuple(x if x == y else None for x, y in zip(a.type.shape, b.type.shape))
            types.append(TensorType(a.dtype, shape))
        return Apply(self, [cond, *inputs], types)

    def perform(self, node, inputs):
        cond, *values = inputs
        which = "then" if bool(np.asarray(cond)) else "else"
        outputs = self.then_outputs if which == "then" else self.else_outputs
        results = self._program(which, self.inner_inputs, outputs).run(list(values))
        return [np.asarray(v, dtype=o.dtype) for v, o in zip(results, node.outputs)]

    def grad(self, node, output_grads):
        from ..grad import grad as _grad

        cond, *captured = node.inputs
        wrt = [v for v in captured if is_float(v.dtype)]
        if not wrt:
            return [None] * len(node.inputs)
        bind = dict(zip(self.inner_inputs, captured))
        branches = []
        for outputs in (self.then_outputs, self.else_outputs):
            outer = substitute(list(outputs), bind)
            seeds = {}
            for o, g in zip(outer, output_grads):
                if is_float(o.dtype) and not isinstance(o, Constant):
                    seeds[o] = g if o not in seeds else seeds[o] + g
            if seeds:
                found = _grad(None, wrt, known_grads=seeds, disconnected_inputs="ignore")
            else:
                found = [zeros_like(w) for w in wrt]
            branches.append([g.astype(w.dtype) for g, w in zip(found, wrt)])
        chosen = ifelse(cond, branches[0], branches[1], name=f"grad of {self.name}")
        chosen = iter(chosen)
        return [None] + [next(chosen) if is_float(v.dtype) else None for v in captured]


def ifelse(condition: Any, then_branch: Any, else_branch: Any, name: str | None = None) -> Any:
    """``then_branch`` if the scalar ``condition`` holds, else ``else_branch``: lazily, only the
    chosen branch is computed (Theano's ``ifelse``). Branches are tensors or tuples of them,
    of the same dtypes and numbers of dimensions; ``ex.where`` is the elementwise choice.

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> ex.ifelse(x.sum() > 0, ex.log(x), x * 0).eval({x: [1.0, 2.0]})
    array([0.        , 0.69314718])
    """
    name = name or "ifelse"
    single = not isinstance(then_branch, (list, tuple))
    thens, elses = _as_list(then_branch), _as_list(else_branch)
    if len(thens) != len(elses):
        raise TypeError(f"ifelse {name!r}: the then branch has {len(thens)} outputs, the else branch {len(elses)}")
    cond = as_tensor(condition)
    if cond.ndim != 0:
        raise TypeError(f"ifelse {name!r}: the condition must be a scalar, got {_describe(cond)}")
    cond = cond if cond.dtype == "bool" else cond != 0
    thens, elses = [as_tensor(v) for v in thens], [as_tensor(v) for v in elses]
    pairs = []
    for k, (a, b) in enumerate(zip(thens, elses)):
        if a.type.weak and not b.type.weak:
            a = a.astype(b.dtype)
        elif b.type.weak and not a.type.weak:
            b = b.astype(a.dtype)
        a, b = _strong(a), _strong(b)
        if a.dtype != b.dtype or a.ndim != b.ndim:
            raise TypeError(
                f"ifelse {name!r}: output {k} is {a.type} in the then branch and {b.type} in the else branch; "
                "the branches must agree in dtype and number of dimensions"
            )
        pairs.append((a, b))
    thens, elses = [a for a, _ in pairs], [b for _, b in pairs]
    captured = graph_inputs(thens + elses)
    placeholders = [_placeholder(v.type, v.name) for v in captured]
    inner = substitute(thens + elses, dict(zip(captured, placeholders))) if captured else thens + elses
    op = IfElse(name, tuple(placeholders), tuple(inner[: len(thens)]), tuple(inner[len(thens) :]))
    outs = op(cond, *captured)
    outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
    if single:
        return outs[0]
    return type(then_branch)(outs) if isinstance(then_branch, tuple) else outs
