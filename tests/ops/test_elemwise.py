"""Every elementwise operation against NumPy, through ``exprc.function(..., backend=current_backend())``.

Each op is one row of :data:`CASES`: how exprc builds it, the NumPy call it must
agree with, and the domain its test values come from. Every op is run for every
dtype NumPy accepts it for, on every layout of :data:`LAYOUTS` (contiguous,
transposed, strided, stride-0, broadcasting, zero-size, 0-d), and must give
NumPy's values, dtype and shape. Where NumPy refuses a dtype, exprc must refuse
it too, when the graph is built, naming the op.
"""

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

import exprc as ex
from exprc.ops.elemwise import ELEMWISE_FUNCTIONS
from exprc.ops.scalar import SCALAR_OPS

from ..helpers import DTYPES, RNG_SEED, assert_matches_numpy, in_layout, random_array
from ._oracle import Batch, current_backend

FLOATS = ("float32", "float64")


# --- where test values come from -------------------------------------------------


@dataclass(frozen=True)
class Domain:
    """The values an input of an op is tested on, per kind of dtype."""

    low: float = -3.0  # floats: uniform in [low, high)
    high: float = 3.0
    int_low: int = -5  # integers: in [int_low, int_high]
    int_high: int = 5
    bools: tuple = (False, True)
    grid: float = 0.0  # floats rounded to multiples of grid, so ties and exact zeros occur
    signed: bool = False  # the magnitudes above, each with a random sign
    special: bool = False  # about a third of the floats replaced by nan, inf or -inf
    scalars: tuple = (2, -1.5, True)  # Python scalars in this domain, for the weak-scalar tests

    def sample(self, rng, shape, dtype):
        kind = np.dtype(dtype).kind
        if kind == "b":
            return np.asarray(rng.choice(np.array(self.bools), size=shape))
        if kind in "iu":
            values = random_array(rng, shape, dtype, self.int_low, self.int_high)
        elif self.grid:
            values = random_array(rng, shape, "float64", self.low, self.high)
            values = (np.round(values / self.grid) * self.grid).astype(dtype)
        else:
            values = random_array(rng, shape, dtype, self.low, self.high)
        if self.signed:
            values = np.where(rng.random(shape) < 0.5, -values, values)
        if self.special and kind == "f":
            specials = rng.choice([np.nan, np.inf, -np.inf], size=shape)
            values = np.where(rng.random(shape) < 0.3, specials, values)
        return np.asarray(values).astype(dtype)


ANY = Domain()
TIES = Domain(-2.0, 2.0, -2, 2, grid=0.5)  # equal values and zeros: comparisons, logical ops
TIES_SPECIAL = Domain(-2.0, 2.0, -2, 2, grid=0.5, special=True)  # ... and nan, inf: max/min, comparisons
SPECIAL = Domain(special=True)
ROUNDING = Domain(-3.0, 3.0, grid=0.25)  # exact halves: rint rounds them to even
POSITIVE = Domain(0.25, 4.0, 1, 9, bools=(True,), scalars=(2, 1.5, True))
NON_NEGATIVE = Domain(0.0, 4.0, 0, 9, scalars=(2, 1.5, True))
ABOVE_MINUS_ONE = Domain(-0.9, 3.0, 0, 9, scalars=(2, 0.5, True))
AT_LEAST_ONE = Domain(1.0, 5.0, 1, 9, bools=(True,), scalars=(2, 1.5, True))
CLOSED_UNIT = Domain(-1.0, 1.0, -1, 1, scalars=(1, -0.5, True))
OPEN_UNIT = Domain(-0.95, 0.95, 0, 0, bools=(False,), scalars=(0, -0.5, False))
GAMMA = Domain(-3.9, 6.0, 1, 9, bools=(True,), scalars=(3, 0.5, True))  # no poles (0, -1, -2, ...)
NONZERO = Domain(0.5, 3.0, 1, 5, bools=(True,), signed=True, scalars=(3, -1.5, True))  # divisors
BASE = Domain(0.5, 3.0, -3, 3, scalars=(2, 1.5, True))
EXPONENT = Domain(-2.0, 2.0, 0, 3, scalars=(2, 0.5, True))  # no negative integer powers
LOWER = Domain(-2.0, 0.0, -3, 0, bools=(False,), scalars=(-1, -0.5, False))  # clip bounds
UPPER = Domain(0.0, 2.0, 0, 3, bools=(True,), scalars=(1, 1.5, True))


# --- the ops -----------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One elementwise operation: exprc's way to build it and NumPy's way to compute it."""

    name: str  # the scalar op, as exprc's error messages name it
    build: Callable  # symbolic inputs -> symbolic output
    oracle: Callable  # NumPy arrays -> array
    domains: tuple  # one Domain per input
    dtypes: tuple | None = None  # a fixed dtype per input, None where the tested dtype goes
    ulps: int = 4  # how far from the oracle a float result may be

    @property
    def nin(self):
        return len(self.domains)

    def input_dtypes(self, dtype):
        fixed = self.dtypes or (None,) * self.nin
        return tuple(dtype if d is None else d for d in fixed)


def float_result_dtype(dtype):
    """The dtype NumPy's float functions (exp, sin, ...) give for ``dtype``: bool -> float16, ints -> float64."""
    return np.exp(np.zeros(1, dtype)).dtype


def in_float64(fn):
    """An oracle computing ``fn`` in float64 and rounding once to NumPy's float result dtype."""

    def oracle(x):
        return np.asarray(fn(np.asarray(x, dtype=np.float64))).astype(float_result_dtype(x.dtype))

    return oracle


def pointwise(scalar_fn):
    """``scalar_fn`` from :mod:`math` applied to each element."""
    return np.vectorize(scalar_fn, otypes=[np.float64])


def lgamma(v):
    """log|Gamma(v)|; +inf at the poles 0, -1, -2, ... where math.lgamma raises."""
    try:
        return math.lgamma(v)
    except ValueError:
        return math.inf


def ufunc(name, *domains, oracle=None, dtypes=None, ulps=4):
    """The case for ``ex.<name>``, compared with ``np.<name>`` unless ``oracle`` says otherwise."""
    build = getattr(ex, name)
    scalar_name = getattr(build, "__name__", name)
    return name, Case(scalar_name, build, oracle or getattr(np, name), domains, dtypes, ulps)


def python_operator(fn, name, *domains, oracle=None):
    """The case for a Python operator: ``fn`` (from :mod:`operator`) on symbolic tensors and on arrays."""
    return f"op_{fn.__name__.strip('_')}", Case(name, fn, oracle or fn, domains)


def astype_case(dtype):
    return f"astype_{dtype}", Case(
        f"astype_{dtype}", lambda x: x.astype(dtype), lambda x: np.asarray(x).astype(dtype), (ANY,)
    )


CASES = dict(
    [
        # unary math
        ufunc("negative", ANY),
        ufunc("abs", ANY),
        ufunc("sign", TIES),
        ufunc("exp", ANY),
        ufunc("exp2", ANY),
        ufunc("expm1", ANY),
        ufunc("log", POSITIVE),
        ufunc("log2", POSITIVE),
        ufunc("log10", POSITIVE),
        ufunc("log1p", ABOVE_MINUS_ONE),
        ufunc("sqrt", NON_NEGATIVE),
        ufunc("square", ANY),
        ufunc("sin", ANY),
        ufunc("cos", ANY),
        ufunc("tan", ANY),
        ufunc("arcsin", CLOSED_UNIT),
        ufunc("arccos", CLOSED_UNIT),
        ufunc("arctan", ANY),
        ufunc("sinh", ANY),
        ufunc("cosh", ANY),
        ufunc("tanh", ANY),
        ufunc("arcsinh", ANY),
        ufunc("arccosh", AT_LEAST_ONE),
        ufunc("arctanh", OPEN_UNIT),
        ufunc("floor", ROUNDING),
        ufunc("ceil", ROUNDING),
        ufunc("trunc", ROUNDING),
        ufunc("rint", ROUNDING),
        ufunc("round", ROUNDING),
        ufunc("sigmoid", ANY, oracle=in_float64(lambda x: 1.0 / (1.0 + np.exp(-x)))),
        ufunc("softplus", ANY, oracle=in_float64(lambda x: np.logaddexp(0.0, x))),
        ufunc("erf", ANY, oracle=in_float64(pointwise(math.erf))),
        ufunc("erfc", ANY, oracle=in_float64(pointwise(math.erfc))),
        # CPython's math.lgamma (the oracle) and the C library's lgamma (compiled code) differ
        # by tens of ulp where log|Gamma| nears its zeros at 1 and 2.
        ufunc("gammaln", GAMMA, oracle=in_float64(pointwise(lgamma)), ulps=64),
        # unary predicates and bit operations
        ufunc("isnan", SPECIAL),
        ufunc("isinf", SPECIAL),
        ufunc("isfinite", SPECIAL),
        ufunc("logical_not", TIES),
        ufunc("invert", ANY),
        # binary arithmetic
        ufunc("add", ANY, ANY),
        ufunc("subtract", ANY, ANY),
        ufunc("multiply", ANY, ANY),
        ufunc("true_divide", ANY, NONZERO),
        ufunc("floor_divide", ANY, NONZERO),
        ufunc("mod", ANY, NONZERO),
        ufunc("power", BASE, EXPONENT),
        ufunc("maximum", TIES_SPECIAL, TIES_SPECIAL),
        ufunc("minimum", TIES_SPECIAL, TIES_SPECIAL),
        ufunc("arctan2", TIES, TIES),
        ufunc("hypot", ANY, ANY),
        # comparisons and logical / bitwise operations
        ufunc("equal", TIES_SPECIAL, TIES_SPECIAL),
        ufunc("not_equal", TIES_SPECIAL, TIES_SPECIAL),
        ufunc("less", TIES_SPECIAL, TIES_SPECIAL),
        ufunc("less_equal", TIES_SPECIAL, TIES_SPECIAL),
        ufunc("greater", TIES_SPECIAL, TIES_SPECIAL),
        ufunc("greater_equal", TIES_SPECIAL, TIES_SPECIAL),
        ufunc("logical_and", TIES, TIES),
        ufunc("logical_or", TIES, TIES),
        ufunc("logical_xor", TIES, TIES),
        ufunc("bitwise_and", ANY, ANY),
        ufunc("bitwise_or", ANY, ANY),
        ufunc("bitwise_xor", ANY, ANY),
        # three inputs
        ("where", Case("where", ex.where, np.where, (TIES, ANY, ANY), dtypes=("bool", None, None))),
        ("where_nonbool_condition", Case("where", ex.where, np.where, (TIES, ANY, ANY))),
        ("clip", Case("clip", ex.clip, np.clip, (TIES_SPECIAL, LOWER, UPPER))),
        (
            "clip_lower",
            Case("maximum", lambda x, lo: ex.clip(x, lo, None), lambda x, lo: np.clip(x, lo, None), (ANY, TIES)),
        ),
        (
            "clip_upper",
            Case("minimum", lambda x, hi: ex.clip(x, None, hi), lambda x, hi: np.clip(x, None, hi), (ANY, TIES)),
        ),
        # conversions
        *(astype_case(dtype) for dtype in DTYPES),
        # other names for the ops above
        ufunc("absolute", ANY),
        ufunc("divide", ANY, NONZERO),
        ufunc("eq", TIES_SPECIAL, TIES_SPECIAL, oracle=np.equal),
        ufunc("neq", TIES_SPECIAL, TIES_SPECIAL, oracle=np.not_equal),
        # Python's operators
        python_operator(operator.neg, "negative", ANY),
        python_operator(operator.invert, "invert", ANY),
        python_operator(operator.abs, "abs", ANY),
        python_operator(operator.add, "add", ANY, ANY),
        python_operator(operator.sub, "subtract", ANY, ANY),
        python_operator(operator.mul, "multiply", ANY, ANY),
        python_operator(operator.truediv, "true_divide", ANY, NONZERO),
        python_operator(operator.floordiv, "floor_divide", ANY, NONZERO),
        python_operator(operator.mod, "mod", ANY, NONZERO),
        # ``**`` is np.power: NumPy's own ``bool_array ** 2`` takes a shortcut through np.square (int8, not int64).
        python_operator(operator.pow, "power", BASE, EXPONENT, oracle=np.power),
        python_operator(operator.and_, "bitwise_and", ANY, ANY),
        python_operator(operator.or_, "bitwise_or", ANY, ANY),
        python_operator(operator.xor, "bitwise_xor", ANY, ANY),
        python_operator(operator.lt, "less", TIES_SPECIAL, TIES_SPECIAL),
        python_operator(operator.le, "less_equal", TIES_SPECIAL, TIES_SPECIAL),
        python_operator(operator.gt, "greater", TIES_SPECIAL, TIES_SPECIAL),
        python_operator(operator.ge, "greater_equal", TIES_SPECIAL, TIES_SPECIAL),
    ]
)

#: Other names for an op: the same function or operator as a row above, so tested on fewer layouts.
ALIASES = {
    "absolute": "abs",
    "divide": "true_divide",
    "eq": "equal",
    "neq": "not_equal",
    "op_neg": "negative",
    "op_invert": "invert",
    "op_abs": "abs",
    "op_add": "add",
    "op_sub": "subtract",
    "op_mul": "multiply",
    "op_truediv": "true_divide",
    "op_floordiv": "floor_divide",
    "op_mod": "mod",
    "op_pow": "power",
    "op_and": "bitwise_and",
    "op_or": "bitwise_or",
    "op_xor": "bitwise_xor",
    "op_lt": "less",
    "op_le": "less_equal",
    "op_gt": "greater",
    "op_ge": "greater_equal",
}
PRIMARY = [cid for cid in CASES if cid not in ALIASES]

#: Known disagreements with NumPy, each with the reason; the test is expected to fail (strictly).
KNOWN_BUGS = {}  # (case id, dtype) -> reason, for a known difference from NumPy awaiting a fix


def numpy_accepts(case, dtypes):
    """Whether NumPy computes ``case`` for inputs of ``dtypes`` rather than raising TypeError."""
    try:
        with np.errstate(all="ignore"):
            case.oracle(*(np.ones(1, d) for d in dtypes))
    except TypeError:
        return False
    return True


# --- layouts -------------------------------------------------------------------------

M = (None, None)  # a matrix whose lengths are known only at run time

#: Per input: (run-time shape, declared static shape, memory layout of helpers.in_layout).
#: Inputs past the listed ones repeat the last entry.
LAYOUTS = {
    "contiguous": [((3, 4), M, "contiguous")],
    "transposed": [((3, 4), M, "transposed")],
    "strided": [((3, 4), M, "strided")],
    "stride0": [((3, 4), M, "broadcast")],
    "static_shape": [((3, 4), (3, 4), "strided")],
    "3d_transposed": [((2, 3, 4), (None, None, None), "transposed")],
    "mixed_layouts": [((3, 4), M, "transposed"), ((3, 4), M, "broadcast"), ((3, 4), M, "strided")],
    "broadcast_static": [
        ((3, 1), (None, 1), "contiguous"),
        ((1, 4), (1, None), "strided"),
        ((3, 1), (3, 1), "transposed"),
    ],
    "broadcast_runtime": [((3, 1), M, "contiguous"), ((1, 4), M, "strided"), ((1, 1), M, "contiguous")],
    "matrix_vector": [((3, 4), M, "transposed"), ((4,), (None,), "strided")],
    "rank_mismatch": [
        ((2, 3, 4), (None, None, None), "strided"),
        ((3, 1), M, "contiguous"),
        ((4,), (None,), "strided"),
    ],
    "0d_matrix": [((), (), "contiguous"), ((3, 4), M, "transposed")],
    "matrix_0d": [((3, 4), M, "strided"), ((), (), "contiguous")],
    "zero_size": [((0, 3), M, "contiguous"), ((0, 3), M, "strided")],
    "zero_size_broadcast": [((0, 1), M, "contiguous"), ((1, 3), M, "strided"), ((0, 3), M, "contiguous")],
    "0d": [((), (), "contiguous")],
}
#: The layouts for one input, and for several (where the inputs also broadcast against each other).
UNARY_LAYOUTS = ("contiguous", "transposed", "strided", "stride0", "static_shape", "3d_transposed", "zero_size", "0d")
NARY_LAYOUTS = (
    "contiguous",
    "transposed",
    "strided",
    "mixed_layouts",
    "broadcast_static",
    "broadcast_runtime",
    "matrix_vector",
    "rank_mismatch",
    "0d_matrix",
    "matrix_0d",
    "zero_size",
    "zero_size_broadcast",
    "0d",
)
#: Fewer for the other names of an op.
ALIAS_LAYOUTS = {1: ("strided", "zero_size", "0d"), 2: ("mixed_layouts", "matrix_vector", "0d_matrix", "zero_size")}


def layout_inputs(rng, case, dtype, layout):
    """Per input of ``case``: its value (in the memory layout) and the static shape to declare."""
    spec = LAYOUTS[layout]
    values, declared = [], []
    for i, (domain, dt) in enumerate(zip(case.domains, case.input_dtypes(dtype))):
        shape, static, memory = spec[min(i, len(spec) - 1)]
        values.append(in_layout(domain.sample(rng, shape, dt), memory))
        declared.append(static)
    return values, declared


# --- the check -------------------------------------------------------------------------


def graph_inputs(args, declared=None, prefix="x"):
    """The symbolic inputs for the arrays of ``args`` and the arguments to build the case on:
    each array becomes an input of its dtype (with the static shape from ``declared``, else
    all lengths unknown); anything else, such as a Python scalar, goes into the graph as it is."""
    symbols, graph_args = [], []
    for i, value in enumerate(args):
        if isinstance(value, np.ndarray):
            shape = declared[i] if declared else (None,) * value.ndim
            symbol = ex.tensor(f"{prefix}{i}", dtype=value.dtype.name, shape=shape)
            symbols.append(symbol)
            graph_args.append(symbol)
        else:
            graph_args.append(value)
    return symbols, graph_args


def check_against_numpy(case, args, declared=None, batch=None, **params):
    """Build ``case`` on ``args`` and compare what the current back end computes with NumPy.

    Each array in ``args`` becomes a symbolic input of its dtype (see :func:`graph_inputs`).
    Where NumPy refuses the inputs (TypeError, or OverflowError for a Python int out of
    range), building the graph must raise the same error naming the op. With ``batch`` (an
    ``_oracle.Batch``) and the test's ``params``, the compiled values come from the program
    the batch built for this case and others of its group.
    """
    symbols, graph_args = graph_inputs(args, declared)
    arrays = [a for a in args if isinstance(a, np.ndarray)]

    refused = None
    try:
        with np.errstate(all="ignore"):
            expected = np.asarray(case.oracle(*args))
    except TypeError:
        refused = TypeError
    except OverflowError:
        refused = OverflowError
    if refused:
        with pytest.raises(refused, match=rf"\b{re.escape(case.name)}\b"):
            case.build(*graph_args)
        return

    out = case.build(*graph_args)
    assert out.dtype == expected.dtype, f"static dtype {out.dtype}, NumPy gives {expected.dtype}"
    assert out.ndim == expected.ndim, f"static shape {out.type.shape}, NumPy gives {expected.shape}"
    for static, length in zip(out.type.shape, expected.shape):
        assert static in (None, length), f"static shape {out.type.shape}, NumPy gives {expected.shape}"

    before = [a.copy() for a in arrays]
    if batch is None:
        got = ex.function(symbols, out, backend=current_backend())(*arrays)
    else:
        [got] = batch.compute(symbols, [out], arrays, **params)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(arrays, before)), "an input was modified"
    assert_matches_numpy(got, expected, case.ulps)


# --- the tests ---------------------------------------------------------------------------


def _params(cases, dtypes, layouts_for):
    params = []
    for cid in cases:
        case = CASES[cid]
        for dtype in dtypes:
            if not numpy_accepts(case, case.input_dtypes(dtype)):
                continue
            marks = []
            if (cid, dtype) in KNOWN_BUGS:
                marks = [pytest.mark.xfail(reason=KNOWN_BUGS[cid, dtype], strict=True)]
            for layout in layouts_for(cid):
                params.append(pytest.param(cid, dtype, layout, id=f"{cid}-{dtype}-{layout}", marks=marks))
    return params


def _layouts_for(cid):
    if cid in ALIASES:
        return ALIAS_LAYOUTS[CASES[cid].nin]
    return UNARY_LAYOUTS if CASES[cid].nin == 1 else NARY_LAYOUTS


def _prepare_layout_case(cid, dtype, layout):
    """The inputs, output and values of a case of :func:`test_matches_numpy`, as the test builds them."""
    case = CASES[cid]
    args, declared = layout_inputs(np.random.default_rng(RNG_SEED), case, dtype, layout)
    symbols, graph_args = graph_inputs(args, declared, prefix=f"{cid}_{dtype}_{layout}_x")
    return symbols, [case.build(*graph_args)], [a for a in args if isinstance(a, np.ndarray)]


#: Compiled back ends build the cases of four ops (every dtype and layout) as one program.
LAYOUT_BATCH = Batch("test_matches_numpy", _prepare_layout_case, lambda cid, dtype, layout: list(CASES).index(cid) // 4)


@pytest.mark.parametrize("cid, dtype, layout", _params(CASES, DTYPES, _layouts_for))
def test_matches_numpy(rng, cid, dtype, layout):
    case = CASES[cid]
    args, declared = layout_inputs(rng, case, dtype, layout)
    check_against_numpy(case, args, declared, batch=LAYOUT_BATCH, cid=cid, dtype=dtype, layout=layout)


REJECTED = [
    pytest.param(cid, dtype, id=f"{cid}-{dtype}")
    for cid, case in CASES.items()
    for dtype in DTYPES
    if not numpy_accepts(case, case.input_dtypes(dtype))
]


@pytest.mark.backend_independent
@pytest.mark.parametrize("cid, dtype", REJECTED)
def test_rejects_dtypes_numpy_rejects(cid, dtype):
    """NumPy has no loop for these dtypes (``~`` of a float, ``-`` of a bool, ...): exprc
    refuses them when the graph is built, with a TypeError naming the op."""
    case = CASES[cid]
    inputs = [ex.tensor(f"x{i}", dtype=dt, shape=(None,)) for i, dt in enumerate(case.input_dtypes(dtype))]
    with pytest.raises(TypeError, match=rf"\b{re.escape(case.name)}\b"):
        case.build(*inputs)


@pytest.mark.backend_independent
def test_rejections_are_tested():
    """The dtypes NumPy refuses are found, so the test above is not empty."""
    rejected = {p.values[:2] for p in REJECTED}
    assert {("invert", "float32"), ("negative", "bool"), ("op_sub", "bool")} <= rejected


MIXED_PARAMS = [
    pytest.param(cid, dtype0, dtype1, id=f"{cid}-{dtype0}-{dtype1}")
    for cid in PRIMARY
    if CASES[cid].nin >= 2
    for dtype0 in DTYPES
    for dtype1 in DTYPES
    if dtype0 != dtype1
]


def _mixed_args(rng, cid, dtype0, dtype1):
    case = CASES[cid]
    dtypes = list(case.input_dtypes(dtype0))
    dtypes[1] = dtype1
    return [in_layout(d.sample(rng, (3, 4), dt), "strided") for d, dt in zip(case.domains, dtypes)]


def _prepare(args_of, cid, **params):
    """A batch's ``prepare`` for a test that checks ``CASES[cid]`` on ``args_of(rng, cid, **params)``."""
    args = args_of(np.random.default_rng(RNG_SEED), cid, **params)
    name = "_".join([cid, *map(str, params.values())]).replace("-", "m").replace(".", "p")
    symbols, graph_args = graph_inputs(args, prefix=f"{name}_x")
    return symbols, [CASES[cid].build(*graph_args)], [a for a in args if isinstance(a, np.ndarray)]


#: Compiled back ends build the dtype pairs of one op as one program.
MIXED_BATCH = Batch("test_mixed_dtypes", lambda **p: _prepare(_mixed_args, **p), lambda cid, dtype0, dtype1: cid)


@pytest.mark.parametrize("cid, dtype0, dtype1", MIXED_PARAMS)
def test_mixed_dtypes(rng, cid, dtype0, dtype1):
    """Inputs of different dtypes promote as NumPy promotes them (or are refused as NumPy refuses them)."""
    check_against_numpy(
        CASES[cid], _mixed_args(rng, cid, dtype0, dtype1), batch=MIXED_BATCH, cid=cid, dtype0=dtype0, dtype1=dtype1
    )


#: The operators, and the functions that have none (a function with an operator builds the same node).
WITH_SCALARS = [
    cid
    for cid, case in CASES.items()
    if case.nin >= 2 and (cid.startswith("op_") or (cid not in ALIASES and cid not in ALIASES.values()))
]
SCALAR_PARAMS = [
    pytest.param(cid, dtype, position, scalar, id=f"{cid}-{dtype}-arg{position}={scalar!r}")
    for cid in WITH_SCALARS
    for dtype in ("float32", "int32", "bool")
    for position in range(CASES[cid].nin)
    for scalar in CASES[cid].domains[position].scalars
]


def _scalar_args(rng, cid, dtype, position, scalar):
    case = CASES[cid]
    dtypes = case.input_dtypes(dtype)
    return [
        scalar if i == position else in_layout(d.sample(rng, (3, 4), dt), "strided")
        for i, (d, dt) in enumerate(zip(case.domains, dtypes))
    ]


#: Compiled back ends build the scalar operands of one op as one program.
SCALAR_BATCH = Batch(
    "test_python_scalar_operand", lambda **p: _prepare(_scalar_args, **p), lambda cid, dtype, position, scalar: cid
)


@pytest.mark.parametrize("cid, dtype, position, scalar", SCALAR_PARAMS)
def test_python_scalar_operand(rng, cid, dtype, position, scalar):
    """A Python scalar in any position is weak, as in NumPy 2: ``float32 * 2.0`` stays float32."""
    check_against_numpy(
        CASES[cid],
        _scalar_args(rng, cid, dtype, position, scalar),
        batch=SCALAR_BATCH,
        cid=cid,
        dtype=dtype,
        position=position,
        scalar=scalar,
    )


@pytest.mark.parametrize(
    "dtype, scalar",
    [
        ("int32", 2**40),
        ("int32", -(2**31) - 1),
        ("int64", 2**63),
    ],
)
def test_python_int_out_of_range(dtype, scalar):
    """NumPy refuses a Python int that does not fit the array's integer dtype (OverflowError); so does exprc."""
    check_against_numpy(CASES["add"], [np.ones((2,), dtype), scalar])


@pytest.mark.backend_independent
def test_python_int_beyond_every_integer_dtype():
    """A Python int no integer dtype holds is refused as soon as it becomes a constant, before any op."""
    with pytest.raises(OverflowError):
        np.ones(2, "int64") + (-(2**63) - 1)
    with pytest.raises(OverflowError, match=r"-9223372036854775809.*out of range of every integer dtype"):
        ex.lvector("x") + (-(2**63) - 1)


@pytest.mark.parametrize(
    "cid, dtype",
    [(cid, dtype) for cid in ("true_divide", "op_truediv", "floor_divide", "mod") for dtype in FLOATS]
    + [("true_divide", "int32")],
)
def test_division_by_zero(cid, dtype):
    """Float division by zero gives NumPy's inf and nan, with their signs, not an error."""
    case = CASES[cid]
    x = np.array([1.0, -1.0, 0.0, np.nan, np.inf, -np.inf, 2.5, -0.0, 1.0, -1.0, 0.0, 3.0])
    y = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -0.0, -0.0, np.inf, np.inf, -np.inf, 2.0])
    if dtype == "int32":
        x, y = np.array([1, -1, 0, 3]), np.array([0, 0, 0, 2])
    x, y = x.astype(dtype), y.astype(dtype)
    with np.errstate(all="ignore"):
        expected = case.oracle(x, y)
    assert np.isnan(expected).any() and (np.isinf(expected).any() or cid == "mod")
    check_against_numpy(case, [x, y])
    a, b = ex.vector("a", dtype), ex.vector("b", dtype)
    got = ex.function([a, b], case.build(a, b), backend=current_backend())(x, y)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(expected), err_msg="signs of zeros and infinities")


@pytest.mark.parametrize("dtype", ["int8", "int32", "int64"])
def test_integer_power_with_a_negative_exponent_raises(dtype):
    """NumPy raises for an integer power with a negative exponent; so does every back end,
    also when the power is fused with other ops (it then stays a NumPy step)."""
    a, b = ex.vector("a", dtype), ex.vector("b", dtype)
    f = ex.function([a, b], a**b + a, backend=current_backend())
    x = np.array([2, 3, -2, 1], dtype=dtype)
    with pytest.raises(ValueError, match="Integers to negative integer powers are not allowed"):
        f(x, np.array([1, -1, 2, 0], dtype=dtype))
    exponent = np.array([0, 3, 2, 5], dtype=dtype)
    np.testing.assert_array_equal(f(x, exponent), x**exponent + x)
    constant = ex.function([a], a**3 + a, backend=current_backend())  # a known exponent stays fused
    np.testing.assert_array_equal(constant(x), x**3 + x)


EXTREMES = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -1e-30, 1e-5, -1e-5, 30.0, -30.0, 100.0, -100.0, 1e30, -1e30]
#: Unary cases NumPy computes on floats; casts of nan and inf to uint32 and uint64 follow no
#: rule in NumPy (its scalar and array casts disagree), so left out.
UNARY_ON_FLOATS = [
    pytest.param(cid, dtype, id=f"{cid}-{dtype}")
    for cid, case in CASES.items()
    for dtype in FLOATS
    if case.nin == 1 and numpy_accepts(case, (dtype,)) and cid not in ("astype_uint32", "astype_uint64")
]


def _extreme_args(rng, cid, dtype):
    return [np.array(EXTREMES, dtype=dtype)]


#: Compiled back ends build the unary ops of one dtype, a dozen to a program.
EXTREME_BATCH = Batch(
    "test_extreme_values",
    lambda **p: _prepare(_extreme_args, **p),
    lambda cid, dtype: (dtype, list(CASES).index(cid) // 12),
)


@pytest.mark.parametrize("cid, dtype", UNARY_ON_FLOATS)
def test_extreme_values(cid, dtype):
    """nan, +-inf, signed zeros, tiny and huge values: no spurious nan or overflow."""
    check_against_numpy(CASES[cid], _extreme_args(None, cid, dtype), batch=EXTREME_BATCH, cid=cid, dtype=dtype)


#: Floats that do not fit an integer type, and some that just do.
BEYOND_INTEGERS = [
    np.nan,
    np.inf,
    -np.inf,
    1e20,
    -1e20,
    2.0**63,
    -(2.0**63),
    2.0**64,
    2.0**31,
    -(2.0**31),
    -(2.0**31) - 1,
    4e9,
    70000.5,
    -200.7,
    300.2,
    -1.0,
    -3.5,
    0.0,
    127.9,
    -128.9,
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("target", ["int8", "int16", "int32", "int64", "uint8", "uint16"])
def test_float_to_integer_cast_of_values_that_do_not_fit(dtype, target):
    """NaN, infinities and out-of-range floats convert as NumPy converts them on x86-64 (the
    smallest int32 or int64, narrower types its low bits), though C leaves it undefined."""
    _, case = astype_case(target)
    check_against_numpy(case, [np.array(BEYOND_INTEGERS, dtype=dtype)])


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("target", ["uint32", "uint64"])
def test_float_to_wide_unsigned_cast_wraps_negative_values(dtype, target):
    """Floats within int64's range convert to uint32 and uint64 as NumPy converts them
    (negative ones wrap), and uint64 takes [2**63, 2**64) exactly."""
    values = [-1.0, -3.5, -(2.0**31), 4e9, 4294967295.0, 0.0, 1.5]
    if target == "uint64":
        values += [-(2.0**40), 2.0**33 + 2.0**20, 2.0**63, 1.5 * 2.0**63]
    check_against_numpy(astype_case(target)[1], [np.array(values, dtype=dtype)])


@pytest.mark.parametrize("value", [2, 2.0, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_astype_of_python_scalar_is_strong(value, dtype):
    """``astype`` gives a value of that dtype, promoting like NumPy's ``np.asarray(value).astype(dtype)``,
    not like a Python scalar any more."""
    case = Case(
        "multiply", lambda v: ex.astype(value, dtype) * v, lambda v: np.asarray(value).astype(dtype) * v, (ANY,)
    )
    check_against_numpy(case, [np.array([1.5, -2.0, 0.25], dtype="float32")])


@pytest.mark.backend_independent
@pytest.mark.parametrize("cid", ALIASES)
def test_aliases_build_the_same_node(cid):
    """An operator or other name builds the very node its function builds (graphs are hash-consed)."""
    alias, target = CASES[cid], CASES[ALIASES[cid]]
    assert alias.name == target.name
    inputs = [ex.vector(f"x{i}", dtype="int32") for i in range(alias.nin)]
    assert alias.build(*inputs) is target.build(*inputs)


@pytest.mark.backend_independent
def test_every_elementwise_op_is_tested():
    """Adding an elementwise op without a row in CASES fails here."""
    tested = {case.name for case in CASES.values()}
    assert set(SCALAR_OPS) - tested == set()
    assert set(ELEMWISE_FUNCTIONS) - set(CASES) == set()
    assert {f"astype_{dtype}" for dtype in DTYPES} <= tested
