"""What the reconciler says about itself: stable result enums and the status record.

The enum values are a contract: tests assert on them, `/status` returns them and dashboards group by them (the way
gitops-engine reports `Synced` / `SyncFailed`). Never rename a value; add new ones.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from reconciler.ops.drift import Drift
from reconciler.xds import ads_status


class SyncResult(enum.StrEnum):
    """Outcome of reconciling one commit (or of trying to fetch one)."""

    PENDING = "Pending"  # nothing reconciled yet
    SYNCED = "Synced"  # compiled and published; proxies get it
    VALIDATION_FAILED = "ValidationFailed"  # the policy has error diagnostics; last good kept
    SYNC_FAILED = "SyncFailed"  # a system error (compiler raised, publish failed); last good kept
    SIGNATURE_INVALID = "SignatureInvalid"  # unsigned or not signed by an allowed key; last good kept
    SOURCE_ERROR = "SourceError"  # the git source could not be read; last good kept
    # Published, but some connected proxy rejects (NACKs) the served config: that proxy keeps the last config it
    # accepted. Like Argo CD's health "Degraded": the sync happened, the result is not healthy.
    DEGRADED = "Degraded"


class Trigger(enum.StrEnum):
    """What made the loop compile: a new commit, or a change of the cluster state with the same commit."""

    COMMIT = "Commit"
    CLUSTER = "ClusterChange"


class SourceErrorKind(enum.StrEnum):
    """Why the git source failed; the label of `meshward_source_errors_total`."""

    UNREACHABLE = "Unreachable"  # network / remote gone: nothing to learn from the remote right now
    BRANCH_MISSING = "BranchMissing"  # the followed branch was deleted on the remote
    REV_NOT_FOUND = "RevNotFound"  # the pinned tag or commit does not exist
    CLONE_CORRUPT = "CloneCorrupt"  # the local clone was damaged and re-cloning did not help
    EXPORT_FAILED = "ExportFailed"  # the commit's tree could not be written to disk
    INTERNAL = "Internal"  # a bug in the source; logged with its traceback


@dataclasses.dataclass(frozen=True, slots=True)
class CommitRef:
    """Who made a commit and why; what status and logs print about it."""

    sha: str
    author: str = ""
    message: str = ""

    @property
    def short(self) -> str:
        return self.sha[:12]

    @property
    def subject(self) -> str:
        return self.message.splitlines()[0] if self.message else ""

    def to_json(self) -> dict[str, str]:
        return {"sha": self.sha, "author": self.author, "subject": self.subject}


@dataclasses.dataclass(frozen=True, slots=True)
class Rejection:
    """A commit that was not served, and why, with the diagnostic lines a user acts on."""

    commit: CommitRef
    result: SyncResult
    errors: tuple[str, ...]
    at: float
    cluster_generation: int | None = None  # the cluster state it was compiled with (None: no cluster watched)
    trigger: Trigger = Trigger.COMMIT

    def to_json(self) -> dict[str, Any]:
        return {"commit": self.commit.to_json(), "result": str(self.result), "errors": list(self.errors),
                "at": self.at, "clusterGeneration": self.cluster_generation, "trigger": str(self.trigger)}


HISTORY_LENGTH = 20  # commits /status remembers (`meshward status --history`), newest first
HISTORY_ERRORS = 3  # the first error lines kept with a rejected commit


@dataclasses.dataclass(frozen=True, slots=True)
class Reconciled:
    """One commit the loop reconciled, for `--history`: served, or rejected with its first errors."""

    commit: CommitRef
    result: SyncResult  # SYNCED or the rejection's result
    at: float
    errors: tuple[str, ...] = ()

    def to_json(self, serving: CommitRef | None, acked_by: Sequence[str]) -> dict[str, Any]:
        # a served commit that is no longer the one served was superseded by a newer one
        shown = ("Served" if serving is not None and serving.sha == self.commit.sha else "Superseded") \
            if self.result is SyncResult.SYNCED else str(self.result)
        return {"commit": self.commit.to_json(), "result": shown, "at": self.at, "errors": list(self.errors),
                "ackedBy": list(acked_by)}


@dataclasses.dataclass(frozen=True, slots=True)
class SourceProblem:
    kind: SourceErrorKind
    message: str
    at: float

    def to_json(self) -> dict[str, Any]:
        return {"kind": str(self.kind), "message": self.message, "at": self.at}


@dataclasses.dataclass(frozen=True, slots=True)
class ProxyNack:
    """A proxy rejecting the config it was last sent of one type, in Envoy's words."""

    node: str
    type_url: str
    version: str  # what it rejected
    message: str
    resources: tuple[str, ...]  # the first names the rejected response carried
    resource_count: int

    @property
    def line(self) -> str:
        named = ", ".join(self.resources) + (", ..." if self.resource_count > len(self.resources) else "")
        kind = self.type_url.rsplit(".", 1)[-1]
        return f"proxy {self.node} rejects {kind} {self.version[:12]} ({named}): {' '.join(self.message.split())}"

    def to_json(self) -> dict[str, Any]:
        return {"node": self.node, "typeUrl": self.type_url, "version": self.version, "message": self.message,
                "resources": list(self.resources), "resourceCount": self.resource_count}


def acked_by(proxies: Iterable[ads_status.ProxyStatus],
             origin: Callable[[str], str | None]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Commit sha -> the connected proxies that ACKed everything of a snapshot built from it (`origin`: snapshot
    version -> commit sha). A proxy counts under the commit its config is from now, not under earlier ones."""
    by_commit: dict[str, list[str]] = {}
    for p in proxies:
        sha = origin(p.snapshot_version) if p.snapshot_version and p.state is ads_status.SyncState.SYNCED else None
        if sha:
            by_commit.setdefault(sha, []).append(p.node_id)
    return tuple((sha, tuple(sorted(nodes))) for sha, nodes in sorted(by_commit.items()))


def nacks_of(proxies: Iterable[ads_status.ProxyStatus]) -> tuple[ProxyNack, ...]:
    """The types whose latest response a live stream rejected and that are not superseded by a newer one since
    (a NACKed version stays parked until the config changes, so this is the served config being refused)."""
    return tuple(ProxyNack(p.node_id, t.type_url, t.last_nack.version, t.last_nack.message, t.last_nack.resources,
                           t.last_nack.resource_count)
                 for p in proxies for t in p.types.values()
                 if t.state is ads_status.SyncState.NACKED and t.last_nack is not None)


@dataclasses.dataclass(frozen=True, slots=True)
class Status:
    """One immutable view of the reconciler; the loop replaces it, readers never see a half-updated one."""

    serving: CommitRef | None = None
    last_seen: CommitRef | None = None
    commit_result: SyncResult = SyncResult.PENDING  # result for `last_seen`
    last_rejected: Rejection | None = None
    source_error: SourceProblem | None = None  # set while the source is failing, cleared on the next good fetch
    history_rewritten: bool = False  # the last fetched head did not descend from the previous one
    # The cluster side (`--kubeconfig`, `--credentials-dir`); all unset without one.
    cluster_enabled: bool = False
    cluster: Mapping[str, Any] | None = None  # the latest cluster state seen: generation, synced, problems
    serving_generation: int | None = None  # the cluster state generation the served snapshots were compiled with
    cluster_result: SyncResult = SyncResult.PENDING  # serving commit + latest cluster state
    cluster_rejection: Rejection | None = None  # why the latest cluster state is not served (cleared when it is)
    proxy_errors: tuple[tuple[str, str], ...] = ()  # (node id, why it keeps its previous snapshot)
    # the served revision's flagged errors: analyzer findings about configs Pilot serves, served as Pilot does
    flagged: tuple[str, ...] = ()
    nacks: tuple[ProxyNack, ...] = ()  # live proxies rejecting what they were sent (filled in by the server)
    history: tuple[Reconciled, ...] = ()  # the last HISTORY_LENGTH commits reconciled, newest first
    # commit sha -> the connected proxies that ACKed a config built from it (filled in by the server)
    acked_by: tuple[tuple[str, tuple[str, ...]], ...] = ()
    drift: Drift | None = None  # the served commit against the live mesh (filled in by the server)

    @property
    def last_result(self) -> SyncResult:
        """The source failing right now outranks the result of the last commit it delivered, which outranks the
        serving commit failing with a newer cluster state."""
        if self.source_error:
            return SyncResult.SOURCE_ERROR
        if self.commit_result is SyncResult.SYNCED and self.cluster_rejection is not None:
            return self.cluster_rejection.result
        if self.commit_result is SyncResult.SYNCED and self.nacks:
            return SyncResult.DEGRADED
        return self.commit_result

    @property
    def errors(self) -> tuple[str, ...]:
        """The diagnostic lines behind `last_result`; none once a commit is served without a problem (the last
        rejection stays under `lastRejected`, not here: Synced beside old errors reads as if they still held)."""
        if self.commit_result is not SyncResult.SYNCED and self.last_rejected is not None:
            return self.last_rejected.errors
        if self.cluster_rejection is not None:
            return self.cluster_rejection.errors
        if self.nacks:
            return tuple(nack.line for nack in self.nacks)
        return ()

    @property
    def ready(self) -> bool:
        return self.serving is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "serving": self.serving.to_json() if self.serving else None,
            "lastSeen": self.last_seen.to_json() if self.last_seen else None,
            "lastResult": str(self.last_result),
            "commitResult": str(self.commit_result),
            "lastRejected": self.last_rejected.to_json() if self.last_rejected else None,
            "errors": list(self.errors),
            "sourceError": self.source_error.to_json() if self.source_error else None,
            "historyRewritten": self.history_rewritten,
            "flagged": list(self.flagged),
            "nacks": [nack.to_json() for nack in self.nacks],
            "proxyErrors": [{"node": node, "error": error} for node, error in self.proxy_errors],
            "history": [entry.to_json(self.serving, dict(self.acked_by).get(entry.commit.sha, ()))
                        for entry in self.history],
            "drift": self.drift.to_json() if self.drift is not None else None,
            **(self._cluster_json() if self.cluster_enabled else {}),
        }

    def _cluster_json(self) -> dict[str, Any]:
        return {
            "servingClusterGeneration": self.serving_generation,
            "cluster": dict(self.cluster) if self.cluster is not None else None,
            "clusterResult": str(self.cluster_result),
            "clusterRejected": self.cluster_rejection.to_json() if self.cluster_rejection else None,
        }

    # Transitions: small pure functions so the loop reads as a pipeline.

    def seen(self, commit: CommitRef, *, rewritten: bool) -> Status:
        return dataclasses.replace(self, last_seen=commit, source_error=None, history_rewritten=rewritten)

    def synced(self, commit: CommitRef, generation: int | None = None, flagged: Sequence[str] = ()) -> Status:
        return dataclasses.replace(self, serving=commit, commit_result=SyncResult.SYNCED,
                                   serving_generation=generation, cluster_result=SyncResult.SYNCED,
                                   cluster_rejection=None, flagged=tuple(flagged),
                                   history=self._recorded(Reconciled(commit, SyncResult.SYNCED, time.time())))

    def rejected(self, commit: CommitRef, result: SyncResult, errors: Sequence[str], *,
                 generation: int | None = None, trigger: Trigger = Trigger.COMMIT) -> Status:
        rejection = Rejection(commit, result, tuple(errors), time.time(), generation, trigger)
        history = self.history if trigger is Trigger.CLUSTER else self._recorded(  # a re-try is not a new commit
            Reconciled(commit, result, rejection.at, tuple(errors[:HISTORY_ERRORS])))
        return dataclasses.replace(self, commit_result=result, last_rejected=rejection, history=history)

    def _recorded(self, entry: Reconciled) -> tuple[Reconciled, ...]:
        """The history with `entry` first, unless it repeats the newest entry (the same commit compiled again with
        a new cluster state)."""
        newest = self.history[0] if self.history else None
        if newest is not None and (newest.commit.sha, newest.result) == (entry.commit.sha, entry.result):
            return self.history
        return (entry, *self.history)[:HISTORY_LENGTH]

    def cluster_seen(self, state: Any) -> Status:
        """`state`: a `reconciler.kube.cluster.ClusterState` (None without a cluster)."""
        if state is None:
            return self
        return dataclasses.replace(self, cluster=state.to_json())

    def cluster_synced(self, generation: int | None, flagged: Sequence[str] = ()) -> Status:
        return dataclasses.replace(self, serving_generation=generation, cluster_result=SyncResult.SYNCED,
                                   cluster_rejection=None, flagged=tuple(flagged))

    def cluster_rejected(self, commit: CommitRef, result: SyncResult, errors: Sequence[str],
                         generation: int | None) -> Status:
        rejection = Rejection(commit, result, tuple(errors), time.time(), generation, Trigger.CLUSTER)
        return dataclasses.replace(self, cluster_result=result, cluster_rejection=rejection)

    def source_failed(self, kind: SourceErrorKind, message: str) -> Status:
        return dataclasses.replace(self, source_error=SourceProblem(kind, message, time.time()))

    def source_ok(self) -> Status:
        return dataclasses.replace(self, source_error=None) if self.source_error else self

