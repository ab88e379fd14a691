"""What a rewrite did: each rule that fired, with the subexpression before and after."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..printing import to_infix

if TYPE_CHECKING:
    from ..graph import Variable


class Fired:
    """One rewrite that fired: the rule, and the subexpression before and after (as text;
    the variables are ``before_var`` and ``after_var``)."""

    __slots__ = ("rule", "before_var", "after_var")

    def __init__(self, rule: str, before_var: Variable | str, after_var: Variable | str) -> None:
        self.rule, self.before_var, self.after_var = rule, before_var, after_var

    @property
    def before(self) -> str:
        return short_infix(self.before_var)

    @property
    def after(self) -> str:
        return short_infix(self.after_var)

    def __repr__(self) -> str:
        return f"Fired({self.rule!r}, {self.before!r}, {self.after!r})"

    def __reduce__(self) -> tuple[type[Fired], tuple[str, str, str]]:
        # A pickled report (part of a pickled function) keeps the text, not the graphs.
        return (Fired, (self.rule, self.before, self.after))

    def __str__(self) -> str:
        return f"{self.rule}: {self.before}  ->  {self.after}"


class RewriteReport(list[Fired]):
    """The rewrites that fired, in order (a list of :class:`Fired`); prints one per line.

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> print(ex.simplify(x * 1.0, report=True)[1])
    multiply_by_one: x * 1.0  ->  x
    """

    def __str__(self) -> str:
        return "\n".join(map(str, self)) if self else "(no rewrite fired)"

    def rules(self) -> list[str]:
        """The names of the rules that fired, each once, in the order they first fired.

        >>> import exprc as ex
        >>> x = ex.vector("x")
        >>> ex.simplify(-(-x) * 1.0, report=True)[1].rules()
        ['double_negation', 'multiply_by_one']
        """
        return list(dict.fromkeys(f.rule for f in self))


def short_infix(var: Variable | str, limit: int = 100) -> str:
    """``var`` as infix text (a string passes through), cut to ``limit`` characters."""
    if isinstance(var, str):
        return var
    text = to_infix(var, limit=40)
    return text if len(text) <= limit else text[: limit - 1] + "…"
