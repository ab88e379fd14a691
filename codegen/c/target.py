"""The C back end as lowering sees it (:class:`~exprc.codegen.ir.target.Target`): the formula
table's dtypes and operations, the names C code keeps for itself, and how it lowers each op type."""

from exprc.codegen.c.lowerings import C_LOWERINGS
from exprc.codegen.cfamily.formulas import C_DTYPES, has_c
from exprc.codegen.cfamily.names import C_LOCALS, C_WORDS, DERIVED, LIBM_WORDS, reserved_by
from exprc.codegen.ir.target import Target

TARGET = Target("c", C_DTYPES, has_c, reserved_by(C_WORDS | LIBM_WORDS | C_LOCALS, DERIVED), C_LOWERINGS)
