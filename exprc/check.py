"""Checking modes: ``exprc.function(..., mode="check")`` and ``mode="nanguard"``.

``mode="check"`` runs the compiled program and the NumPy reference side by side on every
call and raises :class:`CheckError` at the first graph node whose compiled value differs
from NumPy's (tolerances: :data:`TOLERANCES`); ``mode="nanguard"`` raises
:class:`NanGuardError` at the first node that creates a NaN or an infinity.
See docs/checking.md.

>>> import numpy as np, exprc as ex
>>> x = ex.vector("x")
>>> f = ex.function([x], ex.exp(x).sum(), mode="check")
>>> f(np.zeros(3))
array(3.)
"""

import numpy as np

from .graph import Constant
from .printing import format_value, to_infix

#: The modes ``exprc.function`` accepts besides None.
MODES = ("check", "nanguard")

#: Per float dtype, ``(rtol, atol)`` (``atol`` is scaled, see the module's docstring).
TOLERANCES = {"float16": (1e-2, 1e-3), "float32": (1e-4, 1e-6), "float64": (1e-9, 1e-12)}


class CheckError(AssertionError):
    """``mode="check"``: a compiled value differs from the NumPy reference's.

    Attributes: ``variable`` (the graph variable), ``got`` and ``expected`` (arrays),
    ``max_abs`` and ``max_rel`` (the largest errors), ``index`` (where the error is
    largest), ``code`` (the generated code computing it, or None).
    """


class NanGuardError(FloatingPointError):
    """``mode="nanguard"``: a node created a NaN or an infinity.

    Attributes: ``variable`` (the graph variable), ``value`` (its array), ``index`` (the
    first element that is not finite), ``code`` (the generated code computing it, or None).
    """


def check_mode(mode):
    """``mode`` if ``exprc.function`` accepts it, else a ValueError naming those it does.

    >>> check_mode("check")
    'check'
    """
    if mode is not None and mode not in MODES:
        raise ValueError(f"mode {mode!r} is not known; expected None or one of {MODES}")
    return mode


def wrap(mode, program_class, program, inputs, outputs, backend):
    """The program a function in ``mode`` runs: ``program`` (built by ``program_class``)
    watched as the mode asks; ``program`` itself when ``mode`` is None."""
    if mode is None:
        return program
    return CheckedProgram(mode, program_class, program, inputs, outputs, backend)


class _Step:
    """One step of a program: the nodes it computes, the values it reads and writes, and the
    generated code (None for a node NumPy runs)."""

    def __init__(self, nodes, reads, writes, kernel=None, code=None):
        self.nodes, self.reads, self.writes, self.kernel, self.code = nodes, reads, writes, kernel, code

    def describe(self):
        if self.kernel is None:
            return f"run by NumPy ({self.nodes[0].op.debug_name()})"
        fused = "".join(f"\n      {to_infix(n.outputs[0], limit=100)}" for n in self.nodes)
        return f"computed by the C kernel {self.kernel}, which fuses:{fused}"


def _steps(program):
    """The steps of ``program`` in the order it runs them: the kernels and NumPy steps of a
    C program (its ``program`` property), or every node of the reference program."""
    lowered = getattr(program, "program", None)
    if lowered is None:
        return [_Step([node], list(node.inputs), list(node.outputs)) for node in program.order]
    kernel_sources = getattr(program, "kernel_sources", {})
    steps = []
    for step in lowered.steps:
        if hasattr(step, "kernel"):
            steps.append(
                _Step(
                    list(step.nodes),
                    [v for _, v in step.inputs],
                    [v for _, v in step.outputs],
                    step.kernel.name,
                    kernel_sources.get(step.kernel.name),
                )
            )
        else:
            steps.append(_Step([step.node], list(step.node.inputs), list(step.node.outputs)))
    return steps


class CheckedProgram:
    """A program run under ``mode`` (see the module's docstring); the interface of the
    program it watches (``run``, ``listing``)."""

    def __init__(self, mode, program_class, program, inputs, outputs, backend):
        self.mode, self.program, self.backend = mode, program, backend
        self.inputs, self.outputs = list(inputs), list(outputs)
        self.steps = _steps(program)
        seen = set(self.inputs) | set(self.outputs)
        extra = []
        for step in self.steps:
            for var in step.writes:
                if var not in seen and not isinstance(var, Constant):
                    seen.add(var)
                    extra.append(var)
        self.probe_outputs = self.outputs + extra
        self.probe = program_class(self.inputs, self.probe_outputs) if extra else program

    def listing(self):
        return self.program.listing()

    def run(self, arrays):
        if self.mode == "nanguard":
            return self._nanguard(arrays)
        return self._check(arrays)

    def _probe_values(self, arrays):
        values = dict(zip(self.inputs, arrays))
        values.update(zip(self.probe_outputs, self.probe.run(list(arrays))))
        return values

    # --- mode="check" ------------------------------------------------------------------------
    def _check(self, arrays):
        results = self.program.run(list(arrays))
        values = self._probe_values(arrays)
        checked = {}
        for number, step in enumerate(self.steps):
            reference, scale, spread = _reference(step, values)
            for var in step.writes:
                if reference is None:  # NumPy defines no result to compare with
                    checked[var] = (values[var], scale, None)
                    continue
                difference = _compare(values[var], reference[var], var.dtype, scale, spread.get(var))
                if difference is not None:
                    raise _check_error(self, number, step, var, values, reference[var], difference, scale)
                checked[var] = (reference[var], scale, spread.get(var))
        for k, (var, got) in enumerate(zip(self.outputs, results)):
            want, scale, within = checked.get(var) or (_value(var, values), _Scale(), None)
            difference = _compare(got, want, var.dtype, scale, within)
            if difference is not None:
                step = _Step([var.owner] if var.owner else [], [], [var])
                raise _check_error(self, None, step, var, {var: got}, want, difference, scale, output=k)
        return results

    # --- mode="nanguard" ---------------------------------------------------------------------
    def _nanguard(self, arrays):
        values = self._probe_values(arrays)
        for number, step in enumerate(self.steps):
            read = [values[v] if v in values else _value(v, values) for v in step.reads]
            for var in step.writes:
                kind = _created(values[var], read)
                if kind is not None:
                    raise _nanguard_error(self, number, step, var, values, kind)
        return [values[v] if v in values else _value(v, values) for v in self.outputs]


# --- the reference of one step ------------------------------------------------------------------


def _value(var, values):
    if isinstance(var, Constant):
        return var.value
    return values[var]


def _operand(var, values):
    """A value as an op's NumPy reference takes it: weak values as Python scalars."""
    value = _value(var, values)
    return np.asarray(value).item() if var.type.weak else value


def _reference(step, values):
    """What the reference computes for the step's nodes from the step's compiled inputs
    ``values``: ``(values, scale, spread)``. The values are None where NumPy defines none
    (see :func:`_undefined_cast`); the scale is that of the float tolerance; ``spread``
    maps each value computed from values of the step to its :class:`_Spread`."""
    computed, spread = {}, {}
    scale = 1.0
    reduced = 1
    loosest = []
    undefined = False
    with np.errstate(all="ignore"):
        for var in step.reads:
            scale = max(scale, _magnitude(_value(var, values)))
            loosest.append(var.dtype)
        for node in step.nodes:
            args = [_operand(v, computed) if v in computed else _operand(v, values) for v in node.inputs]
            undefined = undefined or _undefined_cast(node, args)
            results = node.op.perform(node, args)
            for var, result in zip(node.outputs, results):
                computed[var] = result
                scale = max(scale, _magnitude(result))
                loosest.append(var.dtype)
            spread.update(_spread(node, args, results, spread))
            sizes = [np.size(a) for a in args]
            out_size = max(1, np.size(computed[node.outputs[0]]))
            if sizes and max(sizes) > out_size:
                reduced = max(reduced, max(sizes) // out_size)
    return None if undefined else computed, _Scale(scale * reduced, _loosest(loosest)), spread


#: How many units in the last place a compiled value inside a kernel may be from NumPy's
#: (glibc's vector math is within 4 ulp of the correctly rounded result).
SPREAD_ULPS = 4


class _Spread:
    """Elementwise bounds ``[low, high]`` of what a node computes when the values it reads
    from earlier nodes of its kernel move by :data:`SPREAD_ULPS` ulp each, and ``nan`` where
    such a move can make NaN. A kernel keeps those values in registers, so they cannot be
    checked one by one; a one-ulp difference (a libm ``sinf`` against NumPy's) fed to an
    ill-conditioned node (``arctanh`` near 1) moves its result far more than any tolerance
    allows, and is still right."""

    def __init__(self, low, high, nan):
        self.low, self.high, self.nan = low, high, nan

    def corners(self, value):
        """The values to try for an operand: its own, then its bounds."""
        return (value, self.low, self.high)


def _spread(node, args, results, spread):
    """``{output: _Spread}`` for ``node``, whose reference read ``args`` and gave ``results``,
    given the spreads of the values it read (those it reads from outside the step are exact):
    its results at every corner of those spreads, each moved by its own rounding."""
    moving = [k for k, v in enumerate(node.inputs) if v in spread][:3]  # 27 corners at most
    name = getattr(getattr(node.op, "scalar_op", None), "name", None)
    if moving and name in _COMPARISONS:
        return {
            node.outputs[0]: _compared(
                name, [_bounds(v, a, spread) for v, a in zip(node.inputs, args)], np.asarray(results[0])
            )
        }
    tried = []
    for pick in np.ndindex(*(3,) * len(moving)):
        if not any(pick):
            continue  # every operand at its own value: the results themselves
        trial = list(args)
        for k, corner in zip(moving, pick):
            trial[k] = spread[node.inputs[k]].corners(args[k])[corner]
        try:
            tried.append(node.op.perform(node, trial))
        except Exception:  # noqa: BLE001 - a corner NumPy refuses only narrows the bounds
            continue
    found = {}
    for n, (var, result) in enumerate(zip(node.outputs, results)):
        result = np.asarray(result)
        if result.dtype.kind not in "fiub":
            continue
        values = [np.asarray(t[n]) for t in tried if np.shape(t[n]) == result.shape]
        low, high, nan = result, result, np.zeros(result.shape, bool)
        for v in values:
            low, high = np.fmin(low, v), np.fmax(high, v)
            if v.dtype.kind == "f":
                nan = nan | np.isnan(v)
        found[var] = _Spread(*_widened(low, high), nan)
    return found


#: Comparisons: ``(can be true, can be false)`` for operands within ``[a_lo, a_hi]`` and
#: ``[b_lo, b_hi]``. A corner of the bounds misses the one point inside them where ``==``
#: holds (``arccosh(cosh(c)) == c``), so these reason on the intervals instead.
_COMPARISONS = {
    "equal": lambda a, b: ((a[0] <= b[1]) & (b[0] <= a[1]), ~((a[0] == a[1]) & (b[0] == b[1]) & (a[0] == b[0]))),
    "less": lambda a, b: (a[0] < b[1], a[1] >= b[0]),
    "less_equal": lambda a, b: (a[0] <= b[1], a[1] > b[0]),
}
_COMPARISONS.update(
    {
        "not_equal": lambda a, b: _COMPARISONS["equal"](a, b)[::-1],  # true where == can be false, and so on
        "greater": lambda a, b: _COMPARISONS["less"](b, a),
        "greater_equal": lambda a, b: _COMPARISONS["less_equal"](b, a),
    }
)


def _bounds(var, value, spread):
    """``(low, high)`` of an operand: its spread's, or its own value twice."""
    if var in spread:
        return spread[var].low, spread[var].high
    value = np.asarray(value)
    return value, value


def _compared(name, operands, result):
    """The :class:`_Spread` of comparison ``name`` of operands within ``operands``' bounds."""
    (a, b) = operands
    with np.errstate(invalid="ignore"):
        true, false = _COMPARISONS[name](a, b)
        nan = np.isnan(np.asarray(a[0], float)) | np.isnan(np.asarray(b[0], float))
    false = false | (nan if name != "not_equal" else False)
    true = true | (nan if name == "not_equal" else False)
    low = np.broadcast_to(result & ~false, result.shape)  # True only where False cannot be
    high = np.broadcast_to(result | true, result.shape)
    return _Spread(low, high, np.zeros(result.shape, bool))


def _widened(low, high):
    """``low`` and ``high`` moved apart by :data:`SPREAD_ULPS` ulp (floats only)."""
    low, high = np.asarray(low), np.asarray(high)
    if low.dtype.kind != "f":
        return low, high
    step = SPREAD_ULPS * np.spacing(np.abs(low)).astype(low.dtype)
    top = SPREAD_ULPS * np.spacing(np.abs(high)).astype(high.dtype)
    return (
        np.where(np.isfinite(low), low - step, low).astype(low.dtype),
        np.where(np.isfinite(high), high + top, high).astype(high.dtype),
    )


#: Per unsigned target, the floats ``[low, high)`` whose conversion NumPy defines.
_DEFINED_CASTS = {"astype_uint32": (-(2.0**31), 2.0**32), "astype_uint64": (-(2.0**63), 2.0**64)}


def _undefined_cast(node, args):
    """Whether ``node`` converts a float to uint32 or uint64 that no rule converts: NaN,
    infinities, or beyond the range that wraps. NumPy's own scalar and array casts disagree
    there (the C back end gives the low bits of x86's int64 conversion)."""
    bounds = _DEFINED_CASTS.get(getattr(getattr(node.op, "scalar_op", None), "name", None))
    x = np.asarray(args[0]) if bounds else None
    if x is None or x.dtype.kind != "f":
        return False
    with np.errstate(invalid="ignore"):
        return not ((x >= bounds[0]) & (x < bounds[1])).all()


class _Scale:
    """What a step's float tolerance depends on: the magnitude ``value`` its ``atol`` is
    multiplied by, and the least precise float dtype among the values the step reads and
    computes (a float32 value rounded in a kernel stays that far off in the float64 result
    it feeds)."""

    def __init__(self, value=1.0, dtype=None):
        self.value, self.dtype = value, dtype

    def tolerance(self, dtype):
        """``(rtol, atol)`` for a result of ``dtype``."""
        own = TOLERANCES.get(np.dtype(dtype).name, TOLERANCES["float64"])
        step = TOLERANCES.get(self.dtype, own) if self.dtype else own
        return max(own[0], step[0]), max(own[1], step[1])


def _loosest(dtypes):
    floats = [np.dtype(d) for d in dtypes if np.dtype(d).kind == "f"]
    return min(floats, key=lambda d: d.itemsize).name if floats else None


def _magnitude(value):
    value = np.asarray(value)
    if value.dtype.kind not in "fiu" or value.size == 0:
        return 0.0
    with np.errstate(all="ignore"):
        finite = np.abs(value[np.isfinite(value)]) if value.dtype.kind == "f" else np.abs(value.astype(np.float64))
    return float(finite.max()) if finite.size else 0.0


class _Difference:
    """How a value differs from the reference's."""

    def __init__(self, what, max_abs=None, max_rel=None, index=None, got=None, want=None):
        self.what, self.max_abs, self.max_rel, self.index, self.got, self.want = (
            what,
            max_abs,
            max_rel,
            index,
            got,
            want,
        )


def _compare(got, want, dtype, scale, spread=None):
    """None when ``got`` matches ``want`` (see :data:`TOLERANCES`) or lies within ``spread``
    (a :class:`_Spread`, for a value computed inside a kernel), else a :class:`_Difference`."""
    got, want = np.asarray(got), np.asarray(want)
    if got.dtype != want.dtype and not (want.dtype == np.dtype(dtype) or got.dtype == np.dtype(dtype)):
        return _Difference(f"dtype {got.dtype}, the reference's is {want.dtype}")
    if got.dtype != np.dtype(dtype):
        return _Difference(f"dtype {got.dtype}, the node's type is {dtype}")
    if got.shape != want.shape:
        return _Difference(f"shape {got.shape}, the reference's is {want.shape}")
    want = want.astype(got.dtype, copy=False)
    if got.size == 0:
        return None
    if got.dtype.kind != "f":
        bad = got != want
        if spread is not None:
            bad &= ~((got >= spread.low) & (got <= spread.high))
        if not bad.any():
            return None
        index = np.unravel_index(int(np.argmax(bad)), got.shape)
        diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
        return _Difference(
            "values",
            float(diff.max()),
            float((diff / np.maximum(np.abs(want), 1)).max()),
            index,
            got[index],
            want[index],
        )
    rtol, atol = scale.tolerance(got.dtype)
    g, w = got.astype(np.float64), want.astype(np.float64)
    with np.errstate(all="ignore"):
        finite = np.isfinite(g) & np.isfinite(w)
        same_special = ~finite & ((np.isnan(g) & np.isnan(w)) | (g == w))
        diff = np.where(finite, np.abs(g - w), 0.0)
        allowed = atol * scale.value + rtol * np.abs(w)
        bad = ~(finite | same_special) | (diff > allowed)
        if spread is not None:
            low, high = spread.low.astype(np.float64), spread.high.astype(np.float64)
            bad &= ~(
                ((g >= low - allowed) & (g <= high + allowed))
                | (np.isnan(g) & spread.nan)
                | (np.isinf(g) & ((g == low) | (g == high)))
            )
    if not bad.any():
        return None
    rel = np.where(finite, diff / np.where(w == 0, 1.0, np.abs(w)), 0.0)
    special = bad & ~finite
    if special.any():
        index = np.unravel_index(int(np.argmax(special)), got.shape)
        what = "nonfinite"
    else:
        index = np.unravel_index(int(np.argmax(np.where(bad, diff, -1.0))), got.shape)
        what = "values"
    return _Difference(
        what,
        float(diff[finite].max()) if finite.any() else float("nan"),
        float(rel[finite].max()) if finite.any() else float("nan"),
        index,
        got[index],
        want[index],
    )


def _created(value, reads):
    """``"NaN"`` or ``"inf"`` when ``value`` holds one and none of the values ``reads`` does
    (NaN from inf - inf counts as created), else None."""
    value = np.asarray(value)
    if value.dtype.kind != "f" or value.size == 0:
        return None
    floats = [np.asarray(r) for r in reads if np.asarray(r).dtype.kind == "f"]
    if np.isnan(value).any() and not any(np.isnan(r).any() for r in floats):
        return "NaN"
    if np.isinf(value).any() and not any(np.isinf(r).any() for r in floats):
        return "inf"
    return None


# --- messages -------------------------------------------------------------------------------------


def _node_text(var):
    op = f" ({var.owner.op.debug_name()})" if var.owner is not None else ""
    return f"{to_infix(var, limit=200)}{op}"


def _reads_text(step, values):
    lines = []
    for var in step.reads:
        if var in values or isinstance(var, Constant):
            lines.append(f"      {to_infix(var, limit=80)}: {format_value(np.asarray(_value(var, values)))}")
    return "\n".join(lines)


def _index_text(index):
    return "[" + ", ".join(str(int(i)) for i in index) + "]"


def _check_error(checked, number, step, var, values, want, difference, scale, output=None):
    got = np.asarray(values[var])
    want = np.asarray(want)
    where = (
        f"step {number} of the {checked.backend} program"
        if output is None
        else f"output {output} as the {checked.backend} program returned it"
    )
    lines = [
        f'mode="check": {where} computes {_node_text(var)} differently from the NumPy reference',
        f"  node: {to_infix(var, limit=200)}, of type {var.type}",
    ]
    if step.nodes and output is None:
        lines.append(f"  {step.describe()}")
    reads = _reads_text(step, values)
    if reads:
        lines.append("  reading:\n" + reads)
    lines.append(f"  value: {format_value(got)}; the reference's: {format_value(want)}")
    if difference.index is None:
        lines.append(f"  {difference.what}")
    else:
        kind = "" if difference.what != "nonfinite" else " (not finite where the reference's value is, or the reverse)"
        lines.append(
            f"  largest absolute error {difference.max_abs:.3g}, largest relative error {difference.max_rel:.3g}; "
            f"at {_index_text(difference.index)}{kind} the value is {difference.got.item()!r}, "
            f"the reference's {difference.want.item()!r}"
        )
        if got.dtype.kind == "f":
            rtol, atol = scale.tolerance(got.dtype)
            lines.append(f"  tolerance: |got - want| <= {atol:g} * {scale.value:.3g} + {rtol:g} * |want|")
    if step.code:
        lines.append("  generated code:\n" + _indent(step.code))
    error = CheckError("\n".join(lines))
    error.variable, error.got, error.expected = var, got, want
    error.max_abs, error.max_rel, error.index, error.code = (
        difference.max_abs,
        difference.max_rel,
        difference.index,
        step.code,
    )
    error.step = number
    return error


def _nanguard_error(checked, number, step, var, values, kind):
    value = np.asarray(values[var])
    bad = np.isnan(value) if kind == "NaN" else np.isinf(value)
    index = np.unravel_index(int(np.argmax(bad)), value.shape)
    origin = _origin(step, values, kind)
    origin = var if origin is None else origin
    lines = [f'mode="nanguard": step {number} of the {checked.backend} program creates {kind}: {_node_text(origin)}']
    if origin is not None and origin is not var:
        lines.append(f"  (it is computed inside the kernel that stores {to_infix(var, limit=120)})")
    lines.append(f"  node: {to_infix(origin, limit=200)}, of type {origin.type}")
    if step.kernel is not None:
        lines.append(f"  {step.describe()}")
    reads = _reads_text(step, values)
    if reads:
        lines.append(
            "  reading (all finite" + (", or holding inf but no NaN" if kind == "NaN" else "") + "):\n" + reads
        )
    lines.append(f"  value: {format_value(value)}, {value[index].item()!r} at {_index_text(index)}")
    if step.code:
        lines.append("  generated code:\n" + _indent(step.code))
    error = NanGuardError("\n".join(lines))
    error.variable, error.value, error.index, error.code, error.step = origin, value, index, step.code, number
    return error


def _origin(step, values, kind):
    """The first node of ``step`` whose reference value creates ``kind`` from its own
    operands; None when the reference creates none (the compiled code alone does)."""
    computed = {}
    with np.errstate(all="ignore"):
        for node in step.nodes:
            args = [_operand(v, computed) if v in computed else _operand(v, values) for v in node.inputs]
            results = node.op.perform(node, args)
            for var, result in zip(node.outputs, results):
                computed[var] = result
                if _created(result, args) == kind:
                    return var
    return None


def _indent(text, prefix="    "):
    return "\n".join(prefix + line for line in text.splitlines())
