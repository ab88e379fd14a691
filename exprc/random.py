"""Random numbers in the graph: ``ex.random.RandomStream`` (also ``ex.RandomStreams``).

A stream makes symbolic random tensors with NumPy ``Generator``'s argument order. Its
state, a shared uint64 ``[seed, calls]``, moves on by one call each time a compiled
function that draws from it runs (``ex.function`` adds ``stream.updates()``
unless told ``no_default_updates=True``); every value is a function of
the seed, the draw, the call count and the element's index (Philox4x32-10), so every
back end gives the same bits. See ``docs/random.md``.

>>> import exprc as ex
>>> srng = ex.random.RandomStream(seed=42)
>>> u = srng.uniform(size=(3,))
>>> f = ex.function([], u, backend="numpy")
>>> a, b = f(), f()
>>> bool((a != b).all()), srng.state.get_value()[1]
(True, np.uint64(2))
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import numpy as np

from .ops.random import (
    DEFAULT_UPDATES,
    RandomDraw,
    default_updates,
    float_dtype,
    integer_parameter,
    size_lengths,
)
from .shared import SharedVariable, shared
from .tensor import TensorLike, TensorVariable, as_tensor

__all__ = ["RandomStream", "RandomStreams", "default_updates"]

_ONE_CALL = np.array([0, 1], dtype=np.uint64)


class RandomStream:
    """A stream of random draws; ``seed`` is an int in [0, 2**64) or None (from the OS).

    >>> import exprc as ex
    >>> srng = ex.random.RandomStream(seed=1)
    >>> srng.normal(0.0, 2.0, size=(2, 3)).type
    TensorType(float64, (2, 3))
    """

    def __init__(self, seed: int | None = None):
        self.state: SharedVariable = shared(np.array([_checked_seed(seed), 0], dtype=np.uint64), name="rng_state")
        # The update ex.function applies when the graph draws from this stream (Theano's default_update).
        DEFAULT_UPDATES[self.state] = self.state + _ONE_CALL
        self._draws = 0

    def seed(self, seed: int | None = None) -> None:
        """Start the stream again from ``seed``: the calls that follow repeat those after construction."""
        self.state.set_value(np.array([_checked_seed(seed), 0], dtype=np.uint64))

    def updates(self) -> list[tuple[SharedVariable, TensorVariable]]:
        """The ``(state, new state)`` pair to pass to ``ex.function(..., updates=...)``."""
        return [(self.state, DEFAULT_UPDATES[self.state])]

    def __getstate__(self):
        return {"state": self.state, "draws": self._draws}

    def __setstate__(self, saved):
        self.state, self._draws = saved["state"], saved["draws"]
        DEFAULT_UPDATES[self.state] = self.state + _ONE_CALL

    def _draw(self, dist, dtype, size, params, **options):
        what = f"random {dist}"
        lengths = size_lengths(size, what)
        op = RandomDraw(dist, self._draws, dtype, -1 if lengths is None else len(lengths), **options)
        self._draws += 1
        return op(self.state, *(lengths or ()), *params)

    def uniform(self, low: TensorLike = 0.0, high: TensorLike = 1.0, size=None, dtype=None) -> TensorVariable:
        """Uniform draws in [low, high); float32 parameters give float32 draws."""
        low, high = as_tensor(low), as_tensor(high)
        dtype = float_dtype(dtype, [low, high], "random uniform")
        return self._draw("uniform", dtype, size, [low.astype(dtype), high.astype(dtype)])

    def normal(self, loc: TensorLike = 0.0, scale: TensorLike = 1.0, size=None, dtype=None) -> TensorVariable:
        """Normal draws of mean ``loc`` and standard deviation ``scale`` (Box-Muller)."""
        loc, scale = as_tensor(loc), as_tensor(scale)
        dtype = float_dtype(dtype, [loc, scale], "random normal")
        return self._draw("normal", dtype, size, [loc.astype(dtype), scale.astype(dtype)])

    def truncated_normal(self, loc: TensorLike = 0.0, scale: TensorLike = 1.0, size=None, dtype=None) -> TensorVariable:
        """Normal draws kept within two standard deviations of ``loc`` (as TensorFlow's and JAX's)."""
        loc, scale = as_tensor(loc), as_tensor(scale)
        dtype = float_dtype(dtype, [loc, scale], "random truncated_normal")
        return self._draw("truncated_normal", dtype, size, [loc.astype(dtype), scale.astype(dtype)])

    def bernoulli(self, p: TensorLike, size=None) -> TensorVariable:
        """Booleans, True with probability ``p`` (a 32-bit word below ``ceil(p * 2**32)``)."""
        return self._draw("bernoulli", "bool", size, [as_tensor(p).astype("float64")])

    def binomial(self, n: TensorLike, p: TensorLike, size=None, dtype="int64") -> TensorVariable:
        """Binomial draws: successes in ``n`` trials of probability ``p``."""
        n = integer_parameter(n, "random binomial", "n")
        return self._draw("binomial", np.dtype(dtype).name, size, [n, as_tensor(p).astype("float64")])

    def integers(self, low: TensorLike, high: TensorLike | None = None, size=None, dtype="int64") -> TensorVariable:
        """Integers in [low, high) (in [0, low) when ``high`` is None), as NumPy's ``integers``."""
        if high is None:
            low, high = 0, low
        low = integer_parameter(low, "random integers", "low")
        high = integer_parameter(high, "random integers", "high")
        if _known(low) is not None and _known(high) is not None and (_known(low) >= _known(high)).any():
            raise ValueError(f"random integers: low must be below high, got low={_known(low)} >= high={_known(high)}")
        return self._draw("integers", np.dtype(dtype).name, size, [low, high])

    def choice(self, a, size=None, replace: bool = True, p=None) -> TensorVariable:
        """Samples of ``a`` (an int n: of ``range(n)``; an array: of its first axis), as NumPy's."""
        values = None
        if isinstance(a, (int, np.integer)):
            count = as_tensor(int(a))
        else:
            values = as_tensor(a)
            count = values.shape[0] if values.type.shape[0] is None else as_tensor(values.type.shape[0])
        params = [count.astype("int64")] + ([] if p is None else [as_tensor(p).astype("float64")])
        index = self._draw("choice", "int64", () if size is None else size, params, replace=bool(replace))
        return index if values is None else values[index]

    def permutation(self, x) -> TensorVariable:
        """A random ordering of ``range(x)`` for an int, or of the first axis of a tensor ``x``."""
        if isinstance(x, (int, np.integer)) or (isinstance(x, TensorVariable) and x.ndim == 0):
            return self._draw("permutation", "int64", None, [as_tensor(x).astype("int64")])
        x = as_tensor(x)
        order = self._draw("permutation", "int64", None, [x.shape[0].astype("int64")])
        return x[order]

    def multinomial(self, n: int, pvals: Sequence[float] | np.ndarray, size=None) -> TensorVariable:
        """Counts of ``n`` trials over the categories of ``pvals`` (shape ``size + (len(pvals),)``)."""
        n = integer_parameter(n, "random multinomial", "n")
        pvals = as_tensor(pvals).astype("float64")
        if pvals.ndim != 1 or pvals.type.shape[0] is None:
            raise ValueError(f"random multinomial: pvals must be a vector of known length, got {pvals.type}")
        return self._draw("multinomial", "int64", () if size is None else size, [n, pvals])


#: Theano's name for a stream.
RandomStreams = RandomStream


def _known(v):
    return getattr(v, "value", None)


def _checked_seed(seed):
    if seed is None:
        return secrets.randbits(64)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**64:
        raise ValueError(f"RandomStream: seed must be an int in [0, 2**64) or None, got {seed!r}")
    return int(seed)
