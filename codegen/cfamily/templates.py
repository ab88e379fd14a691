"""Fixed C and CUDA text kept in files (``.h``, ``.c``, ``.cuh``) beside the modules that use
it, read once; ``@name@`` marks a field filled in per program.

>>> fill("#define EXPRC_THREADS @threads@", threads=256)
'#define EXPRC_THREADS 256'
"""

from importlib import resources


def read(package, name):
    """The text of file ``name`` of ``package`` (a module's ``__package__``)."""
    return resources.files(package).joinpath(name).read_text(encoding="utf-8")


def fill(template, **fields):
    """``template`` with each ``@name@`` replaced by ``str(fields[name])``."""
    for name, value in fields.items():
        template = template.replace(f"@{name}@", str(value))
    return template
