"""The GitOps loop: triggers -> fetch -> verify -> compile -> publish, or keep serving the last good snapshot.

Read `_reconcile` top to bottom: it is the whole policy. A commit reaches proxies only if its signature (when
required) verifies, it compiles without error diagnostics, and publishing succeeds; otherwise the status, a metric
and the log say which commit was refused and why, and the snapshot cache is not touched, so every proxy keeps its
last good config. The next good commit recovers on its own; nothing is sticky.

The compiler and the snapshot cache are injected (`build`, `snapshot_for`, `publisher`) so the loop is tested with
fakes and the compiler stays pure. Git and compilation run in worker threads so the event loop keeps serving ADS.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from reconciler import metrics as metrics_mod
from reconciler.source import FetchedCommit, SourceError
from reconciler.status import CommitRef, SourceErrorKind, Status, SyncResult

log = logging.getLogger(__name__)

_MAX_ERROR_LINES = 200  # a commit that breaks everything should not make /status megabytes long


class BuildLike(Protocol):
    """What `compiler.build.build` returns (`compiler.build.Build`)."""

    @property
    def ok(self) -> bool: ...
    @property
    def diagnostics(self) -> Sequence[Any]: ...


class Publisher(Protocol):
    """The snapshot cache: `publish` may be sync or async."""

    def publish(self, revision: str, resolve: Callable[[Any], Any]) -> Any: ...


class Source(Protocol):
    def poll(self) -> FetchedCommit | None: ...


BuildFn = Callable[[Sequence[Path]], BuildLike]
SnapshotFn = Callable[[Any, Any], Any]  # (build, node) -> Snapshot; raises LookupError for unknown proxies


@dataclasses.dataclass(frozen=True, slots=True)
class LoopConfig:
    poll_interval: float = 30.0
    jitter: float = 0.1  # +-10%: replicas started together do not poll the git server in lockstep
    debounce: float = 0.2  # triggers within this window cause one fetch
    path: str = ""  # directory inside the repository that holds the policy ("" = the whole tree)


class Reconciler:
    def __init__(self, source: Source, *, build: BuildFn, snapshot_for: SnapshotFn, publisher: Publisher,
                 metrics: metrics_mod.Metrics | None = None, config: LoopConfig = LoopConfig()) -> None:
        self._source = source
        self._build = build
        self._snapshot_for = snapshot_for
        self._publisher = publisher
        self.metrics = metrics or metrics_mod.Metrics()
        self.config = config
        self._status = Status()
        self._status_lock = threading.Lock()
        self._wake = asyncio.Event()
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_source_error = ""

    @property
    def status(self) -> Status:
        with self._status_lock:
            return self._status

    @property
    def ready(self) -> bool:
        return self.status.ready

    def trigger(self) -> None:
        """Fetch as soon as possible (webhook). Safe to call from any thread."""
        loop = self._loop
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(self._wake.set)
        else:
            self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self.trigger()

    async def run(self) -> None:
        """Reconcile now, then on every trigger or poll tick, until `stop()`."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()  # bound to this event loop; the first reconcile below covers earlier triggers
        while not self._stopping:
            await self.reconcile_once()
            await self._wait_for_trigger()

    async def reconcile_once(self) -> SyncResult | None:
        """One fetch; returns the result for a new commit, SOURCE_ERROR, or None when nothing changed."""
        try:
            fetched = await asyncio.to_thread(self._source.poll)
        except SourceError as exc:
            self._source_failed(exc.kind, exc.message)
            return SyncResult.SOURCE_ERROR
        except Exception as exc:  # a bug in the source must not stop the loop either
            log.exception("git source failed unexpectedly")
            self._source_failed(SourceErrorKind.INTERNAL, repr(exc))
            return SyncResult.SOURCE_ERROR
        self._set(self.status.source_ok())
        self._last_source_error = ""
        if fetched is None:
            return None
        return await self._reconcile(fetched)

    # The pipeline for one commit.

    async def _reconcile(self, fetched: FetchedCommit) -> SyncResult:
        commit = fetched.commit
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
        try:
            build = await self._compile(root)
        except Exception as exc:  # a compiler bug is a system error: never publish
            log.exception("compiler raised on commit %s", commit.short)
            return self._reject(commit, SyncResult.SYNC_FAILED, [f"{commit.sha}: compiler error: {exc!r}"])
        if not build.ok:
            return self._reject(commit, SyncResult.VALIDATION_FAILED, _error_lines(build, fetched.tree))
        return await self._publish(commit, build)

    async def _compile(self, root: Path) -> BuildLike:
        started = time.perf_counter()
        try:
            return await asyncio.to_thread(self._build, [root])
        finally:
            self.metrics.compile_seconds.observe(time.perf_counter() - started)

    async def _publish(self, commit: CommitRef, build: BuildLike) -> SyncResult:
        try:
            result = self._publisher.publish(commit.sha, functools.partial(self._snapshot_for, build))
            if inspect.isawaitable(result):
                await result
        except Exception as exc:  # e.g. an inconsistent snapshot: the cache refused it, proxies keep the old one
            log.exception("publishing commit %s failed", commit.short)
            return self._reject(commit, SyncResult.SYNC_FAILED, [f"{commit.sha}: publish failed: {exc!r}"])
        self._set(self.status.synced(commit))
        self.metrics.applied(commit, time.time())
        self.metrics.set_result(SyncResult.SYNCED)
        log.info("serving commit %s", commit.short)
        return SyncResult.SYNCED

    def _reject(self, commit: CommitRef, result: SyncResult, errors: Sequence[str]) -> SyncResult:
        lines = list(errors)[:_MAX_ERROR_LINES]
        self._set(self.status.rejected(commit, result, lines))
        self.metrics.rejected(result)
        self.metrics.set_result(result)
        serving = self.status.serving
        log.warning("commit %s rejected (%s); still serving %s%s", commit.short, result,
                    serving.short if serving else "nothing", "".join(f"\n  {line}" for line in lines))
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

    async def _wait_for_trigger(self) -> None:
        interval = self.config.poll_interval * (1 + random.uniform(-self.config.jitter, self.config.jitter))
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=max(interval, 0.01))
        except TimeoutError:
            return
        await asyncio.sleep(self.config.debounce)  # let a burst of pushes settle into one fetch
        self._wake.clear()


def _error_lines(build: BuildLike, tree: Path) -> list[str]:
    """Error diagnostics as `file:line:col: error CODE: message` with paths relative to the repository."""
    prefix = f"{tree}/"
    lines = []
    for diag in build.diagnostics:
        if str(getattr(diag, "severity", "error")) != "error":
            continue
        text = diag.render() if hasattr(diag, "render") else str(diag)
        lines.append(text.removeprefix(prefix))
    return lines or ["error: the compiler reported failure without an error diagnostic"]
