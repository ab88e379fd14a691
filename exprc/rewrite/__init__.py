"""Graph rewriting: simplification, stabilization and specialization before code is generated.

:func:`simplify` runs the pipeline ``exprc.function`` runs by default and
returns the rewritten graph; with ``report=True`` it also says which rule
fired where. The engine is :mod:`exprc.rewrite.engine`; the rules live in
:mod:`exprc.rewrite.rules`, one module per purpose.
"""

from __future__ import annotations

from typing import Any

from ..tensor import TensorLike, TensorVariable, as_tensor
from . import rules  # noqa: F401 - registers the rules
from .engine import MODES, PHASES, RULES, check_mode, rewrite, rule
from .report import Fired, RewriteReport


def simplify(
    expr: TensorLike | list[TensorLike] | tuple[TensorLike, ...], report: bool = False, rewrites: str | None = "fast"
) -> Any:
    """``expr`` (a variable or a list of them) simplified and stabilized as ``exprc.function``
    would compile it. With ``report=True``, returns ``(simplified, report)``, the report
    listing each rule that fired with the subexpression before and after.

    ``rewrites="exact"`` applies only the rules that change no value (see the docs).

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> y, why = ex.simplify(ex.log(1 + ex.exp(x)) * 1.0, report=True)
    >>> str(y)
    'softplus(x)'
    >>> why.rules()
    ['multiply_by_one', 'log_one_plus', 'log1p_of_exp']
    """
    single = not isinstance(expr, (list, tuple))
    outputs = [as_tensor(v) for v in (expr if isinstance(expr, (list, tuple)) else [expr])]
    fired = RewriteReport()
    result = rewrite(outputs, rewrites, fired)
    result = result[0] if single else result
    return (result, fired) if report else result


__all__ = ["MODES", "PHASES", "RULES", "Fired", "RewriteReport", "check_mode", "rewrite", "rule", "simplify"]
