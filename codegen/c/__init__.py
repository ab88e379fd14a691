"""The C back end: render kernels and entry points as C, build them with the system
compiler, load them with cffi, and call them (``exprc.function(..., backend="c")``)."""
