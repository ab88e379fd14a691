"""The CUDA back end as lowering sees it (:class:`~exprc.codegen.ir.target.Target`): the
formula table's dtypes and operations (as the C back end's), and the names CUDA C++ code
keeps for itself."""

from exprc.codegen.cfamily.formulas import C_DTYPES, has_c
from exprc.codegen.cfamily.names import (
    C_LOCALS,
    C_WORDS,
    CUDA_VECTOR_TYPES,
    CUDA_WORDS,
    DERIVED,
    LIBM_WORDS,
    reserved_by,
)
from exprc.codegen.cuda.lowerings import CUDA_LOWERINGS
from exprc.codegen.ir.target import Target

TARGET = Target(
    "cuda",
    C_DTYPES,
    has_c,
    reserved_by(C_WORDS | LIBM_WORDS | C_LOCALS | CUDA_WORDS, DERIVED, CUDA_VECTOR_TYPES),
    CUDA_LOWERINGS,
)
