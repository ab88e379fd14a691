"""Lowering a graph to kernels: the kernel IR, programs of kernels and host steps,
segments, row passes and row chains. Knows the front end's graph and ops, no renderer."""
