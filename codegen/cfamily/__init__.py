"""What the C and CUDA renderers share: the scalar formula table and the kernel text writer."""
