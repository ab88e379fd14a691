"""Ops that change no value but mark the graph for :func:`exprc.grad`.

The rewrites remove them before code is generated (:mod:`exprc.rewrite.rules.markers`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..graph import Apply, Constant, Op
from ..printing import ATOM, call_text
from ..tensor import TensorLike, TensorVariable, as_tensor


@dataclass(frozen=True)
class StopGradient(Op):
    """The identity, through which no gradient flows."""

    def make_node(self, x):
        return Apply(self, [x], [x.type])

    def perform(self, node, inputs):
        return [np.asarray(inputs[0])]

    def grad(self, node, output_grads):
        return [None]

    def infix(self, node, show):
        return call_text("stop_gradient", show(node.inputs[0])), ATOM


def stop_gradient(x: TensorLike) -> TensorVariable:
    """``x`` itself, but treated as a constant by :func:`exprc.grad` (JAX's ``stop_gradient``).

    >>> import exprc as ex
    >>> x = ex.scalar("x")
    >>> ex.grad(x * ex.stop_gradient(x), x).eval({x: 3.0})
    array(3.)
    """
    x = as_tensor(x)
    return x if isinstance(x, Constant) else StopGradient()(x)
