"""The back ends ``exprc.function`` can compile for, by name, imported on first use.

The front end never imports a back end: it asks this registry, which names each
back end's entry points as ``"module:attribute"`` strings. A back end packaged
elsewhere registers itself the same way.

>>> sorted(CPU_BACKENDS)
['c']
>>> entry_point(CPU_BACKENDS["c"].program).__name__
'CProgram'
"""

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Backend:
    """Where a back end's entry points live.

    ``program``: the class that runs a graph on the CPU (``Program(inputs, outputs)``),
    or, for a device, the :class:`~exprc.function.Function` subclass it returns.
    ``missing``: a function returning why the back end cannot run on this machine, or None.
    ``require``: a function raising the back end's own error where it cannot run here.
    """

    program: str
    missing: str | None = None
    require: str | None = None


#: CPU back ends, chosen with ``exprc.function(..., backend=name)``.
CPU_BACKENDS = {"c": Backend("exprc.codegen.c.program:CProgram", missing="exprc.codegen.c.build:compiler_missing")}

#: Devices, chosen with ``exprc.function(..., device=name)``.
DEVICES = {"cuda": Backend("exprc.codegen.cuda.function:CudaFunction", require="exprc.cuda:require")}


def register_backend(name: str, backend: Backend, device: bool = False) -> None:
    """Make ``backend`` available as ``backend=name`` (or ``device=name``)."""
    (DEVICES if device else CPU_BACKENDS)[name] = backend


def entry_point(path: str):
    """The object that ``"module:attribute"`` names, its module imported if need be."""
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


def missing(backend: Backend) -> str | None:
    """Why ``backend`` cannot run on this machine, or None when it can."""
    return entry_point(backend.missing)() if backend.missing else None


def require(backend: Backend) -> None:
    """Raise, saying what is missing, where ``backend`` cannot run on this machine."""
    if backend.require:
        entry_point(backend.require)()
