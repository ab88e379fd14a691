"""Rewritten graphs as bytes that read back without running code: a flat JSON form.

:func:`dumps` writes the graph computing some outputs, with its leaves by position, and
the rewrites that fired; :func:`loads` rebuilds it through :func:`~exprc.graph.apply`
over the leaves of the process that reads it. Ops are named by their entry in
:data:`OPS`, one registration per op type with a codec for each parameter; a file is
checked entry by entry and anything else (an unknown op, a wrong type, a constant
whose bytes do not fill its shape, a truncated file) raises :class:`GraphFormatError`.
See docs/internals/rewrite-engine.md.

>>> import exprc as ex
>>> x = ex.vector("x")
>>> data = dumps([ex.exp(x).sum() * 2.0], [x])
>>> outputs, fired = loads(data, [x])
>>> outputs[0] is ex.exp(x).sum() * 2.0
True
"""

from __future__ import annotations

import base64
import dataclasses
import json
import struct
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np

from .dtypes import SUPPORTED
from .grad import Rows
from .graph import Apply, Constant, Op, Variable, apply
from .ops import conv as _conv
from .ops import pool as _pool
from .ops.construct import ARange
from .ops.cumulative import CumMax, CumMin, CumProd, CumSum
from .ops.decompositions import QR, SVD, Cholesky, Det, Eigh, Inv, Lstsq, SlogDet, Solve, SolveTriangular, Triangle
from .ops.elemwise import Elemwise
from .ops.indexing import DYNAMIC, AdvancedIncSubtensor, AdvancedSubtensor, IncSubtensor, Subtensor
from .ops.linalg import MatMul, TensorDot
from .ops.loops import IfElse, Scan
from .ops.markers import StopGradient
from .ops.ordering import ArgSort, SearchSorted, Sort
from .ops.random import DRAWS, RandomDraw
from .ops.rearrange import SpecifyShape
from .ops.reduction import All, ArgMax, ArgMin, Max, Min, Prod, Sum
from .ops.reduction import Any as AnyReduce
from .ops.scalar import ScalarOp, scalar_op
from .ops.shape import BroadcastTo, Concatenate, DimShuffle, Reshape, ShapeI, SumToShape
from .rewrite.report import Fired
from .tensor import TensorType, TensorVariable, constant

#: Names this layout; a file naming another is refused.
FORMAT = "exprc-graph-1"

#: Bounds on what a file may ask the reader to build.
MAX_BYTES = 1 << 30
MAX_ENTRIES = 1_000_000
MAX_NDIM = 64

_DTYPES = frozenset(SUPPORTED)


class GraphFormatError(ValueError):
    """A graph file that is malformed, truncated, of the wrong types or names an op this
    version does not know; or a graph that this format cannot describe."""


def _fail(message: str) -> GraphFormatError:
    return GraphFormatError(f"graph file: {message}")


# --- parameter codecs -------------------------------------------------------------


class Field(NamedTuple):
    """How one parameter of an op is written and read back.

    ``encode(value, position)`` gives a JSON value (``position`` maps a variable to its
    place in the file); ``decode(json value, values)`` checks it and gives the parameter
    (``values`` are the variables read so far); ``refs(value)`` lists the variables the
    parameter holds, which the file must place before the node.
    """

    encode: Callable[[Any, Callable[[Variable], int]], Any]
    decode: Callable[[Any, list], Any]
    refs: Callable[[Any], Iterable[Variable]] = lambda value: ()
    #: Whether the variables it holds may be leaves of their own (a loop index).
    binds: bool = False


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise _fail(f"{what} must be an int, got {value!r}")
    return int(value)


def _decoded_int(value: Any, what: str) -> int:
    if type(value) is not int:
        raise _fail(f"{what} must be an int, got {type(value).__name__}")
    return value


def _decoded_list(value: Any, what: str, limit: int | None = None) -> list:
    if type(value) is not list:
        raise _fail(f"{what} must be a list, got {type(value).__name__}")
    limit = MAX_ENTRIES if limit is None else limit
    if len(value) > limit:
        raise _fail(f"{what} has {len(value)} items, more than the {limit} allowed")
    return value


def _bool_field() -> Field:
    def encode(v, position):
        if not isinstance(v, (bool, np.bool_)):
            raise _fail(f"expected a bool, got {v!r}")
        return bool(v)

    def decode(v, values):
        if type(v) is not bool:
            raise _fail(f"expected a bool, got {type(v).__name__}")
        return v

    return Field(encode, decode)


def _int_field(optional: bool = False) -> Field:
    def encode(v, position):
        return None if optional and v is None else _int(v, "a parameter")

    def decode(v, values):
        return None if optional and v is None else _decoded_int(v, "a parameter")

    return Field(encode, decode)


def _ints_field() -> Field:
    def encode(v, position):
        return [_int(a, "an axis") for a in v]

    def decode(v, values):
        return tuple(_decoded_int(a, "an axis") for a in _decoded_list(v, "axes", MAX_NDIM))

    return Field(encode, decode)


def _optional_float_field() -> Field:
    def encode(v, position):
        # Only a Python float keeps the op's repr, which cache keys are made from.
        if v is not None and type(v) is not float:
            raise _fail(f"expected a float or None, got {v!r}")
        return v

    def decode(v, values):
        if v is not None and type(v) is not float:
            raise _fail(f"expected a float or None, got {type(v).__name__}")
        return v

    return Field(encode, decode)


def _optional_dtype_field() -> Field:
    def encode(v, position):
        if v is not None and v not in _DTYPES:
            raise _fail(f"expected a dtype name or None, got {v!r}")
        return v

    def decode(v, values):
        if v is not None and (type(v) is not str or v not in _DTYPES):
            raise _fail(f"expected a dtype name or None, got {v!r}")
        return v

    return Field(encode, decode)


def _axis_order_field() -> Field:
    """DimShuffle's ``new_order``: input axes and ``"x"`` for a new axis."""

    def encode(v, position):
        return ["x" if a == "x" else _int(a, "an axis") for a in v]

    def decode(v, values):
        return tuple(a if a == "x" else _decoded_int(a, "an axis") for a in _decoded_list(v, "an axis order", MAX_NDIM))

    return Field(encode, decode)


def _index_part(v: Any, may_be_none: bool) -> Any:
    if v == DYNAMIC or (v is None and may_be_none):
        return v
    return _decoded_int(v, "an index")


_PATTERN_ARITY = {"int": 2, "slice": 4, "array": 1}


def _pattern_field() -> Field:
    """An indexing pattern (see :mod:`exprc.ops.indexing`)."""

    def encode(v, position):
        out = []
        for entry in v:
            if entry[0] not in _PATTERN_ARITY or len(entry) != _PATTERN_ARITY[entry[0]]:
                raise _fail(f"cannot describe the index entry {entry!r}")
            out.append([entry[0], *(p if p is None or p == DYNAMIC else _int(p, "an index") for p in entry[1:])])
        return out

    def decode(v, values):
        pattern = []
        for entry in _decoded_list(v, "an index pattern", MAX_NDIM):
            entry = _decoded_list(entry, "an index entry", 4)
            if not entry or entry[0] not in _PATTERN_ARITY or len(entry) != _PATTERN_ARITY[entry[0]]:
                raise _fail(f"{entry!r} is not an index entry")
            pattern.append((entry[0], *(_index_part(p, entry[0] == "slice") for p in entry[1:])))
        return tuple(pattern)

    return Field(encode, decode)


def _scalar_op_field() -> Field:
    def encode(v, position):
        if not isinstance(v, ScalarOp):
            raise _fail(f"expected a scalar op, got {v!r}")
        return v.name

    def decode(v, values):
        if type(v) is not str:
            raise _fail(f"a scalar op must be named by a string, got {type(v).__name__}")
        try:
            return scalar_op(v)  # a table lookup; an astype_ name checks its dtype
        except (KeyError, TypeError) as err:
            raise _fail(f"no scalar op is called {v!r}") from err

    return Field(encode, decode)


def _variable(v: Any, values: list) -> Variable:
    if type(v) is not int or not 0 <= v < len(values):
        raise _fail(f"{v!r} is not the position of an earlier entry")
    return values[v]


def _variable_field(binds: bool = False) -> Field:
    """A variable an op holds (the loop index and output of :class:`~exprc.grad.Rows`)."""
    return Field(lambda v, position: position(v), _variable, lambda v: (v,), binds)


def _variables_field() -> Field:
    def decode(v, values):
        return tuple(_variable(i, values) for i in _decoded_list(v, "variables"))

    return Field(lambda v, position: [position(x) for x in v], decode, tuple)


def _choice_field(choices: Sequence[str]) -> Field:
    """One of a few names (a pooling mode)."""

    def encode(v, position):
        if v not in choices:
            raise _fail(f"expected one of {list(choices)}, got {v!r}")
        return v

    def decode(v, values):
        if type(v) is not str or v not in choices:
            raise _fail(f"expected one of {list(choices)}, got {v!r}")
        return v

    return Field(encode, decode)


def _choice_field(choices: tuple[str, ...]) -> Field:
    """A parameter that is one of a few strings (``searchsorted``'s side)."""

    def encode(v, position):
        if v not in choices:
            raise _fail(f"expected one of {choices}, got {v!r}")
        return v

    def decode(v, values):
        if type(v) is not str or v not in choices:
            raise _fail(f"expected one of {choices}, got {v!r:.100}")
        return v

    return Field(encode, decode)


BOOL, INT, OPTIONAL_INT, INTS = _bool_field(), _int_field(), _int_field(optional=True), _ints_field()
OPTIONAL_FLOAT, OPTIONAL_DTYPE = _optional_float_field(), _optional_dtype_field()
AXIS_ORDER, PATTERN, SCALAR_OP = _axis_order_field(), _pattern_field(), _scalar_op_field()
VARIABLE, BOUND_VARIABLE, VARIABLES = _variable_field(), _variable_field(binds=True), _variables_field()
SIDE = _choice_field(("left", "right"))


def _name_field() -> Field:
    """A name shown in messages (a loop's)."""

    def encode(v, position):
        if not isinstance(v, str):
            raise _fail(f"expected a string, got {v!r}")
        return v

    def decode(v, values):
        if type(v) is not str or len(v) > 1000:
            raise _fail(f"expected a string of at most 1000 characters, got {v!r:.100}")
        return v

    return Field(encode, decode)


def _int_lists_field() -> Field:
    """A tuple of tuples of ints (a loop's taps, one tuple per sequence or output)."""

    def encode(v, position):
        return [[_int(i, "a tap") for i in group] for group in v]

    def decode(v, values):
        return tuple(
            tuple(_decoded_int(i, "a tap") for i in _decoded_list(g, "taps", MAX_NDIM))
            for g in _decoded_list(v, "taps")
        )

    return Field(encode, decode)


def _bools_field() -> Field:
    def encode(v, position):
        return [_bool_field().encode(b, position) for b in v]

    def decode(v, values):
        return tuple(_bool_field().decode(b, values) for b in _decoded_list(v, "flags"))

    return Field(encode, decode)


def _bound_variables_field() -> Field:
    """Variables an op binds (the placeholders of a loop's or ifelse's body)."""
    plain = _variables_field()
    return Field(plain.encode, plain.decode, tuple, binds=True)


NAME, INT_LISTS, BOOLS, BOUND_VARIABLES = _name_field(), _int_lists_field(), _bools_field(), _bound_variables_field()


# --- the registry of ops ----------------------------------------------------------


class OpFormat(NamedTuple):
    """How one op type is written: its name in files and a codec for each parameter."""

    name: str
    cls: type
    fields: tuple[tuple[str, Field], ...]
    #: ``check(op, inputs)``: what is wrong with the parameters for these inputs, or None.
    check: Callable[[Any, list], str | None] | None = None


#: Every op type a file may name, by that name: the only ops :func:`loads` builds.
OPS: dict[str, OpFormat] = {}
_BY_CLASS: dict[type, OpFormat] = {}


def register(cls: type, check: Callable[[Any, list], str | None] | None = None, **fields: Field) -> None:
    """Let files hold ops of type ``cls``, whose parameters are ``fields`` (a codec for each
    of its dataclass fields, in any order), under the class's name. ``check(op, inputs)``
    says what is wrong with parameters that ``make_node`` accepts but the back ends cannot
    run (an axis out of range), or None."""
    name = cls.__name__
    if name in OPS:
        raise ValueError(f"register: an op type is already registered as {name!r}")
    if not dataclasses.is_dataclass(cls) or not all(f.init and not f.kw_only for f in dataclasses.fields(cls)):
        raise ValueError(f"register {name}: an op type is a dataclass whose fields its constructor takes in order")
    declared = [f.name for f in dataclasses.fields(cls)]
    if sorted(declared) != sorted(fields):
        raise ValueError(f"register {name}: give a codec for each of its fields {declared}, got {sorted(fields)}")
    entry = OpFormat(name, cls, tuple((f, fields[f]) for f in declared), check)
    OPS[name] = _BY_CLASS[cls] = entry


# The public functions check these parameters against the inputs before making an op;
# make_node does not always, so a file's are checked here.


def _axes_problem(axes: Sequence[int], ndim: int) -> str | None:
    distinct = sorted(set(axes))
    if list(axes) != distinct or (distinct and (distinct[0] < 0 or distinct[-1] >= ndim)):
        return f"axes {list(axes)} are not distinct, sorted axes of a {ndim}-d input"
    return None


def _check_reduce(op: Any, inputs: list) -> str | None:
    return _axes_problem(op.axis, inputs[0].ndim)


def _check_arg_reduce(op: Any, inputs: list) -> str | None:
    return None if op.axis is None else _axes_problem((op.axis,), inputs[0].ndim)


def _check_concatenate(op: Any, inputs: list) -> str | None:
    return _axes_problem((op.axis,), inputs[0].ndim) if inputs else "no inputs"


def _check_tensordot(op: Any, inputs: list) -> str | None:
    a, b = inputs
    if len(op.axes_a) != len(op.axes_b):
        return "axes_a and axes_b differ in length"
    return _axes_problem(sorted(op.axes_a), a.ndim) or _axes_problem(sorted(op.axes_b), b.ndim)


def _pattern_problem(pattern: tuple, x: Variable, extra: int, advanced: bool) -> str | None:
    kinds = [entry[0] for entry in pattern]
    parts = [p for entry in pattern for p in entry[1:]]
    if len(pattern) > x.ndim:
        return f"{len(pattern)} indexed axes of a {x.ndim}-d input"
    if advanced and ("int" in kinds or DYNAMIC in parts or kinds.count("array") != extra or not extra):
        return "an integer-array index holds one array per 'array' entry, static slices, nothing else"
    if not advanced and ("array" in kinds or parts.count(DYNAMIC) != extra):
        return "a basic index takes one input per dynamic part, and no arrays"
    return None


def _check_read(op: Any, inputs: list) -> str | None:
    return _pattern_problem(op.pattern, inputs[0], len(inputs) - 1, isinstance(op, AdvancedSubtensor))


def _check_write(op: Any, inputs: list) -> str | None:
    return _pattern_problem(op.pattern, inputs[0], len(inputs) - 2, isinstance(op, AdvancedIncSubtensor))


def _check_rows(op: Any, inputs: list) -> str | None:
    return None if len(op.loop_inputs) == len(inputs) - 1 else "one input per loop input, after the length"


register(Elemwise, scalar_op=SCALAR_OP)
register(ShapeI, axis=INT)
register(DimShuffle, new_order=AXIS_ORDER)
register(Reshape)
register(BroadcastTo)
register(SumToShape, _check_reduce, axis=INTS)
register(Concatenate, _check_concatenate, axis=INT)
for _reduce in (Sum, Prod, All, AnyReduce):
    register(_reduce, _check_reduce, axis=INTS, keepdims=BOOL, dtype=OPTIONAL_DTYPE)
for _reduce in (Max, Min):
    register(_reduce, _check_reduce, axis=INTS, keepdims=BOOL, dtype=OPTIONAL_DTYPE, initial=OPTIONAL_FLOAT)
for _reduce in (ArgMax, ArgMin):
    register(_reduce, _check_arg_reduce, axis=OPTIONAL_INT, keepdims=BOOL)
register(Subtensor, _check_read, pattern=PATTERN)
register(AdvancedSubtensor, _check_read, pattern=PATTERN)
register(IncSubtensor, _check_write, pattern=PATTERN, set_instead_of_inc=BOOL)
register(AdvancedIncSubtensor, _check_write, pattern=PATTERN, set_instead_of_inc=BOOL)
register(StopGradient)
register(MatMul)
for _op in (_conv.Conv, _conv.ConvGradInput, _conv.ConvGradFilters):
    register(_op, _conv.params_problem, pad=INTS, stride=INTS, dilation=INTS, groups=INT)
for _op in (_pool.Pool, _pool.MaxPoolGrad, _pool.MaxPoolGradGrad, _pool.AveragePoolGrad):
    register(
        _op, _pool.params_problem, ws=INTS, stride=INTS, pad=INTS, ignore_border=BOOL, mode=_choice_field(_pool.MODES)
    )
register(TensorDot, _check_tensordot, axes_a=INTS, axes_b=INTS)
register(Rows, _check_rows, index=BOUND_VARIABLE, loop_inputs=VARIABLES, output=VARIABLE)
register(ARange, lambda op, inputs: None if op.dtype is not None else "arange needs a dtype", dtype=OPTIONAL_DTYPE)
register(SpecifyShape, lambda op, inputs: None if len(inputs) == inputs[0].ndim + 1 else "one length per axis")
register(Sort, _check_arg_reduce, axis=INT)
register(ArgSort, _check_arg_reduce, axis=INT)
register(SearchSorted, side=SIDE)
register(
    RandomDraw,
    lambda op, inputs: None if op.nlen < len(inputs) else "a draw's lengths are its inputs",
    dist=_choice_field(DRAWS),
    draw=INT,
    dtype=OPTIONAL_DTYPE,
    nlen=INT,
    replace=BOOL,
)
for _cumulative in (CumSum, CumProd, CumMax, CumMin):
    register(_cumulative, _check_arg_reduce, axis=INT)


def _check_scan(op: Any, inputs: list) -> str | None:
    if any(t >= 0 for taps in op.out_taps for t in taps) or any(o < 0 for g in op.seq_offsets for o in g):
        return "an output's taps must be negative and a sequence's offsets non-negative"
    if any(not g for g in (*op.out_taps, *op.seq_offsets)) or len(op.keep_last) != len(op.out_taps):
        return "every sequence and output needs a tap, and every output a keep_last flag"
    slots = sum(len(g) for g in (*op.out_taps, *op.seq_offsets))
    if len(op.inner_inputs) < slots or len(op.inner_outputs) != len(op.out_taps) + op.n_plain + op.until:
        return "the body's inputs and outputs do not match the taps and outputs"
    return None


register(
    Scan,
    _check_scan,
    name=NAME,
    inner_inputs=BOUND_VARIABLES,
    inner_outputs=VARIABLES,
    seq_offsets=INT_LISTS,
    out_taps=INT_LISTS,
    keep_last=BOOLS,
    n_plain=INT,
    go_backwards=BOOL,
    truncate_gradient=INT,
    until=BOOL,
    bounded=BOOL,
)
register(IfElse, name=NAME, inner_inputs=BOUND_VARIABLES, then_outputs=VARIABLES, else_outputs=VARIABLES)
for _linalg in (Solve, Inv, Det, SlogDet):
    register(_linalg)
register(SolveTriangular, lower=BOOL, unit_diagonal=BOOL)
register(Cholesky, upper=BOOL)
register(Eigh, lower=BOOL)
register(SVD, full_matrices=BOOL, compute_uv=BOOL)
register(QR, complete=BOOL, compute_q=BOOL)
register(Lstsq, rcond=OPTIONAL_FLOAT)
register(Triangle, k=INT, lower=BOOL)


def _format_of(op: Op) -> OpFormat:
    found = _BY_CLASS.get(type(op))
    if found is None:
        raise _fail(f"cannot describe the op {op}: {type(op).__qualname__} is not registered in exprc.graph_format")
    return found


# --- writing ----------------------------------------------------------------------


def _type_spec(t: TensorType) -> list:
    return [t.dtype, list(t.shape), t.weak]


def _dependencies(item: Any, bound: set) -> Sequence[Any]:
    """What ``item`` (a variable or an Apply node) needs placed before it."""
    if isinstance(item, Variable):
        return () if item.owner is None else (item.owner,)
    held = []
    for name, codec in _format_of(item.op).fields:
        refs = tuple(codec.refs(getattr(item.op, name)))
        if codec.binds:
            bound.update(refs)
        held.extend(refs)
    return (*item.inputs, *held)


def _in_order(outputs: Sequence[Variable], bound: set) -> list:
    """Leaves, nodes and variables, each after what it depends on (iterative: graphs can be
    deeper than Python's recursion limit)."""
    order, seen = [], set()
    for root in outputs:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(_dependencies(root, bound)))]
        while stack:
            item, pending = stack[-1]
            for dep in pending:
                if dep not in seen:
                    seen.add(dep)
                    stack.append((dep, iter(_dependencies(dep, bound))))
                    break
            else:
                stack.pop()
                order.append(item)
    return order


def _constant_entry(const: Constant) -> list:
    value = np.asarray(const.value)
    if value.dtype.name not in _DTYPES:
        raise _fail(f"cannot describe the constant {const}: dtype {value.dtype}")
    data = np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("<")).tobytes()
    spec = _type_spec(const.type)
    return ["const", *spec, const.name, base64.b64encode(data).decode("ascii")]


def dumps(outputs: Sequence[Variable], leaves: Sequence[Variable], fired: Iterable[Fired] = ()) -> bytes:
    """The graph computing ``outputs`` as bytes for :func:`loads`, each of ``leaves`` by its
    position, with the rewrites ``fired``. Raises :class:`GraphFormatError` when the graph
    holds an op that is not registered, or a leaf other than a constant that is not
    among ``leaves``.

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> dumps([x + 1], [x])[:32]
    b'{"format":"exprc-graph-1","leave'
    """
    leaf_position = {v: i for i, v in enumerate(leaves)}
    bound: set = set()
    position: dict[Variable, int] = {}
    ops: list = []
    op_ids: dict[Op, int] = {}  # equal ops written once
    nodes: list = []

    def place(var: Variable) -> int:
        return position[var]

    for item in _in_order(list(outputs), bound):
        if isinstance(item, Apply):
            op = item.op
            kind = _format_of(op)
            # What the reader would refuse is not written: the entry would be a miss for good.
            problem = kind.check(op, list(item.inputs)) if kind.check is not None else None
            if problem is not None:
                raise _fail(f"cannot describe {op} on its inputs: {problem}")
            op_id = op_ids.get(op)
            if op_id is None:
                params = [codec.encode(getattr(op, name), place) for name, codec in kind.fields]
                op_id = op_ids[op] = len(ops)
                ops.append([kind.name, params])
            nodes.append(["apply", op_id, [position[v] for v in item.inputs], len(item.outputs)])
            for var in item.outputs:
                position[var] = len(position)
            continue
        if item.owner is not None:
            continue  # placed with its node
        if item in leaf_position:
            nodes.append(["leaf", leaf_position[item]])
        elif isinstance(item, Constant):
            nodes.append(_constant_entry(item))
        elif item in bound:
            nodes.append(["var", *_type_spec(item.type), item.name])
        else:
            raise _fail(f"the leaf {item} is not among the leaves given, and is not a constant")
        position[item] = len(position)
    document = {
        "format": FORMAT,
        "leaves": [_type_spec(v.type) for v in leaves],
        "ops": ops,
        "nodes": nodes,
        "outputs": [position[v] for v in outputs],
        "fired": [[f.rule, f.before, f.after] for f in fired],
    }
    return json.dumps(document, separators=(",", ":")).encode()


# --- reading ----------------------------------------------------------------------


_KEYS = frozenset(("format", "leaves", "ops", "nodes", "outputs", "fired"))


def _checked_type(dtype: Any, shape: Any, weak: Any) -> TensorType:
    if type(dtype) is not str or dtype not in _DTYPES:
        raise _fail(f"{dtype!r:.100} is not a supported dtype")
    if type(shape) is not list or len(shape) > MAX_NDIM:
        raise _fail(f"{shape!r:.100} is not a shape of at most {MAX_NDIM} axes")
    for d in shape:
        if d is not None and (type(d) is not int or d < 0):
            raise _fail(f"{shape!r:.100} is not a static shape")
    if type(weak) is not bool or (weak and shape):
        raise _fail(f"weak must be a bool, and only for 0-d types; got {weak!r:.100}")
    return TensorType(dtype, tuple(shape), weak)


def _name(v: Any) -> str | None:
    if v is not None and type(v) is not str:
        raise _fail(f"a name must be a string or null, got {type(v).__name__}")
    return v


#: How the bytes of a weak constant (a Python scalar) read back, without making an array.
_WEAK_SCALARS = {"float64": "<d", "int64": "<q", "uint64": "<Q", "bool": "<?"}


_ITEMSIZES = {dtype: np.dtype(dtype).itemsize for dtype in SUPPORTED}


def _read_constant(entry: list) -> Constant:
    _, dtype, shape, weak, name, text = entry
    # Checked field by field rather than through a TensorType: most graphs hold a few
    # weak scalars, read on the warm path.
    if type(dtype) is not str or dtype not in _DTYPES:
        raise _fail(f"{dtype!r:.100} is not a supported dtype")
    if type(shape) is not list or len(shape) > MAX_NDIM or not all(type(d) is int and d >= 0 for d in shape):
        raise _fail(f"a constant's shape must be known lengths, got {shape!r:.100}")
    if type(weak) is not bool or (weak and shape):
        raise _fail(f"weak must be a bool, and only for 0-d types; got {weak!r:.100}")
    nbytes = _ITEMSIZES[dtype]
    for d in shape:
        nbytes *= d
    if type(text) is not str or nbytes > MAX_BYTES or len(text) != 4 * ((nbytes + 2) // 3):
        raise _fail(f"the data of a {dtype} constant of shape {shape} must be {nbytes} bytes in base64")
    data = base64.b64decode(text, validate=True)
    if len(data) != nbytes:
        raise _fail(f"the data of a {dtype} constant of shape {shape} must be {nbytes} bytes, got {len(data)}")
    if dtype == "bool" and data.translate(None, b"\x00\x01"):
        raise _fail("a bool constant holds bytes other than 0 and 1")
    if weak:
        if dtype not in _WEAK_SCALARS:
            raise _fail(f"a weak constant is bool, int64, uint64 or float64, not {dtype}")
        const = constant(struct.unpack(_WEAK_SCALARS[dtype], data)[0], name=_name(name))
    else:
        array = np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape)
        const = constant(array.astype(dtype), dtype=dtype, name=_name(name))
    t = const.type
    if t.dtype != dtype or t.weak is not weak or list(t.shape) != shape:
        raise _fail(f"a constant written as {dtype} {shape} weak={weak} came back as {t}")
    return const


def _read_op(spec: Any, values: list) -> tuple[Op, Any]:
    if type(spec) is not list or len(spec) != 2 or type(spec[0]) is not str:
        raise _fail(f"an op is [name, parameters], got {spec!r:.100}")
    kind = OPS.get(spec[0])
    if kind is None:
        raise _fail(f"no op is registered as {spec[0]!r:.100}")
    params = spec[1]
    if type(params) is not list or len(params) != len(kind.fields):
        raise _fail(f"{kind.name} takes a list of {len(kind.fields)} parameters, got {params!r:.100}")
    # Positional, in the order of the dataclass's fields, which is the order they are written in.
    return kind.cls(*[codec.decode(v, values) for (_, codec), v in zip(kind.fields, params)]), kind.check


def _read(data: bytes, leaves: Sequence[Variable]) -> tuple[list[Variable], list[Fired]]:
    if not isinstance(data, (bytes, bytearray)):
        raise _fail(f"expected bytes, got {type(data).__name__}")
    if len(data) > MAX_BYTES:
        raise _fail(f"{len(data)} bytes, more than the {MAX_BYTES} allowed")
    document = json.loads(data)
    if type(document) is not dict or set(document) != _KEYS:
        raise _fail(f"expected an object with the keys {sorted(_KEYS)}")
    if document["format"] != FORMAT:
        raise _fail(f"format {document['format']!r:.100}, expected {FORMAT!r}")
    specs = _decoded_list(document["leaves"], "leaves")
    if len(specs) != len(leaves):
        raise _fail(f"written over {len(specs)} leaves, read over {len(leaves)}")
    for i, (spec, leaf) in enumerate(zip(specs, leaves)):
        if spec != _type_spec(leaf.type):
            raise _fail(f"leaf {i} was written as {spec!r:.100}, and {leaf} is {leaf.type}")
    op_specs = _decoded_list(document["ops"], "ops")
    ops: list[tuple[Op, Any] | None] = [None] * len(op_specs)
    values: list[Variable] = []
    free: set = set()  # loop indices, and what depends on them: never an output
    for k, entry in enumerate(_decoded_list(document["nodes"], "nodes")):
        tag = entry[0] if type(entry) is list and entry else None
        if tag == "apply" and len(entry) == 4:
            _, op_id, refs, count = entry
            if type(op_id) is not int or not 0 <= op_id < len(ops):
                raise _fail(f"node {k}: there is no op {op_id!r:.100}")
            found = ops[op_id]
            if found is None:
                found = ops[op_id] = _read_op(op_specs[op_id], values)
            op, check = found
            if type(refs) is not list:
                raise _fail(f"node {k}: the inputs must be a list of positions")
            n = len(values)
            inputs = [values[i] if type(i) is int and 0 <= i < n else _variable(i, values) for i in refs]
            node = problem = None
            try:
                if check is not None:
                    problem = check(op, inputs)
                if problem is None:
                    node = apply(op, inputs)
            except Exception as err:  # noqa: BLE001 - the op's own check of its inputs
                problem = f"{type(err).__name__}: {err}"
            if node is None:
                raise _fail(f"node {k}: {op} does not apply to its inputs: {problem}")
            if len(node.outputs) != count:
                raise _fail(f"node {k}: {op} has {len(node.outputs)} outputs, the file says {count!r:.100}")
            if free and any(v in free for v in inputs):
                free.update(node.outputs)
            values.extend(node.outputs)
        elif tag == "leaf" and len(entry) == 2:
            i = entry[1]
            if type(i) is not int or not 0 <= i < len(leaves):
                raise _fail(f"node {k}: there is no leaf {i!r:.100}")
            values.append(leaves[i])
        elif tag == "const" and len(entry) == 6:
            values.append(_read_constant(entry))
        elif tag == "var" and len(entry) == 5:
            var = TensorVariable(_checked_type(*entry[1:4]), name=_name(entry[4]))
            free.add(var)
            values.append(var)
        else:
            raise _fail(
                f"node {k}: {entry!r:.100} is none of ['apply', op, inputs, number of outputs], "
                "['leaf', position], ['const', dtype, shape, weak, name, data], ['var', dtype, shape, weak, name]"
            )
    outputs = [_variable(i, values) for i in _decoded_list(document["outputs"], "outputs")]
    if any(v in free for v in outputs):
        raise _fail("an output depends on a loop index outside its loop")
    fired = []
    for entry in _decoded_list(document["fired"], "fired"):
        if type(entry) is not list or len(entry) != 3:
            raise _fail("a fired rewrite is [rule, before, after]")
        rule, before, after = entry
        if type(rule) is not str or type(before) is not str or type(after) is not str:
            raise _fail("a fired rewrite is [rule, before, after], three strings")
        fired.append(Fired(rule, before, after))
    return outputs, fired


def loads(data: bytes, leaves: Sequence[Variable]) -> tuple[list[Variable], list[Fired]]:
    """``(outputs, fired rewrites)`` from bytes that :func:`dumps` wrote, the graph rebuilt
    over ``leaves``. Anything else raises :class:`GraphFormatError`; nothing in the data
    is run, and only the ops of :data:`OPS` are built.

    >>> loads(b"cos\\nsystem\\n(S'echo hi'\\ntR.", [])  # a pickle that would run a command
    Traceback (most recent call last):
    ...
    exprc.graph_format.GraphFormatError: graph file: not readable: JSONDecodeError: Expecting value: line 1 column 1 (char 0)
    """
    try:
        return _read(data, leaves)
    except GraphFormatError:
        raise
    except Exception as err:  # noqa: BLE001 - truncated, not JSON, too deep: all one answer
        raise _fail(f"not readable: {type(err).__name__}: {err}") from err
