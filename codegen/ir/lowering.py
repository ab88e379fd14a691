"""How a back end lowers each op type: one registration per op type and back end.

Each back end fills a :class:`LoweringTable` (``exprc.codegen.c.lowerings``,
``exprc.codegen.cuda.lowerings``), and :func:`exprc.codegen.ir.lower.lower` asks it,
rather than testing op classes one by one, which nodes become kernels. A lookup
walks the op's class hierarchy, as :func:`functools.singledispatch` does.

>>> from exprc.ops.reduction import Reduce, Sum
>>> table = LoweringTable("example")
>>> table.register(Sum, kind=Kind.REDUCTION, combine="add")
>>> table.lookup(Sum).combine, table.lookup(Reduce)
('add', None)
"""

import enum
from collections.abc import Callable
from dataclasses import dataclass

from exprc.ops.reduction import All, Any, Max, Min, Prod, Sum


class Kind(enum.Enum):
    """What a back end makes of a node."""

    #: part of a fused elementwise kernel (its scalar formula from the back end's table)
    ELEMENTWISE = "elementwise kernel"
    #: the reduction of a fused kernel (``combine`` names the scalar op that combines terms)
    REDUCTION = "reduction kernel"
    #: a view of its input: new shape and strides over the same memory, no copy
    VIEW = "view"
    #: computed from its input's shape alone, never reading the data
    SHAPE = "shape"
    #: a library call (``library`` names it): BLAS through NumPy, or exprc's GEMM kernels
    LIBRARY = "library call"
    #: the op's NumPy reference run on the host, between the program's kernels
    HOST = "host step"


@dataclass(frozen=True)
class Lowering:
    """How one back end lowers one op type; ``run`` is the back end's step for it, if any."""

    kind: Kind
    combine: str | None = None
    library: str | None = None
    run: Callable | None = None


class LoweringTable:
    """Op type -> :class:`Lowering`, for the back end ``name``. An op type no one registered
    (a user's own op) runs its NumPy reference on the host, as every op can."""

    def __init__(self, name: str):
        self.name = name
        self._entries: dict[type, Lowering] = {}

    def register(
        self,
        *op_types: type,
        kind: Kind,
        combine: str | None = None,
        library: str | None = None,
        run: Callable | None = None,
    ) -> None:
        """Lower every op of ``op_types`` (and of their subclasses, unless registered too) as ``kind``."""
        for op_type in op_types:
            self._entries[op_type] = Lowering(kind, combine, library, run)

    def lookup(self, op_type: type) -> Lowering | None:
        """The lowering registered for ``op_type`` or its nearest base class; None when there is none."""
        for base in op_type.__mro__:
            found = self._entries.get(base)
            if found is not None:
                return found
        return None

    def of(self, op) -> Lowering:
        """The lowering of op instance ``op``: the registered one, else a host step."""
        return self.lookup(type(op)) or HOST_STEP

    def kind(self, op) -> Kind:
        return self.of(op).kind


def numpy_only_ops() -> tuple[type, ...]:
    """Op types no back end has kernels for yet, which each back end registers as host steps
    (a later registration of a kernel replaces it): NumPy's sort, search and cumulative loops,
    LAPACK through numpy.linalg, and convolution and pooling as im2col and window reductions."""
    from exprc.ops.construct import ARange
    from exprc.ops.conv import Conv, ConvGradFilters, ConvGradInput
    from exprc.ops.cumulative import CumMax, CumMin, CumProd, CumSum
    from exprc.ops.decompositions import (
        QR,
        SVD,
        Cholesky,
        Det,
        Eigh,
        Inv,
        Lstsq,
        SlogDet,
        Solve,
        SolveTriangular,
        Triangle,
    )
    from exprc.ops.ordering import ArgSort, SearchSorted, Sort
    from exprc.ops.pool import AveragePoolGrad, MaxPoolGrad, MaxPoolGradGrad, Pool

    return (
        ARange,
        Sort,
        ArgSort,
        SearchSorted,
        CumSum,
        CumProd,
        CumMax,
        CumMin,
        Conv,
        ConvGradInput,
        ConvGradFilters,
        Pool,
        MaxPoolGrad,
        AveragePoolGrad,
        MaxPoolGradGrad,
        Solve,
        SolveTriangular,
        Inv,
        Det,
        SlogDet,
        Cholesky,
        Eigh,
        SVD,
        QR,
        Lstsq,
        Triangle,
    )


def combining_ops() -> dict[type, str]:
    """Reduce op type -> the scalar op that combines its terms, the same for every back end."""
    return {Sum: "add", Prod: "mul", Max: "max", Min: "min", All: "and", Any: "or"}


#: What an op no back end registered becomes.
HOST_STEP = Lowering(Kind.HOST)
