"""Settings read when graphs are built: ``ex.config.floatX``, the default float dtype of the
input constructors (``ex.vector``, ``ex.matrix``, ``ex.tensor``...) and of ``ex.zeros`` and
``ex.ones``, as Theano's ``config.floatX`` is. Arrays passed in keep their own dtypes.

>>> import exprc as ex
>>> with ex.config.change(floatX="float32"):
...     ex.vector("x").dtype
'float32'
>>> ex.vector("x").dtype
'float64'
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

FLOAT_DTYPES = ("float16", "float32", "float64")


class Config:
    """exprc's settings; one instance, :data:`config`. ``$EXPRC_FLOATX`` sets the starting floatX."""

    def __init__(self) -> None:
        self._float_x = "float64"
        self.floatX = os.environ.get("EXPRC_FLOATX", "float64")

    @property
    def floatX(self) -> str:  # noqa: N802 - Theano's name
        return self._float_x

    @floatX.setter
    def floatX(self, value: str) -> None:  # noqa: N802
        if value not in FLOAT_DTYPES:
            raise ValueError(f"config.floatX must be one of {', '.join(FLOAT_DTYPES)}, got {value!r}")
        self._float_x = value

    @contextlib.contextmanager
    def change(self, **settings: str) -> Iterator[Config]:
        """Change settings inside a ``with`` block, restoring them after it."""
        unknown = sorted(set(settings) - {"floatX"})
        if unknown:
            raise AttributeError(f"config has no setting {', '.join(unknown)}; settings: floatX")
        before = {name: getattr(self, name) for name in settings}
        try:
            for name, value in settings.items():
                setattr(self, name, value)
            yield self
        finally:
            for name, value in before.items():
                setattr(self, name, value)

    def __repr__(self) -> str:
        return f"Config(floatX={self.floatX!r})"


config = Config()
