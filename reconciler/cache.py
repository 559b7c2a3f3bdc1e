"""Per-proxy snapshots for the connected proxies, and the watches that wake ADS streams.

The cache knows nothing of gRPC (go-control-plane's split): the ADS server opens a `Watch` per stream and is woken
when that proxy's snapshot changes; the reconciler loop calls `publish` after every good compile.

API used by the reconciler loop (call on the event loop thread that runs the ADS server; from another thread use
`loop.call_soon_threadsafe(cache.publish, revision, resolve)`):

    result = cache.publish(revision, resolve)   # resolve: Callable[[NodeInfo], Snapshot]

- `resolve` is called once per distinct connected node id, never for proxies that are not connected. Proxies that
  connect later are resolved on connect with the last `resolve`.
- `resolve` raising `LookupError` means "unknown proxy": a new stream gets nothing for now, a stream that already
  had a snapshot keeps it (we never tear down a running proxy's config on a lookup miss); the proxy is listed in
  `result.unknown` and `cache.unknown_nodes()` and is re-resolved at the next publish. Any other exception is a bug
  in the resolver: logged, listed in `result.failed`, the proxy keeps its previous snapshot.
- Snapshots are interned by `Snapshot.version`: proxies with identical snapshots share the same objects, and a
  stream is woken only when its snapshot's version changed.
- Readiness gate: nothing is served before the first publish (`cache.ready`).
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import logging
from collections.abc import Callable

from compiler.emit.snapshot import Snapshot
from reconciler.xds_node import NodeInfo

log = logging.getLogger(__name__)

Resolver = Callable[[NodeInfo], Snapshot]


class _Miss(enum.Enum):
    UNKNOWN = "unknown"  # resolve raised LookupError
    FAILED = "failed"    # resolve raised anything else


@dataclasses.dataclass(frozen=True, slots=True)
class PublishResult:
    revision: str
    resolved: int                  # distinct connected node ids resolved
    distinct_snapshots: int        # distinct snapshot versions now in use
    woken: int                     # streams whose snapshot changed
    unknown: tuple[str, ...]       # node ids resolve did not know
    failed: tuple[str, ...]        # node ids whose resolve raised something else (kept their previous snapshot)


class Watch:
    """One ADS stream's view of the cache: its current snapshot and a wake-up callback."""

    def __init__(self, cache: SnapshotCache, watch_id: int, node: NodeInfo, on_change: Callable[[], None]):
        self._cache = cache
        self.id = watch_id
        self.node = node
        self.snapshot: Snapshot | None = None
        self.unknown = False
        self._on_change = on_change

    def _set(self, snapshot: Snapshot) -> bool:
        if self.snapshot is not None and self.snapshot.version == snapshot.version:
            return False
        self.snapshot = snapshot
        self._on_change()
        return True

    def close(self) -> None:
        self._cache._forget(self)


class SnapshotCache:
    def __init__(self) -> None:
        self._watches: dict[int, Watch] = {}
        self._ids = itertools.count(1)
        self._resolve: Resolver | None = None
        self._interned: dict[str, Snapshot] = {}
        self._unknown: set[str] = set()
        self.revision: str | None = None

    @property
    def ready(self) -> bool:
        return self._resolve is not None

    def unknown_nodes(self) -> frozenset[str]:
        return frozenset(self._unknown)

    def watch(self, node: NodeInfo, on_change: Callable[[], None]) -> Watch:
        """Register a stream. If a revision is published already, the snapshot is resolved now."""
        watch = Watch(self, next(self._ids), node, on_change)
        self._watches[watch.id] = watch
        if self._resolve is not None:
            outcome = self._resolve_one(node, self._resolve)
            if isinstance(outcome, Snapshot):
                watch._set(self._intern(outcome))
            watch.unknown = outcome is _Miss.UNKNOWN
        return watch

    def _forget(self, watch: Watch) -> None:
        self._watches.pop(watch.id, None)
        if all(w.node.id != watch.node.id for w in self._watches.values()):
            self._unknown.discard(watch.node.id)

    def connected(self) -> int:
        return len(self._watches)

    def held(self, node: NodeInfo) -> Snapshot | None:
        """What the server holds for a proxy: a connected one's current snapshot, otherwise what the last publish
        would give it. None before the first publish or for an unknown proxy (LookupError is not swallowed)."""
        for watch in self._watches.values():
            if watch.node.id == node.id and watch.snapshot is not None:
                return watch.snapshot
        return self._resolve(node) if self._resolve is not None else None

    def publish(self, revision: str, resolve: Resolver) -> PublishResult:
        """Make `resolve` current, recompute connected proxies' snapshots, wake the streams whose snapshot changed."""
        self._resolve, self.revision = resolve, revision
        outcomes: dict[str, Snapshot | _Miss] = {}
        for watch in list(self._watches.values()):
            if watch.node.id not in outcomes:
                outcomes[watch.node.id] = self._resolve_one(watch.node, resolve)
        previous, self._interned = self._interned, {}
        woken = sum(self._apply(watch, outcomes[watch.node.id], previous) for watch in list(self._watches.values()))
        self._unknown = {n for n, o in outcomes.items() if o is _Miss.UNKNOWN}
        self._keep_in_use()
        return PublishResult(revision=revision, resolved=len(outcomes), distinct_snapshots=len(self._interned),
                             woken=woken, unknown=tuple(sorted(self._unknown)),
                             failed=tuple(sorted(n for n, o in outcomes.items() if o is _Miss.FAILED)))

    def _apply(self, watch: Watch, outcome: Snapshot | _Miss, previous: dict[str, Snapshot]) -> bool:
        watch.unknown = outcome is _Miss.UNKNOWN
        if not isinstance(outcome, Snapshot):
            return False
        return watch._set(self._intern(previous.get(outcome.version, outcome)))

    def _intern(self, snapshot: Snapshot) -> Snapshot:
        return self._interned.setdefault(snapshot.version, snapshot)

    def _keep_in_use(self) -> None:
        """Snapshots kept by proxies that were unknown or failed this time stay interned too."""
        for watch in self._watches.values():
            if watch.snapshot is not None:
                self._interned.setdefault(watch.snapshot.version, watch.snapshot)

    def _resolve_one(self, node: NodeInfo, resolve: Resolver) -> Snapshot | _Miss:
        try:
            return resolve(node)
        except LookupError as err:
            log.info("unknown proxy %s: %s", node.id, err)
            self._unknown.add(node.id)
            return _Miss.UNKNOWN
        except Exception:  # a resolver bug must not take down the other proxies
            log.exception("resolving the snapshot of %s failed; it keeps its previous snapshot", node.id)
            return _Miss.FAILED
