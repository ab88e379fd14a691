"""A bounded, thread-safe memo of things built once per process (compiled programs, rewritten
graphs), the least recently used dropped first; and :class:`MemoizedProgram`, what the C and
CUDA back ends' programs share in front of their memoised builds.

>>> memo = Memo(2)
>>> memo.get_or_build("a", lambda: 1), memo.get_or_build("a", lambda: 2)
(1, 1)
"""

import threading
from collections import OrderedDict


class Memo:
    """At most ``size`` values by key; see the module docstring."""

    def __init__(self, size):
        self.size = size
        self._items = OrderedDict()
        self._lock = threading.Lock()

    def get_or_build(self, key, build):
        """The value for ``key``, built by ``build()`` (outside the lock) when absent."""
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
                return value
        value = build()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def clear(self):
        """Forget every value."""
        with self._lock:
            self._items.clear()

    def __len__(self):
        return len(self._items)


class MemoizedProgram:
    """A back end's program in front of its memoised build ``self.compiled``, which has the
    lowered ``program`` and the generated ``source``."""

    @property
    def program(self):
        """The lowered :class:`~exprc.codegen.ir.lower.Program` (kernels and NumPy steps)."""
        return self.compiled.program

    @property
    def source(self):
        """The generated source, its opening comment listing the program's steps."""
        return self.compiled.source

    @property
    def kernel_sources(self):
        """Each kernel's name -> its text in :attr:`source` (empty where the back end keeps none)."""
        return getattr(self.compiled, "kernel_sources", {})

    def listing(self):
        """The generated source for people: where the back end keeps one, without the fixed
        declarations every program shares (:meth:`listing_full` has them)."""
        return getattr(self.compiled, "readable", "") or self.compiled.source

    def listing_full(self):
        """The generated source, whole (as :attr:`source`)."""
        return self.compiled.source
