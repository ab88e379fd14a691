"""Checking a symbolic gradient against finite differences: :func:`verify_grad`.

It compiles the function and its gradient, so it sits above :mod:`exprc.function`,
unlike :mod:`exprc.grad`, which only builds graphs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike

from .dtypes import is_float
from .function import function
from .grad import _name, grad
from .printing import to_infix
from .tensor import TensorVariable, as_tensor, tensor


class GradientError(AssertionError):
    """:func:`verify_grad` found a symbolic gradient that disagrees with finite differences."""


#: Per dtype: the finite-difference step, and the absolute and relative tolerances.
TOLERANCES = {"float64": (1e-6, 1e-5, 1e-5), "float32": (3e-3, 1e-2, 1e-2), "float16": (1e-1, 5e-2, 5e-2)}


def verify_grad(
    fn: Callable[..., TensorVariable],
    points: Sequence[ArrayLike],
    n_tests: int = 2,
    rng: np.random.Generator | int | None = None,
    eps: float | None = None,
    abs_tol: float | None = None,
    rel_tol: float | None = None,
    backend: str = "numpy",
) -> None:
    """Check the symbolic gradient of ``fn`` against central finite differences, as Theano's
    ``verify_grad`` does; raise :class:`GradientError` with the worst mismatch.

    ``fn`` takes one symbolic tensor per array of ``points`` (floating-point, any
    layout) and returns a tensor. Its output is projected onto a random tensor to
    give a scalar cost; then, ``n_tests`` times and for each input alone, the
    derivative along a random direction from the symbolic gradient is compared
    with ``(cost(p + eps d) - cost(p - eps d)) / (2 eps)``. A test fails when both
    the absolute and the relative error exceed their tolerances. ``eps`` and the
    tolerances default by the least precise dtype (see :data:`TOLERANCES`).
    ``backend`` compiles the function ("numpy" or "c").

    >>> import numpy as np, exprc as ex
    >>> ex.verify_grad(lambda x: ex.tanh(x) * x, [np.array([0.5, -1.0, 2.0])])
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    arrays = [np.asarray(p) for p in points]
    for i, p in enumerate(arrays):
        if p.dtype.kind != "f":
            raise TypeError(f"verify_grad: point {i} must be a floating-point array, got {p.dtype}")
    inputs = [tensor(f"p{i}", dtype=p.dtype.name, shape=(None,) * p.ndim) for i, p in enumerate(arrays)]
    out = as_tensor(fn(*inputs))
    if not is_float(out.dtype):
        raise TypeError(f"verify_grad: fn must return a floating-point tensor, got {_name(out)} ({out.dtype})")
    value = np.asarray(function(inputs, out, backend=backend)(*arrays))
    dtypes = [p.dtype.name for p in arrays] + [out.dtype]
    least = min(dtypes, key=lambda d: np.finfo(d).bits)
    default_eps, default_abs, default_rel = TOLERANCES[least]
    eps = default_eps if eps is None else eps
    abs_tol = default_abs if abs_tol is None else abs_tol
    rel_tol = default_rel if rel_tol is None else rel_tol

    # The projection is an input, not a constant: checking the same fn again (other points,
    # other shapes) reuses the compiled gradient instead of compiling a new one.
    projection_value = (rng.uniform(0.5, 1.5, size=value.shape) * rng.choice([-1.0, 1.0], size=value.shape)).astype(
        out.dtype
    )
    projection = tensor("projection", dtype=out.dtype, shape=(None,) * value.ndim)
    cost = (out * projection).sum()
    gradients = grad(cost, inputs, disconnected_inputs="ignore")
    with_projection = function(inputs + [projection], [cost] + gradients, backend=backend)

    def compiled(*arrays):
        return with_projection(*arrays, projection_value)

    _, *analytic = compiled(*arrays)
    for i, (p, g) in enumerate(zip(arrays, analytic)):
        if g.shape != p.shape or g.dtype != p.dtype:
            raise GradientError(
                f"verify_grad: the gradient of input {i} has shape {g.shape} and dtype {g.dtype}; "
                f"expected {p.shape} and {p.dtype}"
            )
    worst = None
    for test in range(n_tests):
        for i, p in enumerate(arrays):
            direction = rng.standard_normal(p.shape)
            plus = (p + eps * direction).astype(p.dtype)
            minus = (p - eps * direction).astype(p.dtype)
            step = (plus.astype(np.float64) - minus.astype(np.float64)) / 2  # as rounded to the dtype
            c_plus = float(compiled(*arrays[:i], plus, *arrays[i + 1 :])[0])
            c_minus = float(compiled(*arrays[:i], minus, *arrays[i + 1 :])[0])
            numeric = (c_plus - c_minus) / 2
            symbolic = float(np.sum(analytic[i].astype(np.float64) * step))
            abs_err = abs(numeric - symbolic) / eps
            rel_err = abs(numeric - symbolic) / max(abs(numeric) + abs(symbolic), 1e-300)
            if not (abs_err <= abs_tol or rel_err <= rel_tol) and (worst is None or rel_err > worst[0]):
                worst = (rel_err, abs_err, test, i, symbolic / eps, numeric / eps)
    if worst is not None:
        rel_err, abs_err, test, i, symbolic, numeric = worst
        raise GradientError(
            f"verify_grad: the symbolic gradient of {to_infix(out, limit=80)} with respect to input {i} "
            f"(shape {arrays[i].shape}, {arrays[i].dtype}) disagrees with finite differences: along a random "
            f"direction (test {test}) the symbolic derivative is {symbolic!r}, central differences with "
            f"eps={eps} give {numeric!r}; absolute error {abs_err:.3g} (tolerance {abs_tol}), relative error "
            f"{rel_err:.3g} (tolerance {rel_tol})"
        )
