"""Per-proxy snapshots for the connected proxies, and the watches that wake ADS streams.

The cache knows nothing of gRPC (go-control-plane's split): the ADS server opens a `Watch` per stream and is woken
when that proxy's snapshot changes; the reconciler loop calls `publish` after every good compile.

API used by the reconciler loop (on the event loop thread that runs the ADS server):

    result = await cache.publish(revision, resolve)   # resolve: Callable[[NodeInfo], Snapshot]

- `publish` makes `resolve` current at once (new streams use it from now on) and returns a `Publication`. Inside a
  running event loop the connected proxies are resolved by a background task, in short slices on a worker thread
  (one resolve at a time: `resolve` is never called concurrently), so thousands of proxies never stall ACKs,
  health checks or the admin pages; each proxy is woken as soon as its own snapshot is ready. Without a running loop (or with nobody connected) the work is done before `publish`
  returns. A newer publish supersedes one still resolving: the newer `resolve` covers every proxy anyway.
- `resolve` is called once per distinct connected node id, never for proxies that are not connected. Proxies that
  connect later are resolved on connect with the last `resolve`: inside a running event loop on a worker thread (a
  snapshot can take a while to compile), and the stream is woken, with nothing to send before, once it is ready.
  `held` (the /debug/config page) resolves off the loop too.
- `resolve` raising `LookupError` means "unknown proxy": a new stream gets nothing for now, a stream that already
  had a snapshot keeps it (we never tear down a running proxy's config on a lookup miss); the proxy is listed in
  `result.unknown` and `cache.unknown_nodes()` and is re-resolved at the next publish. Any other exception is a bug
  in the resolver: logged, listed in `result.failed`, the proxy keeps its previous snapshot.
- Sharing: snapshots are interned by `Snapshot.version`, and every resource by (type URL, name, version), so
  proxies with identical snapshots share one object and proxies that differ (a sidecar's own inbound listener)
  still share every resource they have in common: one message and one serialization per distinct resource.
  A stream is woken only when its snapshot's version changed.
- Readiness gate: nothing is served before the first publish (`cache.ready`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import itertools
import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping

from meshxds.snapshot import Snapshot, XdsResource
from reconciler.xds.xds_node import NodeInfo

log = logging.getLogger(__name__)

Resolver = Callable[[NodeInfo], Snapshot]
_ResourceKey = tuple[str, str, str]  # type URL, name, version


class KeepPrevious(Exception):
    """Raised by a resolver that refuses a proxy's new snapshot for a reason it states (e.g. over the size budget):
    not a bug, so logged without a traceback; the proxy keeps its previous snapshot, as for any other failure."""


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
    started: float = 0.0           # time.time() when publish was called
    finished: float = 0.0          # time.time() when the last connected proxy was resolved
    superseded: bool = False       # a newer publish took over before every proxy was resolved
    distinct_resources: int = 0    # distinct resources held now (shared across proxies)
    resource_bytes: int = 0        # their serialized size: what the cache holds, counted once


class Publication:
    """What `publish` returns: awaitable for its `PublishResult`; `result` is set once every proxy is resolved."""

    def __init__(self, task: asyncio.Task[PublishResult] | None = None, result: PublishResult | None = None):
        self._task = task
        self.result = result
        if task is not None:
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[PublishResult]) -> None:
        if not task.cancelled() and task.exception() is None:
            self.result = task.result()

    def __await__(self) -> Generator[object, None, PublishResult]:
        if self._task is not None:
            return self._task.__await__()
        assert self.result is not None
        return _ready(self.result).__await__()


async def _ready(result: PublishResult) -> PublishResult:
    return result


class Watch:
    """One ADS stream's view of the cache: its current snapshot and a wake-up callback."""

    def __init__(self, cache: SnapshotCache, watch_id: int, node: NodeInfo, on_change: Callable[[], None]):
        self._cache = cache
        self.id = watch_id
        self.node = node
        self.snapshot: Snapshot | None = None
        self.published_at: float | None = None  # time.monotonic() of the publish that produced `snapshot`
        self.unknown = False
        self._on_change = on_change

    def _set(self, snapshot: Snapshot, published_at: float | None) -> bool:
        if self.snapshot is not None and self.snapshot.version == snapshot.version:
            return False
        self._cache._swap(self.snapshot, snapshot)
        self.snapshot, self.published_at = snapshot, published_at
        self._on_change()
        return True

    def close(self) -> None:
        self._cache._forget(self)


@dataclasses.dataclass
class _Run:
    """The bookkeeping of one publish while it resolves."""

    revision: str
    resolve: Resolver
    started: float
    started_mono: float
    outcomes: dict[str, Snapshot | _Miss] = dataclasses.field(default_factory=dict)
    woken: int = 0


class SnapshotCache:
    def __init__(self, *, slice_seconds: float = 0.01) -> None:
        self._watches: dict[int, Watch] = {}
        self._ids = itertools.count(1)
        self._resolve: Resolver | None = None
        self._snapshots: dict[str, Snapshot] = {}
        self._holders: dict[str, int] = {}                  # snapshot version -> watches holding it
        self._resources: dict[_ResourceKey, XdsResource] = {}
        self._resource_refs: dict[_ResourceKey, int] = {}   # resource -> interned tables containing it
        self._tables: dict[tuple[str, str], Mapping[str, XdsResource]] = {}  # (type URL, type version) -> table
        self._table_refs: dict[tuple[str, str], int] = {}   # table -> interned snapshots containing it
        self._resource_bytes = 0
        self._unknown: set[str] = set()
        self._run: _Run | None = None
        self._task: asyncio.Task[PublishResult] | None = None
        self._slice = slice_seconds  # how much a publish resolves before applying what it has
        # One resolve at a time: a publish's slices, a proxy connecting and `held` never overlap, so the resolver
        # needs no thread-safety beyond being callable from another thread.
        self._resolving = threading.Lock()
        self._listeners: list[Callable[[PublishResult], None]] = []
        self._connecting: set[asyncio.Task[None]] = set()  # resolves on connect in flight (a task needs a holder)
        self.revision: str | None = None

    @property
    def ready(self) -> bool:
        return self._resolve is not None

    def unknown_nodes(self) -> frozenset[str]:
        return frozenset(self._unknown)

    def on_published(self, listener: Callable[[PublishResult], None]) -> None:
        """Call `listener` with every finished publish's result (metrics; must not raise)."""
        self._listeners.append(listener)

    def watch(self, node: NodeInfo, on_change: Callable[[], None]) -> Watch:
        """Register a stream. If a revision is published already, the snapshot is resolved now: on a worker thread
        when an event loop is running (`on_change` says when it is there), else before this returns."""
        watch = Watch(self, next(self._ids), node, on_change)
        self._watches[watch.id] = watch
        if self._resolve is None:
            return watch
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self._connected(watch, self._resolve, self._locked_outcome(node, self._resolve))
            return watch
        task = asyncio.ensure_future(self._resolve_on_connect(watch, self._resolve))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)
        return watch

    async def _resolve_on_connect(self, watch: Watch, resolve: Resolver) -> None:
        outcome = await asyncio.to_thread(self._locked_outcome, watch.node, resolve)
        if self._resolve is resolve:  # else a newer publish, which covers this watch, decides its snapshot
            self._connected(watch, resolve, outcome)

    def _connected(self, watch: Watch, resolve: Resolver, outcome: Snapshot | _Miss) -> None:
        if watch.id not in self._watches:  # it closed while its snapshot was resolved
            return
        if outcome is _Miss.UNKNOWN:
            self._unknown.add(watch.node.id)
        watch.unknown = outcome is _Miss.UNKNOWN
        if isinstance(outcome, Snapshot):
            watch._set(self._intern(outcome), None)

    def _forget(self, watch: Watch) -> None:
        if self._watches.pop(watch.id, None) is not None and watch.snapshot is not None:
            self._swap(watch.snapshot, None)
        if all(w.node.id != watch.node.id for w in self._watches.values()):
            self._unknown.discard(watch.node.id)

    def connected(self) -> int:
        return len(self._watches)

    async def held(self, node: NodeInfo) -> Snapshot | None:
        """What the server holds for a proxy: a connected one's current snapshot, otherwise what the last publish
        would give it (resolved on a worker thread). None before the first publish; LookupError (an unknown proxy)
        is not swallowed."""
        for watch in self._watches.values():
            if watch.node.id == node.id and watch.snapshot is not None:
                return watch.snapshot
        if self._resolve is None:
            return None
        return await asyncio.to_thread(self._locked, self._resolve, node)

    def _locked(self, resolve: Resolver, node: NodeInfo) -> Snapshot:
        with self._resolving:
            return resolve(node)

    def _locked_outcome(self, node: NodeInfo, resolve: Resolver) -> Snapshot | _Miss:
        with self._resolving:
            return _outcome(node, resolve)

    def stats(self) -> tuple[int, int, int]:
        """(distinct snapshots, distinct resources, bytes of their serializations) held now."""
        return len(self._snapshots), len(self._resources), self._resource_bytes

    # Publishing.

    def publish(self, revision: str, resolve: Resolver) -> Publication:
        """Make `resolve` current, recompute connected proxies' snapshots, wake the streams whose snapshot changed."""
        self._resolve, self.revision = resolve, revision
        run = _Run(revision, resolve, time.time(), time.monotonic())
        self._run = run
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None or not self._watches:
            for _ in self._steps(run):
                pass
            return Publication(result=self._finish(run))
        # The nodes connected now; any connecting later is resolved on connect with this `resolve`.
        self._task = loop.create_task(self._sliced(run, self._by_node()))
        return Publication(self._task)

    async def _sliced(self, run: _Run, groups: dict[str, list[Watch]]) -> PublishResult:
        """Resolve in a worker thread a slice at a time, and apply each slice's outcomes on the loop, so that the
        event loop keeps running at full speed between them (a push is a dozen callbacks; on-loop slices made
        each of them wait a slice) and streams are woken as soon as their own proxy is done."""
        pending = [watches[0].node for watches in groups.values()]
        while pending:
            outcomes = await asyncio.to_thread(_resolve_slice, pending, run.resolve, self._slice, self._resolving)
            if self._run is not run:
                log.info("publish of %s superseded after %d proxies", run.revision, len(run.outcomes))
                return self._result(run, superseded=True)
            done, pending = pending[:len(outcomes)], pending[len(outcomes):]
            for node, outcome in zip(done, outcomes, strict=True):
                self._settle(run, groups[node.id], outcome)
        return self._finish(run)

    def _steps(self, run: _Run) -> Iterator[None]:
        """Resolve each connected node once, on this thread, and apply the outcome; yields after every node."""
        for watches in self._by_node().values():
            with self._resolving:
                outcome = _outcome(watches[0].node, run.resolve)
            self._settle(run, watches, outcome)
            yield

    def _settle(self, run: _Run, watches: list[Watch], outcome: Snapshot | _Miss) -> None:
        """Record a node's outcome and give it to its streams that are still open."""
        node_id = watches[0].node.id
        if node_id in run.outcomes:
            return
        run.outcomes[node_id] = outcome
        if outcome is _Miss.UNKNOWN:
            self._unknown.add(node_id)
        if isinstance(outcome, Snapshot):
            outcome = run.outcomes[node_id] = self._intern(outcome)
        for watch in watches:
            if watch.id in self._watches:  # it may have closed while we resolved others
                run.woken += self._apply(watch, outcome, run.started_mono)
        if isinstance(outcome, Snapshot):
            self._drop_if_unused(outcome.version)

    def _by_node(self) -> dict[str, list[Watch]]:
        grouped: dict[str, list[Watch]] = {}
        for watch in list(self._watches.values()):
            grouped.setdefault(watch.node.id, []).append(watch)
        return grouped

    def _finish(self, run: _Run) -> PublishResult:
        self._unknown = {n for n, o in run.outcomes.items() if o is _Miss.UNKNOWN}
        result = self._result(run, superseded=False)
        for listener in self._listeners:
            listener(result)
        return result

    def _result(self, run: _Run, *, superseded: bool) -> PublishResult:
        return PublishResult(
            revision=run.revision, resolved=len(run.outcomes), distinct_snapshots=len(self._snapshots), woken=run.woken,
            unknown=tuple(sorted(n for n, o in run.outcomes.items() if o is _Miss.UNKNOWN)),
            failed=tuple(sorted(n for n, o in run.outcomes.items() if o is _Miss.FAILED)),
            started=run.started, finished=time.time(), superseded=superseded,
            distinct_resources=len(self._resources), resource_bytes=self._resource_bytes)

    @staticmethod
    def _apply(watch: Watch, outcome: Snapshot | _Miss, published_at: float) -> bool:
        watch.unknown = outcome is _Miss.UNKNOWN
        return isinstance(outcome, Snapshot) and watch._set(outcome, published_at)

    # Sharing, three levels deep: snapshots (by version) hold per-type tables (by type URL and type version), which
    # hold resources (by type URL, name, version). Reference counts keep exactly what connected streams hold, at a
    # cost proportional to what changed; a table or resource is rebuilt only the first time it is seen.

    def _intern(self, snapshot: Snapshot) -> Snapshot:
        """The one shared copy of `snapshot`, made of the shared copies of its type tables and resources."""
        version = snapshot.version
        shared = self._snapshots.get(version)
        if shared is None:
            by_type = {t: self._intern_table(t, snapshot.versions.get(t, ""), resources)
                       for t, resources in snapshot.by_type.items()}
            shared = self._snapshots[version] = Snapshot(by_type=by_type, versions=snapshot.versions)
            self._holders[version] = 0
        return shared

    def _intern_table(self, type_url: str, type_version: str,
                      resources: Mapping[str, XdsResource]) -> Mapping[str, XdsResource]:
        key = (type_url, type_version)
        refs = self._table_refs[key] = self._table_refs.get(key, 0) + 1
        if refs == 1:
            self._tables[key] = {name: self._intern_resource(res) for name, res in resources.items()}
        return self._tables[key]

    def _intern_resource(self, res: XdsResource) -> XdsResource:
        key = (res.type_url, res.name, res.version)
        refs = self._resource_refs[key] = self._resource_refs.get(key, 0) + 1
        if refs == 1:
            self._resources[key] = res
            self._resource_bytes += len(res.serialized)
        return self._resources[key]

    def _swap(self, old: Snapshot | None, new: Snapshot | None) -> None:
        if new is not None:
            self._holders[new.version] = self._holders.get(new.version, 0) + 1
        if old is not None:
            self._holders[old.version] -= 1
            self._drop_if_unused(old.version)

    def _drop_if_unused(self, version: str) -> None:
        if self._holders.get(version, 0) > 0:
            return
        self._holders.pop(version, None)
        snapshot = self._snapshots.pop(version, None)
        if snapshot is None:
            return
        for type_url in snapshot.by_type:
            key = (type_url, snapshot.versions.get(type_url, ""))
            refs = self._table_refs[key] = self._table_refs[key] - 1
            if refs == 0:
                del self._table_refs[key]
                for res in self._tables.pop(key).values():
                    self._release_resource(res)

    def _release_resource(self, res: XdsResource) -> None:
        key = (res.type_url, res.name, res.version)
        refs = self._resource_refs[key] = self._resource_refs[key] - 1
        if refs == 0:
            del self._resource_refs[key], self._resources[key]
            self._resource_bytes -= len(res.serialized)


def _outcome(node: NodeInfo, resolve: Resolver) -> Snapshot | _Miss:
    """Call the resolver; touches no cache state, so it may run on a worker thread."""
    try:
        return resolve(node)
    except LookupError as err:
        log.info("unknown proxy %s: %s", node.id, err)
        return _Miss.UNKNOWN
    except KeepPrevious as err:
        log.warning("%s keeps its previous snapshot: %s", node.id, err)
        return _Miss.FAILED
    except Exception:  # a resolver bug must not take down the other proxies
        log.exception("resolving the snapshot of %s failed; it keeps its previous snapshot", node.id)
        return _Miss.FAILED


def _resolve_slice(nodes: list[NodeInfo], resolve: Resolver, budget: float,
                   lock: threading.Lock) -> list[Snapshot | _Miss]:
    """Outcomes for the first nodes, as many as fit in `budget` seconds (at least one). Runs on a worker thread;
    `lock` is taken per node, so a proxy connecting meanwhile is resolved on the loop between two of them."""
    deadline = time.perf_counter() + budget
    outcomes: list[Snapshot | _Miss] = []
    for node in nodes:
        with lock:
            outcomes.append(_outcome(node, resolve))
        if time.perf_counter() >= deadline:
            break
    return outcomes
