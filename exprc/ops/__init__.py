"""Every op of exprc and the NumPy-named functions that build them.

Each module holds whole ops: type rule, NumPy reference and printing side by side.

- :mod:`.scalar` / :mod:`.elemwise`: elementwise math, one table row per operation
- :mod:`.shape`: lengths, dimshuffle, reshape, broadcast_to and sum_to, concatenate, zeros, ...
- :mod:`.reduction`: sum, max, ... and mean, var, logsumexp, softmax built from them
- :mod:`.indexing`: slicing, integer-array indexing, set_subtensor / inc_subtensor
- :mod:`.linalg`: matmul, tensordot, dot, outer
- :mod:`.construct`: arange, linspace, eye, diag, diagonal, trace, tril, triu, meshgrid
- :mod:`.rearrange`: tile, repeat, pad, roll, flip, moveaxis, split, take, take_along_axis, ...
- :mod:`.ordering`: sort, argsort, searchsorted, topk
- :mod:`.cumulative`: cumsum, cumprod, cummax, cummin, diff
"""

from types import ModuleType as _ModuleType

from .. import tensor as _tensor
from .construct import (  # noqa: F401
    ARange,
    alloc,
    arange,
    diag,
    diagonal,
    eye,
    identity,
    linspace,
    meshgrid,
    trace,
    tril,
    triu,
    xlogx,
    xlogy0,
)
from .cumulative import CumMax, CumMin, CumProd, CumSum, cummax, cummin, cumprod, cumsum, diff  # noqa: F401
from .elemwise import (  # noqa: F401
    ELEMWISE_FUNCTIONS,
    Elemwise,
    absolute,
    astype,
    clip,
    divide,
    elementwise,
    eq,
    neq,
    round,
    where,
)
from .elemwise import ELEMWISE_FUNCTIONS as _ELEMWISE
from .indexing import (  # noqa: F401
    AdvancedIncSubtensor,
    AdvancedSubtensor,
    IncSubtensor,
    Subtensor,
    getitem,
    inc_subtensor,
    set_subtensor,
)
from .linalg import MatMul, TensorDot, dot, matmul, outer, tensordot  # noqa: F401
from .ordering import (  # noqa: F401
    ArgSort,
    SearchSorted,
    Sort,
    argpartition,
    argsort,
    partition,
    searchsorted,
    sort,
    topk,
    unique,
)
from .rearrange import (  # noqa: F401
    SpecifyShape,
    flip,
    moveaxis,
    pad,
    put_along_axis,
    repeat,
    roll,
    shape_padleft,
    shape_padright,
    specify_broadcastable,
    specify_shape,
    split,
    swapaxes,
    take,
    take_along_axis,
    tile,
)
from .reduction import (  # noqa: F401
    All,
    Any,
    ArgMax,
    ArgMin,
    Max,
    Min,
    Prod,
    Reduce,
    Sum,
    all,
    any,
    argmax,
    argmin,
    log_softmax,
    logsumexp,
    max,
    mean,
    min,
    prod,
    softmax,
    std,
    sum,
    var,
)
from .shape import (  # noqa: F401
    BroadcastTo,
    Concatenate,
    DimShuffle,
    Reshape,
    ShapeI,
    SumToShape,
    broadcast_to,
    concatenate,
    dimshuffle,
    expand_dims,
    flatten,
    full,
    full_like,
    ones,
    ones_like,
    reshape,
    shape_i,
    size,
    squeeze,
    stack,
    transpose,
    zeros,
    zeros_like,
)

globals().update(_ELEMWISE)

# What ``from exprc.ops import *`` gives exprc: the functions and op classes, not the submodules.
__all__ = [name for name, value in globals().items() if not name.startswith("_") and not isinstance(value, _ModuleType)]

# A tensor's operators and methods build ops through these (see exprc.tensor.OPERATIONS).
vars(_tensor.OPERATIONS).update((name, globals()[name]) for name in __all__)
