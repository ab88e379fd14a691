"""Random, valid expression graphs, kept as code.

A :class:`Case` is a list of inputs (dtype, declared and actual shape, memory
layout, the seed of its values) and a list of nodes, each a line of exprc code
(``ex.exp({0})``, ``{0}.sum(axis=(0, 2), keepdims=True)``, ``ex.grad(...)``)
applied to earlier values. Keeping the graph as code makes a case easy to
shrink (drop a node, bypass it, shrink an input) and to print as a program that
runs on its own.

:func:`generate` grows a case node by node: it draws an op from the whole op set
(elementwise math with Python scalars, casts, reductions over random axes,
shape ops, slicing and integer-array indexing, set/inc_subtensor, linear
algebra, gradients of random scalar costs), builds it and runs it through the
NumPy reference; a node that does not build or run is drawn again.
"""

import warnings
from dataclasses import dataclass, field, replace

import numpy as np

import exprc as ex
from exprc.ops.elemwise import ELEMWISE_FUNCTIONS
from exprc.ops.scalar import SCALAR_OPS
from tests.helpers import in_layout, random_array

DTYPES = ("float64", "float32", "int64", "int32", "bool")
DTYPE_WEIGHTS = (0.35, 0.3, 0.15, 0.1, 0.1)
LAYOUTS = ("contiguous", "transposed", "strided", "broadcast")
LENGTHS = (0, 1, 2, 3, 4, 5, 7)
LENGTH_WEIGHTS = (0.04, 0.2, 0.2, 0.2, 0.16, 0.12, 0.08)

UNARY = sorted(n for n in ELEMWISE_FUNCTIONS if n in SCALAR_OPS and SCALAR_OPS[n].nin == 1)
BINARY = sorted(n for n in ELEMWISE_FUNCTIONS if n in SCALAR_OPS and SCALAR_OPS[n].nin == 2)
OPERATORS = {
    "add": "+",
    "subtract": "-",
    "multiply": "*",
    "true_divide": "/",
    "floor_divide": "//",
    "mod": "%",
    "power": "**",
    "less": "<",
    "greater_equal": ">=",
    "bitwise_and": "&",
}
REDUCTIONS = ("sum", "prod", "max", "min", "mean", "var", "std", "argmax", "argmin", "all", "any")
FUNCTION_REDUCTIONS = ("logsumexp", "softmax", "log_softmax")


class Invalid(Exception):
    """A case that does not build or whose reference does not run."""


@dataclass(frozen=True)
class Input:
    name: str
    dtype: str
    shape: tuple  # the actual lengths
    static: tuple  # the declared lengths (None: any)
    layout: str
    seed: int

    def declare(self):
        return f'ex.tensor("{self.name}", dtype="{self.dtype}", shape={self.static!r})'

    def value(self):
        rng = np.random.default_rng(self.seed)
        values = random_array(rng, self.shape, self.dtype)
        return in_layout(values, self.layout) if values.ndim else values


@dataclass(frozen=True)
class Node:
    template: str  # code with {0}, {1}, ... for the argument values
    args: tuple  # names of the values it reads


@dataclass
class Case:
    inputs: list
    nodes: dict = field(default_factory=dict)  # value name -> Node, in creation order
    outputs: list = field(default_factory=list)  # value names

    def copy(self, **changes):
        fields = {"inputs": list(self.inputs), "nodes": dict(self.nodes), "outputs": list(self.outputs)}
        fields.update(changes)
        return replace(self, **fields)

    def line(self, name):
        node = self.nodes[name]
        return f"{name} = " + node.template.format(*node.args)

    def build(self):
        """The input variables, the output variables and the input values; Invalid when the
        graph does not build."""
        namespace = {"ex": ex, "np": np}
        for var in self.inputs:
            namespace[var.name] = eval(var.declare(), namespace)
        for name in self.nodes:
            try:
                exec(self.line(name), namespace)
            except Exception as err:  # noqa: BLE001 - any failure to build makes the case invalid
                raise Invalid(f"{self.line(name)}: {type(err).__name__}: {err}") from None
        inputs = [namespace[v.name] for v in self.inputs]
        outputs = [namespace[name] for name in self.outputs]
        return inputs, outputs, [v.value() for v in self.inputs]

    def code(self, backend="c"):
        """The case as a program that runs on its own: it checks the graph on ``backend``
        (``"cuda"``: on the GPU, its outputs against those of the NumPy reference simplified
        alike)."""
        lines = ["import numpy as np", "", "import exprc as ex", "from tests.helpers import in_layout", ""]
        lines += [f"{v.name} = {v.declare()}" for v in self.inputs]
        lines += [self.line(name) for name in self.nodes]
        names = ", ".join(v.name for v in self.inputs)
        outs = ", ".join(self.outputs)
        if backend == "cuda":
            lines.append(f'f = ex.function([{names}], [{outs}], device="cuda")')
            lines.append(f'reference = ex.function([{names}], [{outs}], backend="numpy")')
        else:
            lines.append(f'f = ex.function([{names}], [{outs}], backend="{backend}", mode="check")')
        for v in self.inputs:
            lines.append(f"{v.name}_value = {_value_code(v)}")
        values = ", ".join(v.name + "_value" for v in self.inputs)
        if backend == "cuda":
            lines.append(f"for got, want in zip(f({values}), reference({values})):")
            lines.append("    np.testing.assert_allclose(got.get(), want, rtol=1e-6)")
        else:
            lines.append(f"f({values})")
        return "\n".join(lines)

    def used(self):
        """The case with only the nodes and inputs its outputs need."""
        needed, stack = set(), list(self.outputs)
        while stack:
            name = stack.pop()
            if name in needed:
                continue
            needed.add(name)
            if name in self.nodes:
                stack.extend(self.nodes[name].args)
        return self.copy(
            inputs=[v for v in self.inputs if v.name in needed],
            nodes={k: n for k, n in self.nodes.items() if k in needed},
        )


def _value_code(var):
    values = np.asarray(var.value()) if var.layout == "contiguous" or not var.shape else None
    if values is None:
        rng_values = random_array(np.random.default_rng(var.seed), var.shape, var.dtype)
        return f'in_layout({_array_code(rng_values)}, "{var.layout}")'
    return _array_code(values)


def _array_code(values):
    if values.size == 0:
        return f'np.zeros({values.shape!r}, dtype="{values.dtype}")'
    return f'np.array({values.tolist()!r}, dtype="{values.dtype}")'


def reference(case, rewrites=None):
    """The NumPy reference's outputs for ``case``; Invalid when it does not run."""
    inputs, outputs, values = case.build()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ex.function(inputs, outputs, backend="numpy", rewrites=rewrites)(*values)
    except Exception as err:  # noqa: BLE001
        raise Invalid(f"the reference fails: {type(err).__name__}: {err}") from None


# --- drawing a case -------------------------------------------------------------------------------


class _Drawer:
    def __init__(self, rng):
        self.rng = rng
        self.case = Case([])
        self.types = {}  # value name -> (dtype, actual shape)

    def choice(self, options, p=None):
        return options[int(self.rng.choice(len(options), p=p))]

    def new_input(self, dtype=None, shape=None):
        rng = self.rng
        dtype = dtype or self.choice(DTYPES, DTYPE_WEIGHTS)
        if shape is None:
            ndim = self.choice((0, 1, 2, 3), (0.15, 0.35, 0.35, 0.15))
            shape = tuple(self.choice(LENGTHS, LENGTH_WEIGHTS) for _ in range(ndim))
        static = tuple(n if rng.random() < 0.3 or (n == 1 and rng.random() < 0.3) else None for n in shape)
        layout = self.choice(LAYOUTS, (0.5, 0.2, 0.2, 0.1))
        var = Input(f"x{len(self.case.inputs)}", dtype, tuple(shape), static, layout, int(rng.integers(2**31)))
        self.case.inputs.append(var)
        self.types[var.name] = (dtype, tuple(shape))
        return var.name

    def pick(self, dtype_kind=None):
        names = [n for n, (d, _) in self.types.items() if dtype_kind is None or np.dtype(d).kind in dtype_kind]
        if not names or self.rng.random() < 0.15:
            return self.new_input(dtype={"f": self.choice(("float64", "float32"))}.get(dtype_kind))
        # later values are likelier: graphs grow deep, not only wide
        weights = np.arange(1, len(names) + 1, dtype=float) ** 1.5
        return self.choice(names, weights / weights.sum())

    def partner(self, name):
        """A value to combine with ``name`` elementwise: one that broadcasts with it."""
        dtype, shape = self.types[name]
        rng = self.rng
        if rng.random() < 0.5:
            fits = [n for n, (_, s) in self.types.items() if n != name and _broadcasts(s, shape)]
            if fits:
                return self.choice(fits)
        if rng.random() < 0.2:
            return None  # a Python scalar
        # a new input of a shape that broadcasts: some axes 1, some leading ones dropped
        drop = int(rng.integers(0, len(shape) + 1)) if rng.random() < 0.3 else 0
        new_shape = tuple(1 if rng.random() < 0.25 else n for n in shape[drop:])
        return self.new_input(shape=new_shape)

    def axes(self, ndim):
        rng = self.rng
        if ndim == 0 or rng.random() < 0.2:
            return None
        if rng.random() < 0.5:
            axis = int(rng.integers(-ndim, ndim))
            return axis
        k = int(rng.integers(1, ndim + 1))
        return tuple(sorted(int(a) for a in rng.choice(ndim, size=k, replace=False)))

    # --- node kinds: each returns (template, args) ---------------------------------------------
    def unary(self):
        return f"ex.{self.choice(UNARY)}({{0}})", (self.pick(),)

    def binary(self):
        a = self.pick()
        b = self.partner(a)
        op = self.choice(BINARY)
        if b is None:
            scalar = self.choice(("2", "0.5", "-1.5", "3", "1e-3", "True", "0"))
            if op in OPERATORS and self.rng.random() < 0.7:
                return (
                    f"{{0}} {OPERATORS[op]} {scalar}" if self.rng.random() < 0.6 else f"{scalar} {OPERATORS[op]} {{0}}"
                ), (a,)
            return f"ex.{op}({{0}}, {scalar})", (a,)
        if op in OPERATORS and self.rng.random() < 0.5:
            return f"{{0}} {OPERATORS[op]} {{1}}", (a, b)
        return f"ex.{op}({{0}}, {{1}})", (a, b)

    def ternary(self):
        a = self.pick()
        if self.rng.random() < 0.5:
            lo, hi = sorted(self.rng.choice([-2, -1, 0, 0.5, 1, 2], size=2, replace=False))
            return f"ex.clip({{0}}, {lo}, {hi})", (a,)
        b = self.partner(a) or a
        return "ex.where({0} > 0, {0}, {1})", (a, b)

    def cast(self):
        return f'{{0}}.astype("{self.choice(DTYPES)}")', (self.pick(),)

    def reduction(self):
        a = self.pick()
        ndim = len(self.types[a][1])
        axis = self.axes(ndim)
        keepdims = bool(self.rng.random() < 0.3)
        if self.rng.random() < 0.2:
            op = self.choice(FUNCTION_REDUCTIONS)
            if op == "logsumexp":
                return f"ex.logsumexp({{0}}, axis={axis!r}, keepdims={keepdims})", (a,)
            return f"ex.{op}({{0}}, axis={axis!r})", (a,)
        op = self.choice(REDUCTIONS)
        if op in ("argmax", "argmin") and isinstance(axis, tuple):
            axis = axis[0]
        return f"{{0}}.{op}(axis={axis!r}, keepdims={keepdims})", (a,)

    def shape_op(self):
        a = self.pick()
        shape = self.types[a][1]
        ndim = len(shape)
        rng = self.rng
        kind = self.choice(
            ("transpose", "T", "expand", "squeeze", "flatten", "reshape", "broadcast", "concatenate", "stack")
        )
        if kind == "transpose" and ndim > 1:
            return f"ex.transpose({{0}}, {tuple(int(i) for i in rng.permutation(ndim))!r})", (a,)
        if kind == "T":
            return "{0}.T", (a,)
        if kind == "expand":
            return f"ex.expand_dims({{0}}, {int(rng.integers(0, ndim + 1))})", (a,)
        if kind == "squeeze":
            ones = [i for i, n in enumerate(shape) if n == 1]
            return (f"ex.squeeze({{0}}, {self.choice(ones)})" if ones else "ex.squeeze({0})"), (a,)
        if kind == "flatten":
            return "{0}.flatten()", (a,)
        if kind == "reshape":
            size = int(np.prod(shape))
            splits = [d for d in (1, 2, 3) if size % d == 0]
            d = self.choice(splits)
            return f"{{0}}.reshape(({d}, -1))" if size else "{0}.reshape((0, 2))", (a,)
        if kind == "broadcast":
            new = tuple(self.choice((2, 3)) if n == 1 and rng.random() < 0.7 else n for n in shape)
            new = ((2,) if rng.random() < 0.3 else ()) + new
            return f"ex.broadcast_to({{0}}, {new!r})", (a,)
        if kind in ("concatenate", "stack"):
            fits = [n for n, (_, s) in self.types.items() if s == shape]
            b = self.choice(fits) if fits and rng.random() < 0.6 else self.new_input(shape=shape)
            if kind == "concatenate" and ndim:
                return f"ex.concatenate([{{0}}, {{1}}], axis={int(rng.integers(0, ndim))})", (a, b)
            return f"ex.stack([{{0}}, {{1}}], axis={int(rng.integers(0, ndim + 1))})", (a, b)
        return "{0}.T", (a,)

    def index(self):
        a = self.pick()
        shape = self.types[a][1]
        rng = self.rng
        if not shape:
            return self.unary()
        kind = self.choice(("slice", "int", "array", "set", "inc"), (0.4, 0.15, 0.2, 0.125, 0.125))
        if kind == "array":
            n = shape[0]
            idx = [int(i) for i in rng.integers(-n, n, size=int(rng.integers(1, 4)))] if n else []
            return f"{{0}}[{idx!r}]", (a,)
        parts = []
        for n in shape:
            if kind == "int" and not parts and n:
                parts.append(str(int(rng.integers(-n, n))))
                continue
            start = self.choice(("", "1", "-2", "0"))
            stop = self.choice(("", "-1", "3", ""))
            step = self.choice(("", "2", "-1", "-2", ""))
            parts.append(f"{start}:{stop}" + (f":{step}" if step else ""))
        sub = ", ".join(parts)
        if kind in ("set", "inc"):
            fn = "set_subtensor" if kind == "set" else "inc_subtensor"
            value = self.choice(("0.5", "2", "{0}[" + sub + "] * 2"))
            return f"ex.{fn}({{0}}[{sub}], {value})", (a,)
        return f"{{0}}[{sub}]", (a,)

    def linalg(self):
        a = self.pick("f")
        shape = self.types[a][1]
        rng = self.rng
        kind = self.choice(("dot", "matmul", "outer", "tensordot"))
        if kind == "outer":
            return "ex.outer({0}, {1})", (a, self.new_input(dtype=self.types[a][0], shape=(self.choice((1, 2, 3)),)))
        if not shape:
            return "{0} * 2", (a,)
        k = shape[-1]
        other = (k,) if rng.random() < 0.3 else (k, self.choice((1, 2, 3)))
        b = self.new_input(dtype=self.choice(("float64", "float32")), shape=other)
        if kind == "tensordot":
            return "ex.tensordot({0}, {1}, axes=1)", (a, b)
        return ("ex.dot({0}, {1})" if kind == "dot" else "{0} @ {1}"), (a, b)

    def gradient(self):
        floats = [v.name for v in self.case.inputs if np.dtype(v.dtype).kind == "f"]
        nodes = [n for n, (d, _) in self.types.items() if n in self.case.nodes and np.dtype(d).kind == "f"]
        if not floats or not nodes:
            return self.unary()
        v = self.choice(nodes)
        wrt = self.choice(floats)
        cost = self.choice(("{0}.sum()", "({0} * {0}).sum()", "{0}.mean()", "ex.sin({0}).sum()"))
        return f"ex.grad({cost}, {{1}})", (v, wrt)

    def staple(self):
        """Sorting, cumulative sums and products, and arange over a symbolic length."""
        a = self.pick()
        ndim = len(self.types[a][1])
        if ndim == 0:
            return "ex.cumsum({0})", (a,)
        axis = int(self.rng.integers(-ndim, ndim))
        kind = self.choice(("sort", "argsort", "cumsum", "cumprod", "arange"))
        if kind == "arange":
            # arange along one axis, broadcast against the value: (n, 1, ..., 1) for ndim - 1 - axis ones
            trailing = ", None" * (ndim - 1 - axis % ndim)
            return f"{{0}} + ex.arange({{0}}.shape[{axis % ndim}])[:{trailing}]", (a,)
        return f"ex.{kind}({{0}}, axis={axis})", (a,)

    KINDS = ("unary", "binary", "ternary", "cast", "reduction", "shape_op", "index", "linalg", "gradient", "staple")
    WEIGHTS = (0.23, 0.23, 0.05, 0.05, 0.14, 0.1, 0.08, 0.04, 0.05, 0.03)

    def add_node(self):
        for _ in range(20):
            saved_inputs = list(self.case.inputs)
            saved_types = dict(self.types)
            template, args = getattr(self, self.choice(self.KINDS, self.WEIGHTS))()
            name = f"v{len(self.case.nodes) + len(self.case.inputs)}"
            trial = self.case.copy()
            trial.nodes[name] = Node(template, tuple(args))
            trial.outputs = [name]
            try:
                (value,) = reference(trial.used())
            except Invalid:
                self.case.inputs, self.types = saved_inputs, saved_types
                continue
            self.case.nodes[name] = trial.nodes[name]
            self.types[name] = (np.asarray(value).dtype.name, np.shape(value))
            return name
        return None


def _broadcasts(a, b):
    for x, y in zip(reversed(a), reversed(b)):
        if x != y and x != 1 and y != 1:
            return False
    return True


def generate(seed, max_nodes=10):
    """A random valid :class:`Case`, the same for the same ``seed``.

    >>> case = generate(1)
    >>> len(case.outputs) >= 1 and all(o in case.nodes for o in case.outputs)
    True
    """
    rng = np.random.default_rng(seed)
    drawer = _Drawer(rng)
    drawer.new_input()
    names = []
    for _ in range(int(rng.integers(1, max_nodes + 1))):
        name = drawer.add_node()
        if name is not None:
            names.append(name)
    if not names:
        template = "{0} + 1" if drawer.types["x0"][0] != "bool" else "~{0}"
        drawer.case.nodes["v1"] = Node(template, ("x0",))
        names.append("v1")
    case = drawer.case
    # every value no node reads is an output: nothing drawn is lost; some others are too
    read = {a for node in case.nodes.values() for a in node.args}
    case.outputs = [n for n in names if n not in read or rng.random() < 0.1]
    return case.used()
