"""``exprc.function``: turn a graph into a callable, and check what callers pass it.

Graphs compile to C by default (:mod:`exprc.codegen.c.program`). The NumPy reference back end
(``backend="numpy"``) lives here: it runs the
graph node by node through each op's NumPy implementation. It is the oracle
every other back end is tested against, so it stays simple and obviously right.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any, TypeAlias

import numpy as np

from . import backends, check
from .graph import Constant, Variable, flatten, graph_inputs, substitute, unflatten
from .inputs import In, split_inputs
from .ops.random import default_updates
from .printing import html_view, to_infix
from .reference import ReferenceProgram
from .remembered import rewrite_remembered
from .rewrite import RewriteReport, check_mode
from .shapes import ShapeError, fmt_shape
from .shared import SharedVariable, locks_of, shared
from .tensor import OPERATIONS, TensorLike, TensorVariable, _describe, _expected, as_tensor, convert_input


def _program_class(backend):
    """The class that runs a graph for ``backend``: ``Program(inputs, outputs)`` with
    ``run(arrays) -> list of arrays`` and ``listing() -> str``."""
    if backend == "numpy":
        return ReferenceProgram
    if backend in backends.CPU_BACKENDS:
        return backends.entry_point(backends.CPU_BACKENDS[backend].program)
    raise ValueError(f"backend {backend!r} is not known; expected one of {BACKENDS}")


BACKENDS = ("numpy", *backends.CPU_BACKENDS)

_fallback_warned: list[str] = []

#: What ``function`` takes as ``outputs``: one expression, or a list or tuple of them.
Outputs: TypeAlias = TensorLike | list[TensorLike] | tuple[TensorLike, ...]
#: ``givens``: a dict, or pairs, from variables to the expressions that replace them.
Givens: TypeAlias = dict[Variable, TensorLike] | Iterable[tuple[Variable, TensorLike]]
#: ``updates``: ``(shared variable, new value)`` pairs in a list or tuple, or a dict.
Updates: TypeAlias = (
    list[tuple[SharedVariable, TensorLike]]
    | tuple[tuple[SharedVariable, TensorLike], ...]
    | dict[SharedVariable, TensorLike]
)


def default_backend() -> str:
    """The back end ``exprc.function`` compiles for when none is named: ``"c"``, or, when
    no C compiler can be found, ``"numpy"`` (with a warning, once).

    >>> default_backend()
    'c'
    """
    reason = backends.missing(backends.CPU_BACKENDS["c"])
    if reason is None:
        return "c"
    if not _fallback_warned:
        import warnings

        _fallback_warned.append(reason)
        warnings.warn(
            f"{reason}: exprc runs graphs with its NumPy reference back end instead, which is much "
            "slower; install a C compiler (gcc or clang) or set $CC",
            RuntimeWarning,
            stacklevel=3,
        )
    return "numpy"


class MissingInputError(ValueError):
    """An output depends on a variable that is neither an input nor a constant."""


def _as_outputs(outputs):
    single = not isinstance(outputs, (list, tuple))
    outputs = [outputs] if single else list(outputs)
    return [as_tensor(o) for o in outputs], single


def _checked_inputs(inputs):
    if not isinstance(inputs, (list, tuple)):
        raise TypeError(f"function inputs must be a list of variables, got {inputs!r}")
    for i, var in enumerate(inputs):
        if not isinstance(var, TensorVariable):
            raise TypeError(f"function input {i} must be a symbolic tensor, got {var!r}")
        if isinstance(var, SharedVariable):
            raise TypeError(
                f"function input {i} ({var}) is a shared variable: functions read shared variables "
                "implicitly, so leave it out of the inputs"
            )
        if isinstance(var, Constant) or var.owner is not None:
            raise TypeError(
                f"function input {i} ({var}) must be a declared input such as ex.vector('x'), "
                "not a constant or a computed expression; use givens= to substitute one"
            )
        if var in inputs[:i]:
            raise ValueError(f"function input {var} is listed twice")
    return list(inputs)


def _checked_updates(updates):
    """``updates`` (pairs, or a dict) as two lists: the shared variables and their new values,
    each new value a tensor of its variable's dtype and a compatible static shape."""
    if updates is None:
        return [], []
    if isinstance(updates, dict):
        updates = list(updates.items())
    if not isinstance(updates, (list, tuple)):
        raise TypeError(f"updates must be a list of (shared variable, new value) pairs or a dict, got {updates!r}")
    updated, new_values = [], []
    for i, pair in enumerate(updates):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise TypeError(f"update {i} must be a pair (shared variable, new value), got {pair!r}")
        var, value = pair
        if not isinstance(var, SharedVariable):
            raise TypeError(f"update {i}: only shared variables (ex.shared) can be updated, got {var!r}")
        if var in updated:
            raise ValueError(f"shared variable {var} is updated twice")
        updated.append(var)
        new_values.append(as_tensor(value))
    _check_update_types(updated, new_values)
    return updated, new_values


def _check_update_types(updated, new_values):
    for var, value in zip(updated, new_values):
        what = f"the update of shared variable {var} ({var.type})"
        if value.dtype != var.dtype:
            raise TypeError(
                f"{what}: the new value {value} is {value.dtype}, expected {var.dtype}; "
                f"cast it with .astype({var.dtype!r})"
            )
        if value.ndim != var.ndim:
            raise TypeError(f"{what}: the new value {value} has {value.ndim} dimensions, expected {var.ndim}")
        for axis, (want, got) in enumerate(zip(var.type.shape, value.type.shape)):
            if want is not None and got is not None and want != got:
                raise ShapeError(
                    f"{what}: the new value {value} has shape {fmt_shape(value.type.shape)}; "
                    f"axis {axis} must have length {want}"
                )


def _check_update_value(var, value):
    """A new value whose lengths the graph did not fix is checked before any update is written."""
    for axis, want in enumerate(var.type.shape):
        if want is not None and value.shape[axis] != want:
            raise ShapeError(
                f"the update of shared variable {var} computed shape {value.shape}, but {var} "
                f"has shape {fmt_shape(var.type.shape)}: axis {axis} must have length {want}; "
                "no update was written"
            )


def _unpickle_function(state):
    values = unflatten(state["entries"], state["picks"])
    n_in, n_out = state["n_inputs"], state["n_outputs"]
    inputs = values[:n_in]
    n_up = (len(values) - n_in - n_out) // 2
    updated = values[n_in : n_in + n_up]
    outputs = values[n_in + n_up : n_in + n_up + n_out]
    new_values = values[n_in + n_up + n_out :]
    f = Function.__new__(Function)
    f.inputs = inputs
    f._single = state["single"]
    f.rewrites = RewriteReport(state["rewrites"])
    f._setup(
        outputs,
        list(zip(updated, new_values)),
        state["backend"],
        state["allow_input_downcast"],
        state["name"],
        state.get("mode"),
    )
    return f


class Function:
    """A compiled graph: call it with one value per input, get NumPy arrays back.

    Built by :func:`function`; see there.
    """

    def __init__(
        self, inputs, outputs, backend, allow_input_downcast, givens, name, rewrites="fast", updates=None, mode=None
    ):
        self.inputs = _checked_inputs(inputs)
        outputs, self._single = _as_outputs(outputs)
        updated, new_values = _checked_updates(updates)
        if givens:
            pairs = givens.items() if isinstance(givens, dict) else givens
            replaced = substitute(outputs + new_values, {old: as_tensor(new) for old, new in pairs})
            outputs, new_values = replaced[: len(outputs)], replaced[len(outputs) :]
            _check_update_types(updated, new_values)
        self._check_reachable(outputs + new_values)
        #: The rewrites that fired while compiling (a :class:`~exprc.rewrite.RewriteReport`).
        self.rewrites = RewriteReport()
        roots = outputs + new_values
        leaves = self.inputs + [v for v in graph_inputs(roots) if isinstance(v, SharedVariable)]
        rewritten = rewrite_remembered(leaves, roots, rewrites, self.rewrites)
        self._setup(
            rewritten[: len(outputs)],
            list(zip(updated, rewritten[len(outputs) :])),
            backend,
            allow_input_downcast,
            name,
            mode,
        )

    def _setup(self, outputs, updates, backend, allow_input_downcast, name, mode=None):
        """Everything after the graph is final: the program, and what calls need."""
        self.outputs = outputs
        #: ``(shared variable, expression)`` pairs written after each call (the expressions rewritten).
        self.updates = updates
        self.backend = backend
        self.name = name
        self.allow_input_downcast = allow_input_downcast
        # The shared variables the program reads, passed after the explicit inputs.
        self.implicit = [v for v in graph_inputs(outputs + [e for _, e in updates]) if isinstance(v, SharedVariable)]
        names = [v.name for v in self.inputs if v.name]
        # A name two inputs share cannot pick one of them: such inputs are passed by position.
        self._positions = {v.name: i for i, v in enumerate(self.inputs) if v.name and names.count(v.name) == 1}
        self._shared_names = {n for n in names if names.count(n) > 1}
        program_inputs = self.inputs + self.implicit
        # An update may be computed into its variable's own array, where the back end finds
        # that safe (nothing reads the old value afterwards); see exprc.codegen.c.program.
        # (Not while checking: the reference must see the values the call started from.)
        #: None, ``"check"`` or ``"nanguard"`` (see :mod:`exprc.check`).
        self.mode = check.check_mode(mode)
        in_place = [
            (len(outputs) + j, program_inputs.index(var))
            for j, (var, _) in enumerate(updates)
            if var in self.implicit and self.mode is None
        ]
        program_outputs = self.outputs + [e for _, e in updates]
        program_class = _program_class(backend)
        self._program = program_class(program_inputs, program_outputs, in_place)
        self._program = check.wrap(self.mode, program_class, self._program, program_inputs, program_outputs, backend)
        # The input positions whose arrays the program may write an update into.
        self._overwritten = sorted(set(getattr(self._program, "in_place", {}).values()))
        # Weak references to the shared values of the last call, once found not to share memory:
        # a training loop reads the same ones each time, and then compares only the arguments.
        self._apart = ()
        # A call holds the locks of every shared variable it reads or updates (see _call_with_state).
        self._locks = locks_of(self.implicit + [var for var, _ in updates])
        direct = getattr(self._program, "direct", None)
        self._stateful = bool(self.implicit or updates)
        self._direct = direct[self._single and not self._stateful] if direct else None
        call_method = getattr(self._program, "call_method", None)
        if type(self) is Function and self._direct is not None and not self._stateful and call_method:
            # This function's own class, whose __call__ is the direct path written out for its
            # arrays: a warm call runs one Python function, not __call__ and then the direct path
            # (about 0.2 µs of W3's 1.3).
            method = call_method(self._single, Function._checked_call)
            if method is not None:
                self.__class__ = _calling(method)
        # What an argument must be to skip conversion: an ndarray of the very dtype object,
        # number of dimensions and static lengths the input declares.
        self._exact = [
            (np.dtype(v.dtype), v.ndim, [(a, d) for a, d in enumerate(v.type.shape) if d is not None])
            for v in self.inputs
        ]

    def _check_reachable(self, roots):
        for var in graph_inputs(roots):
            if var not in self.inputs and not isinstance(var, SharedVariable):
                namesake = any(v.name and v.name == var.name for v in self.inputs)
                raise MissingInputError(
                    f"the outputs depend on {var} ({var.type}), which is not among the inputs "
                    f"{[str(v) for v in self.inputs]}"
                    + (f" (an input is also named {var.name!r}, but it is another variable)" if namesake else "")
                    + "; add it to the inputs or give it a value with givens="
                )

    def __reduce__(self):
        # The rewritten graph is stored flat (no recursion, however deep) and rebuilt without
        # rewriting again; with a warm disk cache the unpickled function loads its compiled
        # code and never runs the compiler.
        roots = self.outputs + [e for _, e in self.updates]
        entries, picks = flatten(self.inputs + [v for v, _ in self.updates] + roots)
        state = {
            "entries": entries,
            "picks": picks,
            "n_inputs": len(self.inputs),
            "n_outputs": len(self.outputs),
            "single": self._single,
            "backend": self.backend,
            "name": self.name,
            "allow_input_downcast": self.allow_input_downcast,
            "rewrites": list(self.rewrites),
            "mode": self.mode,
        }
        return (_unpickle_function, (state,))

    @property
    def graph(self):
        """The output variables of the graph this function computes."""
        return self.outputs

    @property
    def source(self):
        """The program as text: its plan, then what runs (for the C back end, the kernels and
        entry points, the fixed run-time declarations left out: see :attr:`source_full`)."""
        return self._program.listing()

    @property
    def source_full(self):
        """The program's whole text, as compiled (:attr:`source` leaves out what every program shares)."""
        full = getattr(self._program, "listing_full", None)
        return full() if full is not None else self._program.listing()

    def copy(
        self,
        share_memory: bool = False,
        swap: dict[SharedVariable, SharedVariable] | None = None,
        delete_updates: bool = False,
        name: str | None = None,
    ) -> Function:
        """The same function built again (from the disk cache, so at once), as Theano's copy.

        ``share_memory=False`` gives the copy shared variables of its own, holding copies of
        the current values (see them in ``copy.updates``); ``swap`` maps shared variables to
        others of the same type to read and update instead; ``delete_updates`` drops the updates.

        >>> import exprc as ex
        >>> n = ex.shared(0, name="n")
        >>> tick = ex.function([], n, updates=[(n, n + 1)])
        >>> other = tick.copy()
        >>> tick(), other(), other(), n.get_value()
        (array(0), array(0), array(1), array(1))
        """
        recipe = getattr(self, "_recipe", None)
        if recipe is None:
            raise TypeError(f"{self!r} was not built by ex.function (it was unpickled); copy() cannot rebuild it")
        inputs, outputs, updates, options = recipe
        replace = {}
        for old, new in (swap or {}).items():
            if not isinstance(old, SharedVariable) or not isinstance(new, SharedVariable) or old.type != new.type:
                raise TypeError(f"copy(swap=...): {old} -> {new} must map a shared variable to one of the same type")
            replace[old] = new
        listed, single = (list(outputs), False) if isinstance(outputs, (list, tuple)) else ([outputs], True)
        pairs, new_values = ([], []) if delete_updates else _checked_updates(updates)
        if not share_memory:
            for var in graph_inputs([as_tensor(o) for o in listed] + new_values + pairs):
                if isinstance(var, SharedVariable) and var not in replace:
                    replace[var] = shared(var.get_value(), name=var.name, shape=var.type.shape, dtype=var.dtype)
        rebuilt = substitute([as_tensor(o) for o in listed] + new_values, replace) if replace else listed + new_values
        new_outputs = rebuilt[0] if single else rebuilt[: len(listed)]
        new_updates = [(replace.get(v, v), e) for v, e in zip(pairs, rebuilt[len(listed) :])]
        return function(inputs, new_outputs, updates=new_updates, name=name or self.name, **options)

    def _bind(self, args, kwargs):
        if len(args) > len(self.inputs):
            raise TypeError(
                f"function takes {len(self.inputs)} inputs ({self._input_names()}), "
                f"got {len(args)} positional arguments"
            )
        values = list(args) + [None] * (len(self.inputs) - len(args))
        given = [True] * len(args) + [False] * (len(self.inputs) - len(args))
        for key, value in kwargs.items():
            if key in self._shared_names:
                raise TypeError(f"function has several inputs named {key!r}; pass them by position")
            if key not in self._positions:
                raise TypeError(
                    f"function got an unexpected keyword argument {key!r}; inputs are named {list(self._positions)}"
                )
            i = self._positions[key]
            if given[i]:
                raise TypeError(f"function got input {key!r} twice, by position and by keyword")
            values[i], given[i] = value, True
        missing = [f"{_describe(v, i)}, {_expected(v)}" for i, v in enumerate(self.inputs) if not given[i]]
        if missing:
            raise TypeError(
                f"function is missing {'; '.join(missing)}: it takes {len(self.inputs)} inputs "
                f"({self._input_names()}), got {sum(given)}"
            )
        return values

    def _input_names(self):
        return ", ".join(v.name or to_infix(v) for v in self.inputs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the compiled graph: one value per input, in order or by name.

        Returns one array for a single output, else a list of arrays (device arrays
        for ``device="cuda"``).

        >>> import exprc as ex
        >>> x = ex.vector("x")
        >>> ex.function([x], [x + 1, x * 2], backend="numpy")(x=[1.0])
        [array([2.]), array([2.])]
        """
        if self._stateful:
            return self._call_with_state(args, kwargs)
        direct = self._direct
        if direct is not None and not kwargs:
            result = direct(args)  # arrays like those of an earlier checked call: straight into C
            if result is not None:
                return result
        return self._checked_call(args, kwargs)

    def _checked_call(self, args, kwargs):
        """A call without shared variables that the direct path did not take: the arguments
        are checked (and converted where they must be), then the program runs."""
        if kwargs or not self._all_exact(args):
            values = self._bind(args, kwargs)
            args = [
                convert_input(v, x, self.allow_input_downcast, i) for i, (v, x) in enumerate(zip(self.inputs, values))
            ]
        outputs = self._program.run(args)
        if self._single:
            (r,) = outputs
            return _owned(r, any(r is a for a in args))
        results, seen = [], {id(a) for a in args}
        for r in outputs:
            r = _owned(r, id(r) in seen)
            seen.add(id(r))
            results.append(r)
        return results

    def _call_with_state(self, args, kwargs):
        """A call that reads shared variables or writes updates: every output and every new
        value is computed from the values before the call, then the updates are written.

        The call holds the locks of those variables (taken in one global order, so two calls
        cannot deadlock) from reading their values until the updates are written: calls
        updating a variable are atomic with respect to each other, and a call that reads one
        never sees an update half written (an update may be computed in place, into the
        very array a reader would read)."""
        if kwargs or not self._all_exact(args):
            values = self._bind(args, kwargs)
            args = [
                convert_input(v, x, self.allow_input_downcast, i) for i, (v, x) in enumerate(zip(self.inputs, values))
            ]
        held = []
        try:
            for lock in self._locks:
                lock.acquire()
                held.append(lock)
            return self._run_with_state(args)
        finally:
            for lock in reversed(held):
                lock.release()

    def _run_with_state(self, args):
        arrays = list(args) + [v._value for v in self.implicit]
        if self._overwritten:
            self._check_aliases(arrays)
        results = self._direct(arrays) if self._direct is not None else None
        if results is None:
            results = self._program.run(arrays)
        # Nothing returned or stored may alias an argument, a shared value or another result:
        # a later in-place write to one would change the other. An update written in place
        # is its variable's own array already.
        n = len(self.outputs)
        seen, kept, owned = {id(a) for a in arrays}, set(), []
        for k, r in enumerate(results):
            written_in_place = k >= n and r is self.updates[k - n][0]._value and id(r) not in kept
            if not written_in_place:
                r = _owned(r, id(r) in seen)
            seen.add(id(r))
            kept.add(id(r))
            owned.append(r)
        for (var, _), value in zip(self.updates, owned[n:]):
            _check_update_value(var, value)
        for (var, _), value in zip(self.updates, owned[n:]):
            var._value = value
        return owned[0] if self._single else owned[:n]

    def _check_aliases(self, arrays):
        """Let no update be written in place over memory another of ``arrays`` reads (see
        :func:`_no_write_over_aliases`). Called with the variables' locks held."""
        n = len(self.inputs)
        apart = self._apart
        if len(apart) == len(arrays) - n:
            for k, ref in enumerate(apart):
                if ref() is not arrays[n + k]:
                    break
            else:
                # The shared values are those of the last call: only the arguments may alias them.
                _no_write_over_aliases(arrays, self._overwritten, range(n))
                return
        found = _no_write_over_aliases(arrays, self._overwritten, range(len(arrays)))
        # Weak references: the function must not keep a replaced value alive.
        self._apart = () if found else tuple(weakref.ref(a) for a in arrays[n:])

    def _all_exact(self, args):
        """Whether ``args`` are already exactly what the inputs take, so the call may skip
        :func:`convert_input` (the common case, and the one whose overhead counts)."""
        if len(args) != len(self._exact):
            return False
        for a, (dtype, ndim, static) in zip(args, self._exact):
            if type(a) is not np.ndarray or a.dtype is not dtype or a.ndim != ndim:
                return False
            for axis, length in static:
                if a.shape[axis] != length:
                    return False
        return True

    def _repr_html_(self):
        shown = ", ".join(str(v) for v in self.inputs)
        heading = f"exprc.Function{' ' + self.name if self.name else ''} ({shown}) -> {[str(o) for o in self.outputs]}"
        return html_view(self, heading, ", ".join(str(o.type) for o in self.outputs))

    def __repr__(self):
        shown = ", ".join(str(v) for v in self.inputs)
        return f"<exprc.Function{' ' + self.name if self.name else ''} ({shown}) -> {[str(o) for o in self.outputs]}>"


def _calling(method):
    """A subclass of :class:`Function` whose ``__call__`` is ``method``; it is still named
    Function, and pickles as one (see :meth:`Function.__reduce__`)."""
    namespace = {
        "__call__": method,
        "__slots__": (),
        "__doc__": Function.__doc__,
        "__module__": Function.__module__,
        "__qualname__": Function.__qualname__,
    }
    return type("Function", (Function,), namespace)


def _no_write_over_aliases(arrays, overwritten, others):
    """Make ``arrays[i]``, for ``i`` in ``overwritten`` (the arrays a program may compute an
    update into), a read-only view where it may share memory with ``arrays[j]`` for a ``j``
    in ``others``: the program then computes that update into a fresh array, as writing
    over memory another input reads would change what it reads. Returns whether any did.
    ``np.may_share_memory`` compares bounds only: cheap, and never misses."""
    found = False
    for i in overwritten:  # loops, not any(): this runs in every call of a training step
        target = arrays[i]
        for j in others:
            if j != i and may_share_memory(target, arrays[j]):
                view = target.view()
                view.flags.writeable = False
                arrays[i], found = view, True
                break
    return found


may_share_memory = np.may_share_memory


def _owned(array, shared=False):
    """A result the caller may keep and write: views of constants, broadcasts and inputs are
    copied, and so is an array that is ``shared`` (an input itself, or another output)."""
    if type(array) is not np.ndarray:
        array = np.asarray(array)
    if shared or array.base is not None or not array.flags.writeable:
        return array.copy()
    return array


def function(
    inputs: list[TensorVariable | In] | tuple[TensorVariable | In, ...],
    outputs: Outputs = (),
    backend: str | None = None,
    allow_input_downcast: bool = False,
    givens: Givens | None = None,
    name: str | None = None,
    rewrites: str | None = "fast",
    device: str | None = None,
    updates: Updates | None = None,
    mode: str | None = None,
    allow_tf32: bool = False,
    no_default_updates: bool = False,
) -> Function:
    """Compile a graph into a callable.

    ``inputs`` lists the input variables in call order (they may also be
    passed by name); ``outputs`` is a variable (the call returns one array)
    or a list of them (the call returns a list, possibly empty). ``givens``
    maps variables to expressions substituted before compiling.

    Shared variables (:func:`exprc.shared`) in the graph are read implicitly.
    ``updates`` lists ``(shared_variable, new_value)`` pairs: each call computes
    every output and every new value from the values before the call, then
    stores the new values. A new value must have its variable's dtype and
    lengths; one that cannot is refused here, when the function is built. ``backend`` is ``"c"`` (fused,
    vectorized, multithreaded C, compiled once and kept in the disk cache) or
    ``"numpy"`` (the reference back end, running each node with NumPy); None
    picks C when a C compiler is found (see :func:`default_backend`).

    Before it is compiled, the graph is simplified and stabilized
    (:func:`exprc.simplify`): ``rewrites="fast"`` applies every rule,
    ``"exact"`` only those that change no value, None none. ``f.rewrites``
    lists the rules that fired.

    ``device`` is ``"cpu"`` (the default) or ``"cuda"``: the graph runs on GPU 0, taking
    NumPy arrays, device arrays or any object with ``__cuda_array_interface__``, and
    returning :class:`exprc.cuda.DeviceArray` objects (see ``docs/gpu.md``). Where the
    CUDA driver, a GPU or NVRTC is missing, ``"cuda"`` raises
    :class:`exprc.cuda.CudaUnavailableError` saying which (see :mod:`exprc.cuda`).

    ``allow_tf32=True`` (with ``device="cuda"`` only) lets float32 matrix products run on
    the tensor cores as TF32: inputs rounded to 10 bits of mantissa, several times faster,
    not exact. By default float32 products are exact float32 arithmetic.

    A shared variable with a default update (a random stream's state: one call more) that
    the graph reads is updated by every call unless ``updates`` names it, or unless
    ``no_default_updates=True`` (then every call draws the same numbers).

    An input given as ``ex.In(x, value=v, name=k)`` may be left out of a call (it is then
    ``v``) or passed by the keyword ``k``.

    ``mode="check"`` runs the compiled program and the NumPy reference side by side on
    every call and raises :class:`exprc.CheckError` at the first node whose values differ;
    ``mode="nanguard"`` raises :class:`exprc.NanGuardError` at the first node that creates
    a NaN or an infinity (see :mod:`exprc.check`).

    Calls check each argument: its dtype (a lossy conversion such as float64
    data for a float32 input is a TypeError unless ``allow_input_downcast``),
    its number of dimensions and its static lengths.

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> f = ex.function([x], ex.exp(x).sum())
    >>> f([0.0, 0.0])
    array(2.)
    >>> count = ex.shared(0, name="count")
    >>> tick = ex.function([], count, updates=[(count, count + 1)])
    >>> tick(), tick(), count.get_value()
    (array(0), array(1), array(2))
    """
    plain, defaults, keywords = split_inputs(inputs)
    options = dict(
        backend=backend,
        allow_input_downcast=allow_input_downcast,
        givens=givens,
        rewrites=rewrites,
        device=device,
        mode=mode,
        allow_tf32=allow_tf32,
    )
    pairs = list(zip(*_checked_updates(updates)))
    if not no_default_updates:
        roots = [as_tensor(o) for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]
        pairs = default_updates(roots, pairs)
    built = _build(plain, outputs, name=name, updates=pairs, **options)
    built._recipe = (inputs, outputs, updates, dict(options, no_default_updates=no_default_updates))
    if defaults or keywords:
        _take_defaults(built, defaults, keywords)
    return built


def _build(inputs, outputs, backend, allow_input_downcast, givens, name, rewrites, device, updates, mode, allow_tf32):
    if device not in (None, "cpu", *backends.DEVICES):
        raise ValueError(f"device {device!r} is not known; expected one of {('cpu', *backends.DEVICES)}")
    if device in backends.DEVICES:
        if backend is not None:
            raise ValueError(
                f"backend={backend!r} picks a CPU back end; device={device!r} compiles for the device "
                "(leave backend out)"
            )
        backends.require(backends.DEVICES[device])
        device_function = backends.entry_point(backends.DEVICES[device].program)
        if mode is not None:
            raise NotImplementedError(f"mode={mode!r} checks the C back end; it does not run on device={device!r} yet")
        return device_function(
            inputs,
            outputs,
            allow_input_downcast=allow_input_downcast,
            givens=givens,
            name=name,
            rewrites=check_mode(rewrites),
            updates=updates,
            allow_tf32=allow_tf32,
        )
    if allow_tf32:
        raise ValueError("allow_tf32=True is for device='cuda' (TF32 is a GPU tensor-core format)")
    backend = backend or default_backend()
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} is not known; expected one of {BACKENDS}")
    return Function(
        inputs,
        outputs,
        backend,
        allow_input_downcast,
        givens,
        name,
        check_mode(rewrites),
        updates,
        check.check_mode(mode),
    )


#: Function class -> its subclass whose calls fill in the defaults of ex.In inputs.
_WITH_DEFAULTS: dict[type, type] = {}


def _take_defaults(fn: Function, defaults: dict[int, Any], keywords: dict[str, int]) -> None:
    """Let calls of ``fn`` leave out inputs with defaults and name inputs by their In names."""
    fn._defaults = {i: convert_input(fn.inputs[i], value, fn.allow_input_downcast, i) for i, value in defaults.items()}
    fn._keywords = keywords
    base = type(fn)
    if base not in _WITH_DEFAULTS:

        def __call__(self, *args, **kwargs):
            if len(args) < len(self.inputs) or kwargs:
                args, kwargs = _filled(self, args, kwargs)
            return base.__call__(self, *args, **kwargs)

        _WITH_DEFAULTS[base] = type(base.__name__, (base,), {"__call__": __call__, "__doc__": base.__doc__})
    fn.__class__ = _WITH_DEFAULTS[base]


def _filled(fn: Function, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """The arguments with each left-out input taken from its keyword or its default."""
    kwargs, values, missing = dict(kwargs), list(args), []
    for key, i in fn._keywords.items():
        if key in kwargs and i < len(values):
            raise TypeError(f"function got input {key!r} twice, by position and by keyword")
    for i in range(len(values), len(fn.inputs)):
        by_in_name = [k for k, j in fn._keywords.items() if j == i and k in kwargs]
        own = fn.inputs[i].name
        if by_in_name:
            values.append(kwargs.pop(by_in_name[0]))
        elif own in kwargs and own in fn._positions:
            values.append(kwargs.pop(own))
        elif i in fn._defaults:
            values.append(fn._defaults[i])
        else:
            missing.append(f"{_describe(fn.inputs[i], i)}, {_expected(fn.inputs[i])}")
    if missing:
        raise TypeError(f"function is missing {'; '.join(missing)}: it takes {len(fn.inputs)} inputs")
    return tuple(values), kwargs


def evaluate(outputs: Outputs, inputs: dict[TensorVariable, Any]) -> Any:
    """Compute ``outputs`` (a variable or a list) given ``inputs``, a dict from variables to values.

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> evaluate(x + 1, {x: [1.0]})
    array([2.])
    """
    if not isinstance(inputs, dict):
        raise TypeError(f"eval expects a dict from input variables to values, got {type(inputs).__name__}")
    for key in inputs:
        if not isinstance(key, Variable):
            raise TypeError(f"eval: the keys must be input variables, got {key!r}")
    # The oracle computes the graph as written: no rewrite.
    return function(list(inputs), outputs, backend="numpy", rewrites=None)(*inputs.values())


# x.eval() runs the reference through here (see exprc.tensor.OPERATIONS).
OPERATIONS.evaluate = evaluate
