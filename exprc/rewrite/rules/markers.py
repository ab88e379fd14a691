"""Ops that only mark a graph for :func:`exprc.grad` go once the graph is compiled.

``stop_gradient(x)`` is ``x`` to every value; it matters only while gradients
are taken, which is before a graph is rewritten. Left in, it would cut a fused
kernel in two. Exact: no value changes.
"""

from ...ops.markers import StopGradient
from ..engine import rule


@rule("canonicalize", StopGradient)
def stop_gradient_is_identity(node):
    return node.inputs[0]
