"""The rewrite rules, one module per purpose; importing this package registers them all."""

from . import algebra, fold, gradients, markers, products, reductions, shapes, specialize, stabilize  # noqa: F401
