"""Whether exprc can compute on an NVIDIA GPU here, and what is missing when it cannot.

``exprc.function(..., device="cuda")`` needs three things: the CUDA driver
(``libcuda.so.1``, installed with NVIDIA's kernel driver), a GPU, and NVRTC,
the run-time CUDA compiler (``pip install exprc[cuda]``, or
``$EXPRC_NVRTC_LIBRARY`` naming a ``libnvrtc.so``).

>>> import exprc as ex
>>> ex.cuda.is_available() in (True, False)
True
>>> ex.cuda.missing() == [] or "cuda" in ex.cuda.missing()[0].lower() or "gpu" in ex.cuda.missing()[0].lower()
True
"""


class CudaUnavailableError(RuntimeError):
    """``device="cuda"`` was asked for where the driver, a GPU or NVRTC is missing."""


def missing():
    """What is missing for ``device="cuda"``: one sentence per missing piece (the driver or
    a GPU, and NVRTC), each saying how to get it; empty when nothing is."""
    from codegen import cuda_driver, nvrtc

    return [reason for reason in (cuda_driver.unavailable_reason(), nvrtc.unavailable_reason()) if reason]


def is_available():
    """Whether ``exprc.function(..., device="cuda")`` has a driver, a GPU and NVRTC; never raises."""
    try:
        return not missing()
    except Exception:  # noqa: BLE001 - a broken installation only means "not available"
        return False


def require():
    """Raise :class:`CudaUnavailableError` naming what is missing, if anything is."""
    problems = missing()
    if problems:
        raise CudaUnavailableError("device='cuda' cannot be used here: " + "; ".join(problems))
