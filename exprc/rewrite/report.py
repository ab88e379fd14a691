"""What a rewrite did: each rule that fired, with the subexpression before and after."""

from ..printing import to_infix


class Fired:
    """One rewrite that fired: the rule, and the subexpression before and after (as text;
    the variables are ``before_var`` and ``after_var``)."""

    __slots__ = ("rule", "before_var", "after_var")

    def __init__(self, rule, before_var, after_var):
        self.rule, self.before_var, self.after_var = rule, before_var, after_var

    @property
    def before(self):
        return short_infix(self.before_var)

    @property
    def after(self):
        return short_infix(self.after_var)

    def __repr__(self):
        return f"Fired({self.rule!r}, {self.before!r}, {self.after!r})"

    def __reduce__(self):
        # A pickled report (part of a pickled function) keeps the text, not the graphs.
        return (Fired, (self.rule, self.before, self.after))

    def __str__(self):
        return f"{self.rule}: {self.before}  ->  {self.after}"


class RewriteReport(list):
    """The rewrites that fired, in order (a list of :class:`Fired`); prints one per line."""

    def __str__(self):
        return "\n".join(map(str, self)) if self else "(no rewrite fired)"

    def rules(self):
        """The names of the rules that fired, each once, in the order they first fired."""
        return list(dict.fromkeys(f.rule for f in self))


def short_infix(var, limit=100):
    """``var`` as infix text (a string passes through), cut to ``limit`` characters."""
    if isinstance(var, str):
        return var
    text = to_infix(var, limit=40)
    return text if len(text) <= limit else text[: limit - 1] + "…"
