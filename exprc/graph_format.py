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
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np

from .dtypes import SUPPORTED
from .grad import Rows
from .graph import Apply, Constant, Op, Variable, apply
from .ops.elemwise import Elemwise
from .ops.indexing import DYNAMIC, AdvancedIncSubtensor, AdvancedSubtensor, IncSubtensor, Subtensor
from .ops.linalg import MatMul, TensorDot
from .ops.markers import StopGradient
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
MAX_OUTPUTS = 64

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


def _decoded_list(value: Any, what: str, limit: int = MAX_ENTRIES) -> list:
    if type(value) is not list:
        raise _fail(f"{what} must be a list, got {type(value).__name__}")
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
        return tuple(a if a == "x" else _decoded_int(a, "an axis") for a in _decoded_list(v, "an axis order"))

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


BOOL, INT, OPTIONAL_INT, INTS = _bool_field(), _int_field(), _int_field(optional=True), _ints_field()
OPTIONAL_FLOAT, OPTIONAL_DTYPE = _optional_float_field(), _optional_dtype_field()
AXIS_ORDER, PATTERN, SCALAR_OP = _axis_order_field(), _pattern_field(), _scalar_op_field()
VARIABLE, BOUND_VARIABLE, VARIABLES = _variable_field(), _variable_field(binds=True), _variables_field()


# --- the registry of ops ----------------------------------------------------------


class OpFormat(NamedTuple):
    """How one op type is written: its name in files and a codec for each parameter."""

    name: str
    cls: type
    fields: tuple[tuple[str, Field], ...]


#: Every op type a file may name, by that name: the only ops :func:`loads` builds.
OPS: dict[str, OpFormat] = {}
_BY_CLASS: dict[type, OpFormat] = {}


def register(cls: type, **fields: Field) -> None:
    """Let files hold ops of type ``cls``, whose parameters are ``fields`` (a codec for each
    of its dataclass fields, in any order), under the class's name."""
    name = cls.__name__
    if name in OPS:
        raise ValueError(f"register: an op type is already registered as {name!r}")
    declared = [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else []
    if sorted(declared) != sorted(fields):
        raise ValueError(f"register {name}: give a codec for each of its fields {declared}, got {sorted(fields)}")
    entry = OpFormat(name, cls, tuple((f, fields[f]) for f in declared))
    OPS[name] = _BY_CLASS[cls] = entry


register(Elemwise, scalar_op=SCALAR_OP)
register(ShapeI, axis=INT)
register(DimShuffle, new_order=AXIS_ORDER)
register(Reshape)
register(BroadcastTo)
register(SumToShape, axis=INTS)
register(Concatenate, axis=INT)
for _reduce in (Sum, Prod, All, AnyReduce):
    register(_reduce, axis=INTS, keepdims=BOOL, dtype=OPTIONAL_DTYPE)
for _reduce in (Max, Min):
    register(_reduce, axis=INTS, keepdims=BOOL, dtype=OPTIONAL_DTYPE, initial=OPTIONAL_FLOAT)
for _reduce in (ArgMax, ArgMin):
    register(_reduce, axis=OPTIONAL_INT, keepdims=BOOL)
register(Subtensor, pattern=PATTERN)
register(AdvancedSubtensor, pattern=PATTERN)
register(IncSubtensor, pattern=PATTERN, set_instead_of_inc=BOOL)
register(AdvancedIncSubtensor, pattern=PATTERN, set_instead_of_inc=BOOL)
register(StopGradient)
register(MatMul)
register(TensorDot, axes_a=INTS, axes_b=INTS)
register(Rows, index=BOUND_VARIABLE, loop_inputs=VARIABLES, output=VARIABLE)


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
    op_ids: dict[int, int] = {}
    nodes: list = []

    def place(var: Variable) -> int:
        return position[var]

    for item in _in_order(list(outputs), bound):
        if isinstance(item, Apply):
            op = item.op
            op_id = op_ids.get(id(op))
            if op_id is None:
                kind = _format_of(op)
                params = [codec.encode(getattr(op, name), place) for name, codec in kind.fields]
                op_id = op_ids[id(op)] = len(ops)
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
        raise _fail(f"{dtype!r} is not a supported dtype")
    shape = _decoded_list(shape, "a shape", MAX_NDIM)
    if any(d is not None and (type(d) is not int or d < 0) for d in shape):
        raise _fail(f"{shape!r} is not a static shape")
    if type(weak) is not bool or (weak and shape):
        raise _fail(f"weak must be a bool, and only for 0-d types; got {weak!r}")
    return TensorType(dtype, tuple(shape), weak)


def _name(v: Any) -> str | None:
    if v is not None and type(v) is not str:
        raise _fail(f"a name must be a string or null, got {type(v).__name__}")
    return v


def _read_constant(entry: list) -> Constant:
    if len(entry) != 6:
        raise _fail(f"a constant has 6 fields, this one {len(entry)}")
    _, dtype, shape, weak, name, text = entry
    t = _checked_type(dtype, shape, weak)
    if None in t.shape:
        raise _fail(f"a constant's shape must be known, got {t.shape}")
    itemsize = np.dtype(t.dtype).itemsize
    size = 1
    for d in t.shape:
        size *= d
    nbytes = size * itemsize
    if type(text) is not str or nbytes > MAX_BYTES or len(text) != 4 * ((nbytes + 2) // 3):
        raise _fail(f"the data of a {t.dtype} constant of shape {t.shape} must be {nbytes} bytes in base64")
    data = base64.b64decode(text, validate=True)
    if len(data) != nbytes:
        raise _fail(f"the data of a {t.dtype} constant of shape {t.shape} must be {nbytes} bytes, got {len(data)}")
    array = np.frombuffer(data, dtype=np.dtype(t.dtype).newbyteorder("<")).reshape(t.shape)
    if t.dtype == "bool" and data.translate(None, b"\x00\x01"):
        raise _fail("a bool constant holds bytes other than 0 and 1")
    if t.weak:
        const = constant(array.item(), name=_name(name))
    else:
        const = constant(array.astype(t.dtype), dtype=t.dtype, name=_name(name))
    if const.type != t:
        raise _fail(f"a constant of type {t} came back as {const.type}")
    return const


def _read_op(spec: Any, values: list) -> Op:
    spec = _decoded_list(spec, "an op", 2)
    if len(spec) != 2 or type(spec[0]) is not str:
        raise _fail(f"an op is [name, parameters], got {spec!r:.100}")
    kind = OPS.get(spec[0])
    if kind is None:
        raise _fail(f"no op is registered as {spec[0]!r:.100}")
    params = _decoded_list(spec[1], f"the parameters of {kind.name}", len(kind.fields))
    if len(params) != len(kind.fields):
        raise _fail(f"{kind.name} takes {len(kind.fields)} parameters, got {len(params)}")
    return kind.cls(**{name: codec.decode(v, values) for (name, codec), v in zip(kind.fields, params)})


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
        if _checked_type(*_decoded_list(spec, "a leaf type", 3)) != leaf.type:
            raise _fail(f"leaf {i} was written as {spec}, and {leaf} is {leaf.type}")
    op_specs = _decoded_list(document["ops"], "ops")
    ops: list[Op | None] = [None] * len(op_specs)
    values: list[Variable] = []
    free: set = set()  # loop indices, and what depends on them: never an output
    for k, entry in enumerate(_decoded_list(document["nodes"], "nodes")):
        entry = _decoded_list(entry, f"node {k}", 6)
        tag = entry[0] if entry else None
        if tag == "apply":
            if len(entry) != 4:
                raise _fail(f"node {k}: an apply entry is ['apply', op, inputs, outputs]")
            op_id = _decoded_int(entry[1], f"node {k}: the op")
            if not 0 <= op_id < len(ops):
                raise _fail(f"node {k}: there is no op {op_id}")
            op = ops[op_id]
            if op is None:
                op = ops[op_id] = _read_op(op_specs[op_id], values)
            inputs = [_variable(i, values) for i in _decoded_list(entry[2], f"node {k}: inputs")]
            count = _decoded_int(entry[3], f"node {k}: the number of outputs")
            try:
                node = apply(op, inputs)
            except Exception as err:  # noqa: BLE001 - the op's own check of its inputs
                raise _fail(f"node {k}: {op} does not apply to its inputs: {type(err).__name__}: {err}") from err
            if len(node.outputs) != count or not 1 <= count <= MAX_OUTPUTS:
                raise _fail(f"node {k}: {op} has {len(node.outputs)} outputs, the file says {count}")
            if free and any(v in free for v in inputs):
                free.update(node.outputs)
            values.extend(node.outputs)
        elif tag == "leaf":
            if len(entry) != 2:
                raise _fail(f"node {k}: a leaf entry is ['leaf', position]")
            i = _decoded_int(entry[1], f"node {k}: the leaf")
            if not 0 <= i < len(leaves):
                raise _fail(f"node {k}: there is no leaf {i}")
            values.append(leaves[i])
        elif tag == "const":
            values.append(_read_constant(entry))
        elif tag == "var":
            if len(entry) != 5:
                raise _fail(f"node {k}: a variable entry is ['var', dtype, shape, weak, name]")
            var = TensorVariable(_checked_type(*entry[1:4]), name=_name(entry[4]))
            free.add(var)
            values.append(var)
        else:
            raise _fail(f"node {k}: {tag!r:.100} is not a kind of entry")
    outputs = [_variable(i, values) for i in _decoded_list(document["outputs"], "outputs")]
    if any(v in free for v in outputs):
        raise _fail("an output depends on a loop index outside its loop")
    fired = []
    for entry in _decoded_list(document["fired"], "fired"):
        entry = _decoded_list(entry, "a fired rewrite", 3)
        if len(entry) != 3 or any(type(s) is not str for s in entry):
            raise _fail("a fired rewrite is [rule, before, after], three strings")
        fired.append(Fired(*entry))
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
