"""The expression graph: variables, apply nodes, ops, and walking them.

A graph is a DAG of :class:`Variable` objects. A variable is either a leaf (an
input the user declares, or a :class:`Constant`) or the output of an
:class:`Apply` node, which records the :class:`Op` applied and its inputs.

Graphs are *hash-consed*: applying the same op to the same inputs twice
returns the very same variable, and equal constants are one object. So a
subexpression built twice is recognised as the same by identity, ``==`` stays
identity (graphs are hashable), and later passes (CSE, caching) get structural
sharing for free.

>>> import exprc as ex
>>> x = ex.vector("x")
>>> ex.exp(x) + 1 is ex.exp(x) + 1
True
"""

import dataclasses
import weakref


class Op:
    """Base class of every operation.

    Ops are immutable values compared by their parameters: subclasses are
    frozen dataclasses, so ``Sum(axis=(0,))`` built twice is one op.

    A subclass implements:

    - ``make_node(*inputs) -> Apply``: checks the inputs and infers output types;
    - ``perform(node, inputs) -> list of outputs``: the NumPy reference;

    and may give ``grad(node, output_grads)``, the gradients of its inputs given those
    of its outputs (see :mod:`exprc.grad`), and ``infix(node, input_strings)`` and
    ``debug_name()`` for printing.
    """

    def __call__(self, *inputs):
        """Apply the op; the same op on the same inputs returns the same outputs."""
        node = apply(self, inputs)
        return node.outputs[0] if len(node.outputs) == 1 else node.outputs

    def make_node(self, *inputs):
        raise NotImplementedError

    def perform(self, node, inputs):
        raise NotImplementedError

    def grad(self, node, output_grads):
        """The gradient of each input (None where there is none), given ``output_grads``."""
        raise NotImplementedError(f"exprc cannot differentiate through {self.debug_name()}: it has no gradient rule")

    def debug_name(self):
        """The op as debugprint shows it: its class name and the parameters not at their default."""
        params = dataclasses.fields(self) if dataclasses.is_dataclass(self) else ()
        shown = ", ".join(f"{p.name}={getattr(self, p.name)!r}" for p in params if getattr(self, p.name) != p.default)
        return f"{type(self).__name__}{{{shown}}}" if shown else type(self).__name__

    def __str__(self):
        return self.debug_name()


class Variable:
    """A node of the graph holding a value of some type.

    ``owner`` is the :class:`Apply` that computes it (None for a leaf) and
    ``index`` its position among the owner's outputs.
    """

    __slots__ = ("type", "owner", "index", "name", "__weakref__")

    def __init__(self, type, owner=None, index=None, name=None):
        self.type = type
        self.owner = owner
        self.index = index
        self.name = name

    # Identity, as object's: the C slot, not a Python method, since every dict keyed by
    # variables (the compiler's, and each call's values) hashes through it.
    __hash__ = object.__hash__

    def __eq__(self, other):
        return self is other

    def __ne__(self, other):
        return self is not other

    # How a variable reads as text is the printing layer's, above this one: the tensor
    # variables (exprc.tensor) give __str__ and __repr__.


class Constant(Variable):
    """A leaf whose value is fixed when the graph is built."""

    __slots__ = ("value",)

    def __init__(self, type, value, name=None):
        super().__init__(type, name=name)
        self.value = value


class Apply:
    """One application of an op: ``outputs = op(*inputs)``."""

    __slots__ = ("op", "inputs", "outputs", "__weakref__")

    def __init__(self, op, inputs, output_types):
        self.op = op
        self.inputs = tuple(inputs)
        self.outputs = tuple(t.make_variable(owner=self, index=i) for i, t in enumerate(output_types))

    def __repr__(self):
        return f"<Apply {self.op.debug_name()}>"


# (op, inputs) -> Apply; an entry lives as long as some output of it is used.
_applied = weakref.WeakValueDictionary()


def apply(op, inputs):
    """The node computing ``op(*inputs)``, built once for each distinct op and inputs."""
    key = (op, tuple(inputs))
    node = _applied.get(key)
    if node is None:
        node = op.make_node(*inputs)
        _applied[key] = node
    return node


def toposort(outputs):
    """The Apply nodes that compute ``outputs``, each after the nodes it depends on."""
    order, seen = [], set()
    for root in outputs:
        if root.owner is None or root.owner in seen:
            continue
        # Iterative depth-first search: graphs can be deeper than Python's recursion limit.
        stack = [(root.owner, iter(root.owner.inputs))]
        seen.add(root.owner)
        while stack:
            node, pending = stack[-1]
            for var in pending:
                parent = var.owner
                if parent is not None and parent not in seen:
                    seen.add(parent)
                    stack.append((parent, iter(parent.inputs)))
                    break
            else:
                stack.pop()
                order.append(node)
    return order


def ancestors(outputs):
    """Every variable that ``outputs`` depend on, themselves included, in dependency order."""
    result, seen = [], set()
    for node in toposort(outputs):
        for var in node.inputs:
            if var not in seen:
                seen.add(var)
                result.append(var)
        for var in node.outputs:
            if var not in seen:
                seen.add(var)
                result.append(var)
    for var in outputs:
        if var not in seen:
            seen.add(var)
            result.append(var)
    return result


def graph_inputs(outputs):
    """The leaves other than constants that ``outputs`` depend on, in first-use order."""
    return [v for v in ancestors(outputs) if v.owner is None and not isinstance(v, Constant)]


def substitute(outputs, replacements):
    """Rebuild ``outputs`` with each key of ``replacements`` replaced by its value.

    Nodes above a replaced variable are rebuilt through their op's
    ``make_node``, so types are inferred anew and broadcasting is checked
    again. A replacement must have the dtype and number of dimensions of the
    variable it replaces.

    >>> import exprc as ex
    >>> x, y = ex.vector("x"), ex.vector("y")
    >>> str(substitute([ex.exp(x) + x], {x: y * 2})[0])
    'exp(y * 2) + y * 2'
    """
    memo = {}
    for old, new in replacements.items():
        if old.type.dtype != new.type.dtype or old.type.ndim != new.type.ndim:
            raise TypeError(
                f"cannot replace {old} ({old.type}) with {new} ({new.type}): "
                "a replacement must have the same dtype and number of dimensions"
            )
        memo[old] = new
    for node in toposort(outputs):
        inputs = [memo.get(v, v) for v in node.inputs]
        if any(a is not b for a, b in zip(inputs, node.inputs)):
            new_node = apply(node.op, inputs)
            for old, new in zip(node.outputs, new_node.outputs):
                memo.setdefault(old, new)
    return [memo.get(v, v) for v in outputs]


def flatten(outputs):
    """A flat, picklable description of the graph computing ``outputs``: ``(entries, picks)``.

    Each entry is a leaf variable, or ``(op, input positions)`` for a node whose outputs
    take the next positions; ``picks`` are the positions of ``outputs``. Pickling a
    graph this way needs no recursion however deep the graph is, and
    :func:`unflatten` rebuilds it through :func:`apply`, so the rebuilt graph is
    hash-consed with the graphs of the process that loads it.

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> entries, picks = flatten([ex.exp(x) + 1])
    >>> unflatten(entries, picks)[0] is ex.exp(x) + 1
    True
    """
    position, entries = {}, []

    def place(var):
        if var not in position:
            position[var] = len(position)
            entries.append(var)
        return position[var]

    for node in toposort(outputs):
        refs = tuple(place(v) for v in node.inputs)
        entries.append((node.op, refs, len(node.outputs)))
        for var in node.outputs:
            position[var] = len(position)
    return entries, [place(v) for v in outputs]


def unflatten(entries, picks):
    """The variables at ``picks`` of a graph described by :func:`flatten`."""
    values = []
    for entry in entries:
        if isinstance(entry, Variable):
            values.append(entry)
            continue
        op, refs, count = entry
        node = apply(op, [values[i] for i in refs])
        if len(node.outputs) != count:
            raise ValueError(f"{op}: rebuilt with {len(node.outputs)} outputs, the graph recorded {count}")
        values.extend(node.outputs)
    return [values[i] for i in picks]


def canonical_text(inputs, outputs, digest):
    """The graph computing ``outputs`` as a normalised text, the same in every process: inputs
    by position, nodes by position, ops with their parameters, every type (dtype and static
    shape), constants by value. Cache keys are made from it.

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> from hashlib import sha256
    >>> print(canonical_text([x], [ex.exp(x)], sha256))
    in0: float64 (?,)
    t0_0: float64 (?,) = Elemwise(scalar_op=ScalarOp(name='exp', nin=1))(in0)
    return t0_0
    """
    import numpy as np

    names = {v: f"in{i}" for i, v in enumerate(inputs)}
    lines = [f"in{i}: {v.type}" for i, v in enumerate(inputs)]

    def name(v):
        if v not in names:
            if isinstance(v, Constant):
                value = np.asarray(v.value)
                hashed = digest(np.ascontiguousarray(value).tobytes()).hexdigest()[:32]
                names[v] = f"const({value.dtype.str}, {value.shape}, sha256={hashed}, weak={v.type.weak})"
            else:
                names[v] = f"?{v.type}"
        return names[v]

    for i, node in enumerate(toposort(outputs)):
        args = ", ".join(name(v) for v in node.inputs)
        for k, out in enumerate(node.outputs):
            names[out] = f"t{i}_{k}"
        lines.append(f"{', '.join(f'{names[o]}: {o.type}' for o in node.outputs)} = {_op_text(node.op)}({args})")
    lines.append("return " + ", ".join(name(v) for v in outputs))
    return "\n".join(lines)


def _op_text(op):
    # Ops are dataclasses whose repr lists their parameters; an op without parameters may
    # be a plain class, whose default repr holds its address, different in every process.
    if hasattr(op, "__dataclass_fields__"):
        return repr(op)
    return f"{type(op).__module__}.{type(op).__qualname__}"
