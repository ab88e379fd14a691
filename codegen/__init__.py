"""The back ends of exprc, installed as ``exprc.codegen``.

``ir`` lowers a graph to kernels; ``cfamily`` holds what the C and CUDA renderers
share; ``c`` and ``cuda`` render, build and call; ``cache`` keeps what was built.
Imports run one way: ``ir`` -> ``cfamily`` -> ``c`` | ``cuda``; ``cache`` needs only
the standard library. ``exprc.function`` reaches ``c`` and ``cuda`` through
:mod:`exprc.backends`.
"""
