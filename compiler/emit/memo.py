"""Emitted resources remembered by model value, so a resource is built and serialized once however many proxies
(and revisions) contain it.

Model objects are frozen dataclasses, so equal values hash equal: two sidecars of one namespace share their
outbound clusters, and after a commit that changed one VirtualService every other resource is found here instead
of being rebuilt. Sharing the very same `XdsResource` also shares its serialized bytes in memory.

The memo is generational, which bounds its memory to two revisions: `next_generation()` (called per build) starts
an empty current table and keeps the previous one for lookups; entries found there move to the current table, and
whatever the new revision never asked for is dropped with the generation after.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

_T = TypeVar("_T")


class EmitMemo:
    """Values (emitted resources, shared virtual host messages, per-type tables) by the model value they came
    from. A value handed out is shared: nobody may change it."""

    def __init__(self, previous: dict[Hashable, Any] | None = None) -> None:
        self._current: dict[Hashable, Any] = {}
        self._previous = previous or {}
        self._lock = threading.Lock()  # the reconciler may resolve proxies from worker threads
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, make: Callable[[], _T]) -> _T:
        found = self._current.get(key)
        if found is None:
            found = self._previous.get(key)
            if found is None:
                self.misses += 1
                found = make()
            else:
                self.hits += 1
            with self._lock:
                found = self._current.setdefault(key, found)
        else:
            self.hits += 1
        return found  # type: ignore[no-any-return]

    def next_generation(self) -> EmitMemo:
        """A memo for the next revision: this one's entries stay findable for one more generation."""
        return EmitMemo(self._current)

    def __len__(self) -> int:
        return len(self._current)
