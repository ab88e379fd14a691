"""The CUDA back end: NVRTC and driver bindings, device arrays, the memory pool, kernel
rendering, launching and replaying, GEMM kernels (``exprc.function(..., device="cuda")``)."""
