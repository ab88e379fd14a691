"""exprc: an optimizing compiler for symbolic tensor expressions.

Build an expression graph with a NumPy-like API, then compile it::

    import exprc as ex
    x = ex.matrix("x")
    y = ex.exp(-x ** 2).sum(axis=1)
    f = ex.function([x], y)
    f([[0.0, 1.0]])          # array([1.36787944])

See ``docs/`` for the user guide.
"""

from . import cuda, linalg, nnet, ops, random
from .check import CheckError, NanGuardError
from .config import config
from .draw import draw
from .dtypes import SUPPORTED as DTYPES
from .forward import Lop, Rop
from .function import Function, MissingInputError, function
from .grad import (
    DisconnectedInputError,
    Rows,
    StopGradient,
    grad,
    hessian,
    hvp,
    jacobian,
    stop_gradient,
)
from .gradcheck import GradientError, verify_grad
from .graph import Apply, Constant, Op, Variable, substitute, toposort
from .inputs import In
from .ops import *  # noqa: F401,F403 - the NumPy-named functions
from .ops import ELEMWISE_FUNCTIONS as _ELEMWISE
from .ops.einsum import einsum, inner, kron, vdot
from .ops.loops import foldl, foldr, fori_loop, ifelse, map, reduce, scan, until, while_loop  # noqa: A004
from .printing import debugprint
from .random import RandomStreams
from .rewrite import RewriteReport, simplify
from .shapes import ShapeError
from .shared import SharedVariable, shared
from .tensor import (
    PREFIXED as _PREFIXED,
)
from .tensor import (
    TensorConstant,
    TensorType,
    TensorVariable,
    as_tensor,
    constant,
    matrix,
    scalar,
    tensor,
    tensor3,
    tensor4,
    vector,
)
from .threads import get_num_threads, num_threads, set_num_threads

globals().update(_PREFIXED)

from .version import __version__  # noqa: E402
