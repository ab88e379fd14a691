"""The back ends of exprc: kernel IR, the C and CUDA renderers, builders, the disk cache.

The front end (``exprc``) hands a back end the graph and the op definitions;
nothing here reaches further into the front end than that.
"""
