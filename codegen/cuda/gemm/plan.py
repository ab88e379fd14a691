"""Matrix products on the GPU: exprc's GEMM kernels, their parameters, grids and source.

:func:`gemm_kernels` lists the kernels (their parameters: :data:`PARAMETERS`), :func:`choose`
picks one for a product, and :func:`grid` gives its one-dimensional grid.
See docs/internals/cuda-gemm.md.

>>> [k.name for k in gemm_kernels()][:4]
['exprc_gemm_f32', 'exprc_gemm_f64', 'exprc_gemm_f32_tile64', 'exprc_gemm_f64_tile64']
>>> grid(kernel_for("float32"), batch=2, m=100, n=300)  # 2 products of 1 x 3 tiles of 128
((6, 1, 1), 256)
"""

from dataclasses import dataclass

import numpy as np

from exprc.codegen.cfamily import templates
from exprc.codegen.cuda.gemm.cores import SOURCE as CORES_SOURCE
from exprc.codegen.cuda.gemm.cores import render_cores
from exprc.codegen.cuda.gemm.mma import render_mma
from exprc.codegen.cuda.gemm.pipelined import LAYOUTS, render_pipelined
from exprc.codegen.cuda.gemm.pipelined import SOURCE as PIPELINED_SOURCE

#: The parameters of every GEMM kernel, in order (each an int64 or a pointer).
PARAMETERS = (
    "batch",
    "m",
    "n",
    "k",
    "a",
    "a_sb",
    "a_sm",
    "a_sk",
    "b",
    "b_sb",
    "b_sk",
    "b_sn",
    "c",
    "c_sb",
    "c_sm",
    "c_sn",
)

#: The most blocks a GEMM launch gets (the kernels loop over the tiles beyond).
MAX_BLOCKS = 2**31 - 1

#: A float32 or float64 product with fewer 128 x 128 tiles than this runs on 64 x 64 tiles:
#: four times as many blocks, for GPUs of a hundred multiprocessors and more (an H100 has
#: 132) that would otherwise sit idle on a product like an MLP layer's 512 x 256.
FEW_TILES = 264


@dataclass(frozen=True)
class GemmKernel:
    """One GEMM kernel: its name, the dtype of A and B (``dtype``, the storage) and of C
    (``out_dtype``), how it computes (``"cores"``, ``"pipelined"``, ``"mma"`` or
    ``"tf32"``), the threads per block it must be launched with, the side of the square tile
    of C a block computes, and for a pipelined kernel the operands' ``layout`` (a key of
    :data:`exprc.codegen.cuda.gemm.pipelined.LAYOUTS`)."""

    name: str
    dtype: str
    out_dtype: str
    method: str
    threads: int
    tile: int
    layout: str = None

    @property
    def exact(self):
        """Whether the kernel computes in the dtype of its inputs (TF32 does not)."""
        return self.method != "tf32"


_KERNELS = (
    GemmKernel("exprc_gemm_f32", "float32", "float32", "cores", 256, 128),
    GemmKernel("exprc_gemm_f64", "float64", "float64", "cores", 256, 128),
    GemmKernel("exprc_gemm_f32_tile64", "float32", "float32", "cores", 256, 64),
    GemmKernel("exprc_gemm_f64_tile64", "float64", "float64", "cores", 256, 64),
    GemmKernel("exprc_gemm_f16", "float16", "float16", "mma", 128, 64),
    GemmKernel("exprc_gemm_bf16", "bfloat16", "bfloat16", "mma", 128, 64),
    GemmKernel("exprc_gemm_f32_tf32", "float32", "float32", "tf32", 128, 64),
) + tuple(
    GemmKernel(f"exprc_gemm_{short}_{layout}", dtype, dtype, "pipelined", 256, 128, layout)
    for dtype, short in (("float16", "f16"), ("bfloat16", "bf16"))
    for layout in LAYOUTS
)


def gemm_kernels():
    """Every GEMM kernel, in the order of :func:`gemm_source`."""
    return list(_KERNELS)


def kernel_for(dtype, allow_tf32=False, layout=None):
    """The kernel computing products of ``dtype`` operands (``"float32"``, ``"float64"``,
    ``"float16"`` or ``"bfloat16"``): float32 goes to the TF32 tensor-core kernel only when
    ``allow_tf32``; half-precision operands to the pipelined kernel of ``layout`` when one is
    given (see :func:`pipelined_layout`). Raises TypeError for any other dtype.

    >>> kernel_for("float32").name, kernel_for("float32", allow_tf32=True).name
    ('exprc_gemm_f32', 'exprc_gemm_f32_tf32')
    >>> kernel_for("bfloat16").name, kernel_for("bfloat16", layout="nt").name
    ('exprc_gemm_bf16', 'exprc_gemm_bf16_nt')
    """
    name = str(dtype)
    if name in ("float16", "bfloat16") and layout is not None:
        wanted = ("pipelined", layout)
    elif name == "float32" and allow_tf32:
        wanted = ("tf32", None)
    else:
        wanted = ({"float32": "cores", "float64": "cores"}.get(name, "mma"), None)
    for kernel in _KERNELS:
        if kernel.dtype == name and (kernel.method, kernel.layout) == wanted:
            return kernel
    raise TypeError(f"no GEMM kernel for {name} operands; expected float32, float64, float16 or bfloat16")


def choose(dtype, m, n, k, a, b, allow_tf32=False, batch=1):
    """The kernel for ``batch`` products of ``dtype`` operands ``a`` and ``b``, each ``(device
    pointer, (batch stride, row stride, column stride))`` as for :func:`pack_gemm_arguments`:
    the pipelined tensor-core kernel where their layout allows it, the CUDA-core kernel of
    64 x 64 tiles for a product of fewer than :data:`FEW_TILES` tiles of 128, else
    :func:`kernel_for`'s.

    >>> choose("float16", 64, 64, 64, (4096, (0, 64, 1)), (8192, (0, 64, 1))).name
    'exprc_gemm_f16_nn'
    >>> choose("float16", 64, 64, 64, (4098, (0, 64, 1)), (8192, (0, 64, 1))).name  # A's rows unaligned
    'exprc_gemm_f16'
    >>> choose("float32", 512, 256, 784, (0, (0, 784, 1)), (0, (0, 256, 1))).name  # 8 tiles of 128
    'exprc_gemm_f32_tile64'
    """
    layout = pipelined_layout(m, n, k, a, b) if str(dtype) in ("float16", "bfloat16") else None
    kernel = kernel_for(dtype, allow_tf32, layout)
    small = small_tiles(kernel)
    if small is not None and grid(kernel, batch, m, n)[0][0] < FEW_TILES:
        return small
    return kernel


def small_tiles(kernel):
    """The version of CUDA-core ``kernel`` on 64 x 64 tiles, which :func:`choose` takes for a
    product of few tiles; None for the other kernels.

    >>> small_tiles(kernel_for("float64")).name, small_tiles(kernel_for("float16"))
    ('exprc_gemm_f64_tile64', None)
    """
    if kernel.method != "cores" or kernel.tile == 64:
        return None
    return next(k for k in _KERNELS if k.method == "cores" and k.dtype == kernel.dtype and k.tile == 64)


def pipelined_layout(m, n, k, a, b):
    """The layout name (``"nn"``, ``"nt"``, ``"tn"`` or ``"tt"``) of operands ``a`` (``m x k``)
    and ``b`` (``k x n``) of 16-bit elements, or None where a pipelined kernel cannot read
    them: each must be contiguous along one of its axes, that axis' length a multiple of 8,
    and its address and other strides multiples of 16 bytes, so that every 8 elements along
    it are one aligned 16-byte copy.

    >>> pipelined_layout(64, 32, 16, (0, (0, 16, 1)), (0, (0, 1, 16)))  # B a transpose
    'nt'
    >>> pipelined_layout(64, 32, 12, (0, (0, 12, 1)), (0, (0, 32, 1))) is None  # k of 12
    True
    """
    a_axis = _contiguous_axis(a, m, k)
    b_axis = _contiguous_axis((b[0], (b[1][0], b[1][2], b[1][1])), n, k)
    if a_axis is None or b_axis is None:
        return None
    return ("n" if a_axis == "k" else "t") + ("t" if b_axis == "k" else "n")


def _contiguous_axis(operand, outer, k):
    """``"k"`` or ``"outer"``: the axis along which ``operand`` (``(ptr, (batch stride, outer
    stride, k stride))`` of 16-bit elements) is read in aligned chunks of 8 elements; None
    when neither is."""
    ptr, (s_batch, s_outer, s_k) = operand
    if ptr % 16 or s_batch % 8:
        return None
    if s_k == 1 and k % 8 == 0 and s_outer % 8 == 0:
        return "k"
    if s_outer == 1 and outer % 8 == 0 and s_k % 8 == 0:
        return "outer"
    return None


def pack_gemm_arguments(batch, m, n, k, a, b, c):
    """The kernel's parameters as one int64 array (see :data:`PARAMETERS`): ``a``, ``b`` and
    ``c`` are each ``(device pointer, (batch stride, row stride, column stride))`` in elements.

    >>> pack_gemm_arguments(1, 2, 3, 4, (4096, (0, 4, 1)), (8192, (0, 3, 1)), (12288, (6, 3, 1))).tolist()
    [1, 2, 3, 4, 4096, 0, 4, 1, 8192, 0, 3, 1, 12288, 6, 3, 1]
    """
    values = [batch, m, n, k]
    for what, (ptr, strides) in zip("abc", (a, b, c)):
        if len(strides) != 3:
            raise ValueError(f"GEMM operand {what}: expected 3 strides (batch, row, column), got {list(strides)}")
        values += [ptr, *strides]
    return np.array([int(v) for v in values], dtype=np.int64)


def grid(kernel, batch, m, n):
    """``((blocks, 1, 1), threads per block)`` for ``batch`` products of ``m x n`` results:
    a block per tile, at least one, at most :data:`MAX_BLOCKS`."""
    tiles = max(1, batch) * -(-m // kernel.tile) * -(-n // kernel.tile)
    return (min(max(1, tiles), MAX_BLOCKS), 1, 1), kernel.threads


# --- the source ---------------------------------------------------------------------------------

#: What every GEMM program starts with: types, conversions, the mma wrappers (in prelude.cuh).
PRELUDE = templates.read(__package__, "prelude.cuh").removesuffix("\n")

_SIGNATURE = """\
extern "C" __global__ void __launch_bounds__({threads}) {name}(
        const int64_t batch, const int64_t m, const int64_t n, const int64_t k,
        const {t} *__restrict__ a, const int64_t a_sb, const int64_t a_sm, const int64_t a_sk,
        const {t} *__restrict__ b, const int64_t b_sb, const int64_t b_sk, const int64_t b_sn,
        {t} *__restrict__ c, const int64_t c_sb, const int64_t c_sm, const int64_t c_sn)"""

_C_TYPES = {"float32": "float", "float64": "double", "float16": "exprc_bits16", "bfloat16": "exprc_bits16"}

_RENDERERS = {"cores": render_cores, "pipelined": render_pipelined, "mma": render_mma, "tf32": render_mma}


def render_gemm(kernel):
    """The CUDA source of one :class:`GemmKernel` (without :data:`PRELUDE` and the templates)."""
    signature = _SIGNATURE.format(threads=kernel.threads, name=kernel.name, t=_C_TYPES[kernel.dtype])
    return _RENDERERS[kernel.method](kernel, signature)


def gemm_source(kernels=None):
    """The CUDA source of ``kernels`` (default: every GEMM kernel), with :data:`PRELUDE` and
    the templates they instantiate.

    >>> "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32" in gemm_source()
    True
    """
    kernels = gemm_kernels() if kernels is None else kernels
    methods = {k.method for k in kernels}
    parts = [PRELUDE]
    if "cores" in methods:
        parts.append(CORES_SOURCE)
    if "pipelined" in methods:
        parts.append(PIPELINED_SOURCE)
    return "\n\n".join(parts + [render_gemm(k) for k in kernels]) + "\n"
