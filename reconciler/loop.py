"""The GitOps loop: triggers -> fetch -> verify -> compile -> publish, or keep serving the last good snapshot.

Read `_reconcile` top to bottom: it is the whole policy. A commit reaches proxies only if its signature (when
required) verifies, it compiles without error diagnostics, and publishing succeeds; otherwise the status, a metric
and the log say which commit was refused and why, and the snapshot cache is not touched, so every proxy keeps its
last good config. The next good commit recovers on its own; nothing is sticky.

With a cluster (`cluster`: Kubernetes registry and/or credentials), what is compiled is a (commit, cluster state)
pair. A cluster change wakes the loop without a git fetch (`cluster_changed`) and `_recompile` builds the same
commit again with the new state: first the newest commit if it was refused (the cluster may now have what it was
missing, e.g. the Service its routes name), else the serving one. The rule is the same as for commits: a state that
makes the build fail is reported on /status and the last good snapshot stays.

The compiler and the snapshot cache are injected (`load`, `build`, `snapshot_for`, `publisher`) so the loop is
tested with fakes and the compiler stays pure. Git and compilation run in worker threads so the event loop keeps
serving ADS.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from reconciler import resolver as resolver_mod
from reconciler.git import auth
from reconciler.git.source import FetchedCommit, SourceError
from reconciler.ops import metrics as metrics_mod
from reconciler.ops.status import CommitRef, SourceErrorKind, Status, SyncResult, Trigger
from reconciler.resolver import Origin

log = logging.getLogger(__name__)

_MAX_ERROR_LINES = 200  # a commit that breaks everything should not make /status megabytes long


class BuildLike(Protocol):
    """What the build step returns (`reconciler.compose.Compiled`, or a `compiler.build.Build`)."""

    @property
    def ok(self) -> bool: ...
    @property
    def diagnostics(self) -> Sequence[Any]: ...


class Publisher(Protocol):
    """The snapshot cache: `publish` may be sync or async."""

    def publish(self, revision: str, resolve: Callable[[Any], Any]) -> Any: ...


class Source(Protocol):
    def poll(self) -> FetchedCommit | None: ...


class ClusterSource(Protocol):
    """`reconciler.kube.cluster.ClusterFeed`: the latest state (`generation`, `synced`, `problems`, `to_json()`)."""

    def state(self) -> Any: ...


LoadFn = Callable[[Path], Any]  # the commit's directory -> its documents, kept for recompiles
BuildFn = Callable[[Any, Any], BuildLike]  # (loaded documents, cluster state or None) -> build
SnapshotFn = Callable[[Any, Any], Any]  # (build, node) -> Snapshot; raises LookupError for unknown proxies


@dataclasses.dataclass(frozen=True, slots=True)
class LoopConfig:
    poll_interval: float = 30.0
    jitter: float = 0.1  # +-10%: replicas started together do not poll the git server in lockstep
    debounce: float = 0.2  # triggers within this window cause one fetch
    path: str = ""  # directory inside the repository that holds the policy ("" = the whole tree)


@dataclasses.dataclass(frozen=True, slots=True)
class _Loaded:
    """A commit whose documents were loaded: what a cluster change recompiles."""

    commit: CommitRef
    tree: Path  # the export directory (diagnostics are printed relative to it; it may be gone later)
    documents: Any


def _identity(root: Path) -> Path:
    return root


def _inside(path: Path, tree: Path) -> bool:
    """`path`, every symlink on the way resolved, is `tree` or under it."""
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(tree))


class Reconciler:
    def __init__(self, source: Source, *, build: BuildFn, snapshot_for: SnapshotFn, publisher: Publisher,
                 load: LoadFn = _identity, cluster: ClusterSource | None = None,
                 metrics: metrics_mod.Metrics | None = None, config: LoopConfig = LoopConfig()) -> None:
        self._source = source
        self._load = load
        self._build = build
        self._snapshot_for = snapshot_for
        self._publisher = publisher
        self._cluster = cluster
        self.metrics = metrics or metrics_mod.Metrics()
        self.config = config
        self._status = Status(cluster_enabled=cluster is not None)
        self._status_lock = threading.Lock()
        self._wake = asyncio.Event()
        self._cluster_wake = asyncio.Event()
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_source_error = ""
        self._serving: _Loaded | None = None
        self._refused: _Loaded | None = None  # the newest commit, loaded but not served: retried on cluster change
        self._compiled_generation: int | None = None  # cluster generation of the last compile
        self._resolver: resolver_mod.Resolver | None = None
        self._origins: dict[str, Origin] = {}
        self._inputs_stale = False

    @property
    def status(self) -> Status:
        with self._status_lock:
            status = self._status
        resolver = self._resolver
        errors = tuple(sorted(resolver.errors.items())) if resolver is not None else ()
        # Always replaced: transitions start from this property, so a stored status carries the errors of its time.
        return dataclasses.replace(status, proxy_errors=errors) if errors or status.proxy_errors else status

    @property
    def served(self) -> Any:
        """The build of the revision being served (None before the first publish): `meshward describe`."""
        resolver = self._resolver
        return resolver.build if resolver is not None else None

    @property
    def served_documents(self) -> Any:
        """What `load` returned for the commit being served (None before the first publish): drift compares it with
        the cluster."""
        serving = self._serving
        return serving.documents if serving is not None else None

    def origin(self, snapshot_version: str) -> Origin | None:
        """The commit and cluster state a snapshot version was last built from (None: not built by this loop)."""
        return self._origins.get(snapshot_version)

    @property
    def ready(self) -> bool:
        return self.status.ready

    def trigger(self) -> None:
        """Fetch as soon as possible (webhook). Safe to call from any thread."""
        self._set_event(self._wake)

    def cluster_changed(self, _state: object = None) -> None:
        """Recompile with the latest cluster state, without fetching. Safe to call from any thread."""
        self._set_event(self._cluster_wake)

    def inputs_changed(self) -> None:
        """Recompile the commit with the build's other inputs changed (a refreshed jwksUri key set), as for a
        cluster change. Safe to call from any thread."""
        self._inputs_stale = True
        self._set_event(self._cluster_wake)

    def _set_event(self, event: asyncio.Event) -> None:
        loop = self._loop
        if loop is not None and loop.is_running():
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # the loop closed meanwhile: nobody waits any more
                pass
        else:
            event.set()

    def stop(self) -> None:
        self._stopping = True
        self.trigger()

    async def run(self) -> None:
        """Reconcile now, then on every trigger or poll tick, until `stop()`."""
        self._loop = asyncio.get_running_loop()
        # Bound to this event loop; the first reconcile below covers earlier triggers.
        self._wake, self._cluster_wake = asyncio.Event(), asyncio.Event()
        await self._wait_cluster_synced()
        fetch = True
        while not self._stopping:
            if fetch:
                await self.reconcile_once()
            if self._cluster_stale() or self._inputs_stale:
                self._inputs_stale = False
                await self.recompile()
            fetch = await self._wait_for_trigger()

    async def reconcile_once(self) -> SyncResult | None:
        """One fetch; returns the result for a new commit, SOURCE_ERROR, or None when nothing changed."""
        try:
            fetched = await asyncio.to_thread(self._source.poll)
        except SourceError as exc:
            self._source_failed(exc.kind, exc.message)
            return SyncResult.SOURCE_ERROR
        except Exception as exc:  # a bug in the source must not stop the loop either
            log.exception("git source failed unexpectedly")
            self._source_failed(SourceErrorKind.INTERNAL, auth.redact(repr(exc)))
            return SyncResult.SOURCE_ERROR
        self._set(self.status.source_ok())
        self._last_source_error = ""
        if fetched is None:
            return None
        return await self._reconcile(fetched)

    async def recompile(self) -> SyncResult | None:
        """The cluster changed: build the refused head (if any) or the serving commit again with its new state.
        None when there is nothing to recompile yet."""
        state = self._cluster_state()
        self._compiled_generation = state.generation if state is not None else None
        self._set(self.status.cluster_seen(state))
        if self._refused is not None:
            result = await self._compile_and_publish(self._refused, state, Trigger.CLUSTER)
            if result is SyncResult.SYNCED or self._serving is None:
                return result
        if self._serving is None:
            return None
        return await self._compile_and_publish(self._serving, state, Trigger.CLUSTER)

    # The pipeline for one commit.

    async def _reconcile(self, fetched: FetchedCommit) -> SyncResult:
        commit = fetched.commit
        self._refused = None  # the head moved on: an older refused commit is not retried any more
        self.metrics.commits_seen.inc()
        self._set(self.status.seen(commit, rewritten=fetched.rewritten))
        if fetched.rewritten:
            log.warning("history rewritten: %s is not a descendant of the previous head", commit.short)
        log.info("new commit %s by %s: %s", commit.short, commit.author, commit.subject)
        if fetched.signature is not None and not fetched.signature.ok:
            return self._reject(commit, SyncResult.SIGNATURE_INVALID, [f"{commit.sha}: {fetched.signature.detail}"])
        if fetched.tree is None:
            return self._reject(commit, SyncResult.SYNC_FAILED, [f"{commit.sha}: no tree exported"])
        root = fetched.tree / self.config.path if self.config.path else fetched.tree
        if not root.is_dir():
            return self._reject(commit, SyncResult.VALIDATION_FAILED,
                                [f"{self.config.path}: error: directory not found in commit {commit.short}"])
        if not _inside(root, fetched.tree):  # the loader refuses it too: never load what a symlink chain points at
            return self._reject(commit, SyncResult.VALIDATION_FAILED,
                                [f"{self.config.path}: error MW0013: leads outside commit {commit.short}"])
        try:
            documents = await asyncio.to_thread(self._load, root)
        except Exception as exc:  # a loader bug is a system error: never publish
            log.exception("loading commit %s raised", commit.short)
            return self._reject(commit, SyncResult.SYNC_FAILED, [f"{commit.sha}: loader error: {exc!r}"])
        state = self._cluster_state()
        self._compiled_generation = state.generation if state is not None else None
        self._set(self.status.cluster_seen(state))
        return await self._compile_and_publish(_Loaded(commit, fetched.tree, documents), state, Trigger.COMMIT)

    async def _compile_and_publish(self, loaded: _Loaded, state: Any, trigger: Trigger) -> SyncResult:
        commit, generation = loaded.commit, _generation(state)
        try:
            build = await self._compile(loaded.documents, state)
        except Exception as exc:  # a compiler bug is a system error: never publish
            log.exception("compiler raised on commit %s", commit.short)
            return self._refuse(loaded, trigger, generation, SyncResult.SYNC_FAILED,
                                [f"{commit.sha}: compiler error: {exc!r}"])
        if not build.ok:
            return self._refuse(loaded, trigger, generation, SyncResult.VALIDATION_FAILED,
                                _error_lines(build, loaded.tree))
        return await self._publish(loaded, build, trigger, generation)

    async def _compile(self, documents: Any, state: Any) -> BuildLike:
        started = time.perf_counter()
        try:
            return await asyncio.to_thread(self._build, documents, state)
        finally:
            self.metrics.compile_seconds.observe(time.perf_counter() - started)

    async def _publish(self, loaded: _Loaded, build: BuildLike, trigger: Trigger, generation: int | None) -> SyncResult:
        commit = loaded.commit
        resolver = resolver_mod.Resolver(self._snapshot_for, build, Origin(commit.sha, generation), self._origins)
        try:
            result = self._publisher.publish(commit.sha, resolver)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:  # e.g. an inconsistent snapshot: the cache refused it, proxies keep the old one
            log.exception("publishing commit %s failed", commit.short)
            return self._refuse(loaded, trigger, generation, SyncResult.SYNC_FAILED,
                                [f"{commit.sha}: publish failed: {exc!r}"])
        self._resolver = resolver
        same_commit = self._serving is not None and self._serving.commit.sha == commit.sha
        self._serving, self._refused = loaded, None
        flagged = [d for d in build.diagnostics if getattr(d, "flagged", False)]
        lines = _lines(flagged, loaded.tree, istio=True)[:_MAX_ERROR_LINES]
        if trigger is Trigger.CLUSTER and same_commit:
            self._set(self.status.cluster_synced(generation, lines))
        else:
            self._set(self.status.synced(commit, generation, lines))
            self.metrics.applied(commit, time.time())
        self.metrics.set_result(self.status.last_result)
        self.metrics.set_flagged([(d.code, d.istio_code) for d in flagged])
        if lines:
            log.warning("commit %s served with %d flagged error(s), as Pilot serves them:%s", commit.short,
                        len(flagged), "".join(f"\n  {line}" for line in lines))
        for node_id, error in sorted(resolver.errors.items()):
            log.warning("proxy %s keeps its previous snapshot: %s", node_id, error)
        log.info("serving commit %s%s", commit.short, f" with cluster state {generation}" if generation else "")
        return SyncResult.SYNCED

    def _refuse(self, loaded: _Loaded, trigger: Trigger, generation: int | None, result: SyncResult,
                errors: Sequence[str]) -> SyncResult:
        serving = self._serving is not None and self._serving.commit.sha == loaded.commit.sha
        if trigger is Trigger.CLUSTER and serving:
            return self._reject_cluster(loaded.commit, result, errors, generation)
        self._refused = loaded
        return self._reject(loaded.commit, result, errors, generation=generation, trigger=trigger)

    def _reject(self, commit: CommitRef, result: SyncResult, errors: Sequence[str], *,
                generation: int | None = None, trigger: Trigger = Trigger.COMMIT) -> SyncResult:
        lines = list(errors)[:_MAX_ERROR_LINES]
        self._set(self.status.rejected(commit, result, lines, generation=generation, trigger=trigger))
        if trigger is Trigger.COMMIT:  # a refused head re-tried on a cluster change is not a new rejection
            self.metrics.rejected(result)
        self.metrics.set_result(self.status.last_result)
        serving = self.status.serving
        log.log(logging.WARNING if trigger is Trigger.COMMIT else logging.INFO,
                "commit %s rejected (%s%s); still serving %s%s", commit.short, result,
                f", cluster state {generation}" if generation else "", serving.short if serving else "nothing",
                "".join(f"\n  {line}" for line in lines))
        return result

    def _reject_cluster(self, commit: CommitRef, result: SyncResult, errors: Sequence[str],
                        generation: int | None) -> SyncResult:
        lines = list(errors)[:_MAX_ERROR_LINES]
        self._set(self.status.cluster_rejected(commit, result, lines, generation))
        self.metrics.rejected(result)
        self.metrics.set_result(self.status.last_result)
        log.warning("cluster state %s breaks commit %s (%s); proxies keep cluster state %s%s", generation,
                    commit.short, result, self.status.serving_generation, "".join(f"\n  {line}" for line in lines))
        return result

    def _source_failed(self, kind: SourceErrorKind, message: str) -> None:
        self._set(self.status.source_failed(kind, message))
        self.metrics.source_errors.labels(kind=str(kind)).inc()
        self.metrics.set_result(SyncResult.SOURCE_ERROR)
        # The same failure repeats every poll; say it loudly once.
        level = logging.DEBUG if message == self._last_source_error else logging.WARNING
        self._last_source_error = message
        log.log(level, "git source error (%s): %s; keeping the last good commit", kind, message)

    def _set(self, status: Status) -> None:
        with self._status_lock:
            self._status = status

    # The cluster side.

    def _cluster_state(self) -> Any:
        return self._cluster.state() if self._cluster is not None else None

    def _cluster_stale(self) -> bool:
        state = self._cluster_state()
        if state is None or not state.synced or (self._serving is None and self._refused is None):
            return False
        return bool(state.generation != self._compiled_generation)

    async def _wait_cluster_synced(self) -> None:
        """Nothing is compiled before the registry listed everything once (Istio waits for its informers too):
        a half-listed registry would publish Services without endpoints."""
        while not self._stopping and (state := self._cluster_state()) is not None and not state.synced:
            self._set(self.status.cluster_seen(state))
            try:
                await asyncio.wait_for(self._cluster_wake.wait(), timeout=1.0)
            except TimeoutError:
                continue
            self._cluster_wake.clear()

    async def _wait_for_trigger(self) -> bool:
        """Until a trigger, a cluster change or the poll tick; True when git should be fetched."""
        interval = self.config.poll_interval * (1 + random.uniform(-self.config.jitter, self.config.jitter))
        waiters = [asyncio.ensure_future(e.wait()) for e in (self._wake, self._cluster_wake)]
        try:
            done, _ = await asyncio.wait(waiters, timeout=max(interval, 0.01), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        if not done:
            return True  # the poll tick
        await asyncio.sleep(self.config.debounce)  # let a burst of pushes settle into one fetch
        fetch = self._wake.is_set()
        self._wake.clear()
        self._cluster_wake.clear()
        return fetch


def _generation(state: Any) -> int | None:
    return int(state.generation) if state is not None else None


def _error_lines(build: BuildLike, tree: Path) -> list[str]:
    """Error diagnostics as `file:line:col: error CODE: message` with paths relative to the repository."""
    lines = _lines([d for d in build.diagnostics if str(getattr(d, "severity", "error")) == "error"], tree)
    return lines or ["error: the compiler reported failure without an error diagnostic"]


def _lines(diagnostics: Sequence[Any], tree: Path, *, istio: bool = False) -> list[str]:
    """Diagnostics as text lines with paths relative to the repository (`istio`: and Istio's code, where it has
    one, as flagged findings are reported)."""
    prefix = f"{tree}/"
    lines = []
    for diag in diagnostics:
        text = diag.render() if hasattr(diag, "render") else str(diag)
        code = getattr(diag, "istio_code", "") if istio else ""
        lines.append(text.removeprefix(prefix) + (f" [{code}]" if code else ""))
    return lines
