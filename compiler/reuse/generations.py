"""A memo that lives two revisions: what one build computed stays findable by the next, and what the next never
asked for is dropped with the build after it (memory bounded by two revisions, no eviction policy to tune).

`next_generation()` starts an empty current table over this one's; a value found in the previous table moves to
the current one. Values handed out are shared between proxies and revisions: nobody may change them. Safe to use
from the reconciler's worker threads (a race only computes a value twice; the first stored wins).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, Self, TypeVar

_T = TypeVar("_T")
MISSING = object()


class Generations:
    def __init__(self, previous: Generations | None = None) -> None:
        self._current: dict[Hashable, Any] = {}
        self._previous: dict[Hashable, Any] = previous._current if previous is not None else {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, make: Callable[[], _T]) -> _T:
        found = self._current.get(key, MISSING)
        if found is MISSING:
            found = self._previous.get(key, MISSING) if self._previous else MISSING  # a first build has none
            if found is MISSING:
                self.misses += 1
                found = make()
            else:
                self.hits += 1
            with self._lock:
                found = self._current.setdefault(key, found)
        else:
            self.hits += 1
        return found  # type: ignore[no-any-return]

    def peek(self, key: Hashable) -> Any:
        """The value under `key` (moved to the current generation when found in the previous one), or MISSING."""
        found = self._current.get(key, MISSING)
        if found is MISSING:
            found = self._previous.get(key, MISSING)
            if found is not MISSING:
                with self._lock:
                    found = self._current.setdefault(key, found)
        return found

    def put(self, key: Hashable, value: Any) -> None:
        """Store `value` under `key` in the current generation, replacing what was there."""
        with self._lock:
            self._current[key] = value

    def next_generation(self) -> Self:
        return type(self)(self)

    def __len__(self) -> int:
        return len(self._current)
