"""A per-proxy budget on the size of the config it is served.

A commit can be valid and still too large for the proxies it reaches: 80,000 ServiceEntries (a 20 MB commit) gave
a gateway a config it never ACKed while its Envoy grew to 3.5 GB (24 MB serialized: over the default budget). The budget is on what the server sends, the
serialized bytes of a proxy's whole snapshot; a proxy over it is treated like one whose Gateway names a missing
certificate: it keeps the snapshot it has, `/status` lists it under `proxyErrors` with its size and the budget, and
the next publish tries again. The other proxies get the commit.
"""

from __future__ import annotations

import threading

from meshxds.snapshot import Snapshot
from reconciler.xds.cache import KeepPrevious

_MEMO = 4096  # per-type table sizes remembered; tables are shared by proxies and revisions, so few are distinct


class ConfigTooLarge(KeepPrevious):
    """The proxy's snapshot is over the budget; it keeps its previous one."""


class ConfigBudget:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._sizes: dict[tuple[str, str], int] = {}  # (type URL, type version) -> serialized bytes
        self._lock = threading.Lock()  # snapshots are resolved on worker threads

    def size(self, snapshot: Snapshot) -> int:
        """Serialized bytes of every resource of `snapshot`; a table seen before (same type version) is not
        summed again."""
        total = 0
        for type_url, resources in snapshot.by_type.items():
            key = (type_url, snapshot.versions.get(type_url, ""))
            with self._lock:
                size = self._sizes.get(key)
            if size is None:
                size = sum(len(res.serialized) for res in resources.values())
                with self._lock:
                    if len(self._sizes) >= _MEMO:
                        self._sizes.pop(next(iter(self._sizes)))
                    self._sizes[key] = size
            total += size
        return total

    def check(self, snapshot: Snapshot) -> None:
        size = self.size(snapshot)
        if size > self.max_bytes:
            raise ConfigTooLarge(f"its config is {size:,} bytes serialized, over the per-proxy budget of "
                                 f"{self.max_bytes:,} (serve --max-config-bytes); scope it with a Sidecar resource "
                                 "or raise the budget")
