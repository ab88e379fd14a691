"""Static shapes: broadcasting them, and normalizing ``axis`` arguments.

A static length is an int or None (unknown until run time). These helpers
apply NumPy's rules to what is known and raise :class:`ShapeError` for a
conflict that is visible when the graph is built.
"""

import numpy as np


class ShapeError(ValueError):
    """Shapes that cannot work together, found when the graph is built or run."""


def fmt_shape(shape):
    """``(None, 3)`` printed as ``(?, 3)``."""
    inner = ", ".join("?" if d is None else str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def broadcast_shapes(shapes, names=None, what="broadcast"):
    """The static shape NumPy broadcasting gives ``shapes``, or ShapeError.

    ``names`` (one per shape) make the error say which inputs disagree. They
    may be the variables themselves: they are turned into text only for an
    error, which keeps building a deep graph from costing a walk per node.

    >>> broadcast_shapes([(None, 1), (3,)])
    (None, 3)
    """
    names = names or [f"input {i}" for i in range(len(shapes))]
    ndim = max((len(s) for s in shapes), default=0)
    padded = [(1,) * (ndim - len(s)) + tuple(s) for s in shapes]
    out = []
    for axis in range(ndim):
        known = [(s[axis], i) for i, s in enumerate(padded) if s[axis] is not None and s[axis] != 1]
        for length, i in known[1:]:
            if length != known[0][0]:
                j = known[0][1]
                raise ShapeError(
                    f"{what}: shapes {fmt_shape(shapes[j])} ({names[j]}) and "
                    f"{fmt_shape(shapes[i])} ({names[i]}) do not broadcast: "
                    f"axis {axis - ndim} has lengths {known[0][0]} and {length}"
                )
        if known:
            out.append(known[0][0])
        elif any(s[axis] is None for s in padded):
            out.append(None)
        else:
            out.append(1)
    return tuple(out)


def normalize_axis(axis, ndim, what="axis"):
    """``axis`` (int, negative int, tuple or None) as a sorted tuple of non-negative ints.

    >>> normalize_axis(-1, 3)
    (2,)
    >>> normalize_axis(None, 2)
    (0, 1)
    """
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise TypeError(f"{what}: axis must be an int, a tuple of ints or None, got {axis!r}")
        if not -ndim <= a < ndim:
            raise np.exceptions.AxisError(f"{what}: axis {a} is out of bounds for a tensor of {ndim} dimensions")
        a = int(a) % ndim
        if a in out:
            raise ValueError(f"{what}: axis {axis!r} names axis {a} twice")
        out.append(a)
    return tuple(sorted(out))
