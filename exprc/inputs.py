"""``ex.In``: a function input with a default value or a keyword name, as Theano's ``In``.

>>> import exprc as ex
>>> x, lr = ex.vector("x"), ex.scalar("lr")
>>> step = ex.function([x, ex.In(lr, value=0.1)], x * lr)
>>> step([1.0, 2.0]), step([1.0, 2.0], lr=1.0)
(array([0.1, 0.2]), array([1., 2.]))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .tensor import TensorVariable

_NO_VALUE = object()


@dataclass(frozen=True, eq=False)
class In:
    """An input of :func:`exprc.function` with a default ``value`` (used when a call leaves it
    out) and the keyword ``name`` it is passed by (the variable's own name by default)."""

    variable: TensorVariable
    name: str | None = None
    value: Any = _NO_VALUE
    update: Any = None
    mutable: bool = False
    borrow: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.variable, TensorVariable):
            raise TypeError(f"In: the variable must be a symbolic tensor, got {self.variable!r}")
        if self.update is not None or self.mutable:
            raise NotImplementedError(
                f"In({self.variable}): update= and mutable=True are not supported; "
                "keep state in a shared variable (ex.shared) and pass updates= to ex.function"
            )

    @property
    def has_value(self) -> bool:
        return self.value is not _NO_VALUE

    @property
    def keyword(self) -> str | None:
        return self.name or self.variable.name


def split_inputs(inputs: Any) -> tuple[Any, dict[int, Any], dict[str, int]]:
    """``inputs`` with each :class:`In` replaced by its variable, the default values by
    position, and the keyword names that differ from the variables' own, by position."""
    if not isinstance(inputs, (list, tuple)):
        return inputs, {}, {}
    plain, defaults, keywords = [], {}, {}
    for i, item in enumerate(inputs):
        if isinstance(item, In):
            if item.has_value:
                defaults[i] = item.value
            if item.name and item.name != item.variable.name:
                keywords[item.name] = i
            item = item.variable
        plain.append(item)
    return plain, defaults, keywords
