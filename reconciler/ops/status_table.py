"""`meshward status` as text: the reconciler's own state, then one row per proxy, like `istioctl proxy-status`.

Why a plain table (not rich): scripts grep and awk it, and a terminal-width-dependent layout would wrap long node
ids. Columns: NAME (node id), MODE (sotw/delta), STATE (the proxy's worst type: SYNCED, STALE, NACKED, UNKNOWN),
COMMIT and GEN (the commit and cluster state generation its snapshot came from), one column per xDS type with that
type's state and the first 8 characters of the version the proxy ACKed, and MESSAGE (the NACK's error detail, or
why the reconciler keeps the proxy on its previous snapshot).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

TYPES = (("CDS", "Cluster"), ("LDS", "Listener"), ("EDS", "ClusterLoadAssignment"), ("RDS", "RouteConfiguration"),
         ("SDS", "Secret"))
HEADER = ("NAME", "MODE", "STATE", "COMMIT", "GEN", *(short for short, _ in TYPES), "MESSAGE")
_MESSAGE_CHARS = 160


def render(status: Mapping[str, Any], proxies: Sequence[Mapping[str, Any]]) -> str:
    lines = _summary(status)
    errors = {e.get("node"): e.get("error", "") for e in status.get("proxyErrors") or []}
    rows = [HEADER, *(_row(p, errors.get(p.get("node_id"))) for p in proxies)]
    lines += _aligned(rows)
    return "\n".join(lines) + "\n"


HISTORY_HEADER = ("COMMIT", "TIME (UTC)", "RESULT", "ACKED", "SUBJECT")


def render_history(status: Mapping[str, Any], limit: int) -> str:
    """`meshward status --history N`: the last N commits the reconciler saw, newest first, with how many proxies
    ACKed a config built from each; on the lines below a commit, its first errors and which proxies ACKed it."""
    lines = []
    rows: list[tuple[str, ...]] = [HISTORY_HEADER]
    follow: dict[int, list[str]] = {}
    for entry in (status.get("history") or [])[:limit]:
        commit = entry.get("commit") or {}
        at = datetime.datetime.fromtimestamp(entry.get("at") or 0, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
        acked = entry.get("ackedBy") or []
        rows.append(((commit.get("sha") or "-")[:12], at, str(entry.get("result")), str(len(acked)),
                     commit.get("subject") or "-"))
        follow[len(rows) - 1] = [f"  {line}" for line in entry.get("errors") or []] + (
            [f"  acked by {', '.join(acked)}"] if acked else [])
    for index, line in enumerate(_aligned(rows)):
        lines += [line, *follow.get(index, [])]
    return "\n".join(lines) + "\n"


def _summary(status: Mapping[str, Any]) -> list[str]:
    serving = (status.get("serving") or {}).get("sha") or "-"
    generation = status.get("servingClusterGeneration")
    at = f" with cluster state {generation}" if generation is not None else ""
    lines = [f"serving commit {serving[:12]}{at}  last result {status.get('lastResult')}"]
    lines += [f"  {line}" for line in status.get("errors") or []]
    cluster = status.get("cluster")
    if cluster:
        synced = "synced" if cluster.get("synced") else "waiting for the first complete listing"
        lines.append(f"cluster state {cluster.get('generation')} ({synced})")
        lines += [f"  credential refused: {problem}" for problem in cluster.get("problems") or []]
        lines += [f"  {w.get('kind')} watch: {w.get('errors')} errors, last: {w.get('lastError')}"
                  for w in cluster.get("watches") or [] if w.get("lastError")]
    return lines


def _row(proxy: Mapping[str, Any], error: str | None) -> tuple[str, ...]:
    types = {url.rsplit(".", 1)[-1]: t for url, t in (proxy.get("types") or {}).items()}
    cells = []
    for _, name in TYPES:
        t = types.get(name)
        cells.append(f"{t.get('state', '?')} {(t.get('acked_version') or '-')[:8]}" if t else "-")
    messages = [f"{short} NACK: {types[name]['last_nack'].get('message', '')}" for short, name in TYPES
                if types.get(name, {}).get("last_nack")]
    if error:
        messages.append(f"kept on its previous snapshot: {error}")
    commit = proxy.get("commit") or "-"
    generation = proxy.get("cluster_generation")
    message = " ".join("; ".join(messages).split())  # one line, whatever Envoy wrote
    return (str(proxy.get("node_id", "?")), str(proxy.get("mode", "?")), str(proxy.get("state", "?")), commit[:12],
            "-" if generation is None else str(generation), *cells, message[:_MESSAGE_CHARS] or "-")


def _aligned(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
