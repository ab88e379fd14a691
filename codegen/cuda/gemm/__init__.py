"""Matrix products on the GPU: exprc's own GEMM kernels and the choice between them."""
