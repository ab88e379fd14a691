"""Layers that let programs written for other libraries run on exprc unchanged.

- :mod:`exprc.compat.theano`: Theano's module layout and names (``install()`` makes
  ``import theano`` give exprc).
"""
