"""``python -m exprc.cache``: list, size or clear the disk cache (see :mod:`exprc.codegen.cache.command`)."""

import sys

from .codegen.cache.command import main

if __name__ == "__main__":
    sys.exit(main())
