"""The registry's in-memory copy of the cluster: manifest documents by (kind, namespace, name).

Kept apart from the watch loops so that what "changed" means is in one place: every write says whether the stored
content is different, and only then does the registry announce a change (a watch that replays objects we already
have, or a status-only update, costs nothing downstream).
"""

from __future__ import annotations

import copy
import threading
from typing import Any

Key = tuple[str, str, str]  # (kind, namespace, name)


class Store:
    """Thread-safe; readers get deep copies, so nothing they do can alter the registry's view."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._docs: dict[Key, dict[str, Any]] = {}

    def put(self, key: Key, doc: dict[str, Any]) -> bool:
        with self._lock:
            if self._docs.get(key) == doc:
                return False
            self._docs[key] = doc
            return True

    def remove(self, key: Key) -> bool:
        with self._lock:
            return self._docs.pop(key, None) is not None

    def replace_kind(self, kind: str, docs: dict[Key, dict[str, Any]]) -> bool:
        with self._lock:
            old = {k: v for k, v in self._docs.items() if k[0] == kind}
            if old == docs:
                return False
            for key in old:
                del self._docs[key]
            self._docs.update(docs)
            return True

    def count(self, kind: str) -> int:
        with self._lock:
            return sum(1 for k in self._docs if k[0] == kind)

    def snapshot(self, kinds: frozenset[str] | None = None) -> list[tuple[Key, dict[str, Any]]]:
        """Sorted (key, copy of document) pairs, of `kinds` only when given."""
        with self._lock:
            items = sorted((k, v) for k, v in self._docs.items() if kinds is None or k[0] in kinds)
            return [(key, copy.deepcopy(doc)) for key, doc in items]
