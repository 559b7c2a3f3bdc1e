"""The resolve callback the loop hands the snapshot cache with each publish.

Why it exists: the cache only knows "resolve raised" (the proxy keeps its previous snapshot). /status must say which
proxy was kept back and why (e.g. its Gateway names a credential that is nowhere), and `meshward status` which commit
and cluster state each proxy's snapshot came from; the resolver records both as it resolves.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import Any

_MAX_ORIGINS = 4096  # snapshot versions remembered for `origin` (a few per proxy and publish is plenty)


@dataclasses.dataclass(frozen=True, slots=True)
class Origin:
    """Where a snapshot came from: `meshward status` prints it per proxy."""

    commit: str
    cluster_generation: int | None


class Resolver:
    """The resolve callback given to the cache; remembers why proxies failed (e.g. a missing SDS secret), for
    /status, and which (commit, cluster state) each snapshot version came from. LookupError (an unknown proxy) is
    not a failure."""

    def __init__(self, snapshot_for: Callable[[Any, Any], Any], build: Any, origin: Origin,
                 origins: dict[str, Origin]) -> None:
        self._snapshot_for, self._build = snapshot_for, build
        self._origin, self._origins = origin, origins
        self._lock = threading.Lock()  # the cache may resolve off the thread that reads /status
        self._errors: dict[str, str] = {}

    @property
    def errors(self) -> dict[str, str]:
        """Node id -> why it keeps its previous snapshot (a copy)."""
        with self._lock:
            return dict(self._errors)

    @property
    def build(self) -> Any:
        """What this resolver resolves from (the served build)."""
        return self._build

    def __call__(self, node: Any) -> Any:
        node_id = str(getattr(node, "id", node))
        try:
            snapshot = self._snapshot_for(self._build, node)
        except LookupError:
            raise
        except Exception as exc:
            with self._lock:
                self._errors[node_id] = f"{type(exc).__name__}: {exc}"[:1000]
            raise
        version = getattr(snapshot, "version", None)
        with self._lock:
            self._errors.pop(node_id, None)
            if isinstance(version, str):
                self._remember(version)
        return snapshot

    def _remember(self, version: str) -> None:
        self._origins.pop(version, None)  # re-inserted last: the newest origin is kept longest
        self._origins[version] = self._origin
        if len(self._origins) > _MAX_ORIGINS:
            self._origins.pop(next(iter(self._origins)))
