"""A proxy rejecting the served config at the top of the status: `Degraded` beside the results that keep their
meaning (a failing source or a rejected newer commit outranks it; `Synced` still means compiled and published)."""

from __future__ import annotations

import dataclasses

from reconciler.ops.status import CommitRef, ProxyNack, SourceErrorKind, Status, SyncResult, nacks_of
from reconciler.xds.ads_status import NackInfo, ProxyStatus, SyncState, TypeStatus

CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
LDS = "type.googleapis.com/envoy.config.listener.v3.Listener"
NODE = "router~127.0.0.1~gw.istio-system~istio-system.svc.cluster.local"


def proxy(cds: SyncState, lds: SyncState) -> ProxyStatus:
    nack = NackInfo("v2", "7", "cluster a: bad\nduration", ("a", "b"), 9)
    types = {CDS: TypeStatus(CDS, "v2", "v1", nack, cds), LDS: TypeStatus(LDS, "l1", "l1", nack, lds)}
    return ProxyStatus(NODE, 1, "sotw", 0.0, "s", types, SyncState.NACKED)


def test_only_types_nacked_now_count() -> None:
    # The listener type NACKed once and was ACKed since (state SYNCED): only the cluster type is reported.
    assert nacks_of([proxy(SyncState.NACKED, SyncState.SYNCED)]) == (
        ProxyNack(NODE, CDS, "v2", "cluster a: bad\nduration", ("a", "b"), 9),)
    assert nacks_of([proxy(SyncState.STALE, SyncState.SYNCED)]) == ()  # a newer response is in flight


def test_degraded_ranks_below_source_and_commit_failures() -> None:
    nacks = nacks_of([proxy(SyncState.NACKED, SyncState.SYNCED)])
    served = Status().synced(CommitRef("a" * 40))
    assert served.last_result is SyncResult.SYNCED
    degraded = dataclasses.replace(served, nacks=nacks)
    assert degraded.last_result is SyncResult.DEGRADED
    assert degraded.errors == (f"proxy {NODE} rejects Cluster v2 (a, b, ...): cluster a: bad duration",)
    assert degraded.to_json()["nacks"][0]["resourceCount"] == 9
    assert degraded.rejected(CommitRef("b" * 40), SyncResult.VALIDATION_FAILED, ["x"]).last_result \
        is SyncResult.VALIDATION_FAILED
    assert degraded.source_failed(SourceErrorKind.UNREACHABLE, "down").last_result is SyncResult.SOURCE_ERROR
    assert degraded.ready  # readiness is the server's (admin.py, docs/operations.md)
