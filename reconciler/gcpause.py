"""Pause Python's cyclic garbage collector while the compiler builds large acyclic structures.

Building a mesh index or a 10,000-service snapshot allocates millions of small objects that refcounting frees on
its own; each allocation burst triggers collections that walk the whole (large, long-lived) heap, which cost more
than the work itself (3x on 10,000 services). On exit, what was allocated meanwhile is moved straight to the oldest
generation (freeze + unfreeze: a list splice, no walk), so re-enabling the collector does not start by walking it
in the young generations either; the next full collection still looks at it, so nothing is exempt from collection.

The collector is the process's, so the compiler never switches it: the process that runs the compiler does, around
its calls (the reconciler's builds and snapshot resolution, the CLI, the benchmarks), with one `GcPause` shared by
its threads. Nesting and concurrent pauses are counted; the collector's previous state is restored when the last
one ends.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator


class GcPause:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0  # pauses under way, nested or from several threads
        self._was_enabled = False

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        with self._lock:
            if self._depth == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0 and self._was_enabled:
                    gc.freeze()
                    gc.unfreeze()
                    gc.enable()
