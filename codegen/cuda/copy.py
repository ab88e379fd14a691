"""Copying device arrays on the device: a C-contiguous copy of any strided array.

Copies are needed where a program returns a view or an input (the caller owns
what it gets), before reshaping an array that is not contiguous, and for
foreign arrays whose layout a kernel cannot read. A contiguous array is copied
with ``cuMemcpyDtoD``; any other by a copy kernel of the kernel IR, one per
item size (copying bits: ``uint8`` ... ``uint64``, so one kernel serves bool,
int8 and uint8 alike) and rank up to :data:`MAX_RANK`, rendered and compiled
like every other kernel and cached on disk. Ranks beyond it go through the host.

>>> [k.name for k in copy_kernels()][:3]
['exprc_copy_u8_1d', 'exprc_copy_u8_2d', 'exprc_copy_u8_3d']
"""

from exprc.codegen.cuda.array import empty, to_device
from exprc.codegen.cuda.build import KernelModule
from exprc.codegen.cuda.launch import launch, launch_shape, pack_arguments
from exprc.codegen.cuda.recording import note_copy
from exprc.codegen.ir import kernel as ir
from exprc.codegen.ir.call_plan import canonical_axes

#: The highest rank a copy kernel handles (axes merge first, so few arrays need more).
MAX_RANK = 6

_BITS = {1: "uint8", 2: "uint16", 4: "uint32", 8: "uint64"}


def copy_kernel(itemsize, ndim):
    """The kernel copying ``ndim``-d arrays of ``itemsize``-byte items."""
    dtype = _BITS[itemsize]
    src, out = ir.Buffer("src", dtype, ndim), ir.Buffer("out", dtype, ndim, output=True)
    return ir.Kernel(
        f"exprc_copy_u{itemsize * 8}_{ndim}d",
        ndim,
        (src, out),
        ((out, ir.Load(src, "src")),),
        note=f"a copy of {itemsize}-byte items",
        computes=("src",),
    )


def copy_kernels():
    """Every copy kernel, in the order of the program that holds them."""
    return [copy_kernel(size, ndim) for size in _BITS for ndim in range(1, MAX_RANK + 1)]


def _source():
    from exprc.codegen.cuda.render import render_program

    return render_program(copy_kernels(), "exprc copy kernels: a C-contiguous copy of a strided array")


#: The copy kernels, loaded once per GPU.
KERNELS = KernelModule("exprc_copy.cu", _source, lambda: [k.name for k in copy_kernels()])


def contiguous_copy(x):
    """A new C-contiguous :class:`DeviceArray` with the values of ``x``.

    >>> contiguous_copy(to_device(np.arange(6).reshape(2, 3)).T).get()  # doctest: +SKIP
    array([[0, 3],
           [1, 4],
           [2, 5]])
    """
    from exprc.codegen.cuda import driver

    out = empty(x.shape, x.dtype, device_id=x.device_id)
    if x.size == 0:
        return out
    driver.use_device(x.device_id)
    if x.flags.c_contiguous:
        note_copy()
        driver.call("cuMemcpyDtoD_v2", out.ptr, x.ptr, x.nbytes)
        return out
    if x.ndim > MAX_RANK or not x.flags.aligned or x.itemsize not in _BITS:
        return to_device(x.get(), x.device_id)
    kernel = copy_kernel(x.itemsize, x.ndim)
    src = [s // x.itemsize if n != 1 else 0 for n, s in zip(x.shape, x.strides)]
    dst = [s // x.itemsize for s in out.strides]
    lengths, (src, dst), contiguous = canonical_axes(x.shape, [src, dst], [list(range(x.ndim))])
    arguments = pack_arguments(kernel, lengths, contiguous, [(x.ptr, src), (out.ptr, dst)])
    launch(KERNELS.functions(x.device_id)[kernel.name], arguments, *launch_shape(kernel, lengths))
    return out
