"""The push benchmark's `--direct` server: the snapshot cache, the ADS server and the compiler in one process, fed
from a fixed directory instead of git. It isolates the push path (resolve, encode, send, ACK) from fetching and
exporting commits, whose per-commit directory currently changes every resource's source metadata (see push.py).

`run(tree, pipe)` is a multiprocessing target: it compiles `tree`, publishes, listens, sends ("ready", port), then
on "change" recompiles the tree (as it now is on disk) and publishes, answering ("changed", compiled_at,
publish_started, publish_finished); "rss", "cpu" and "encode" answer its resident set size, CPU seconds and
encode CPU seconds so far; "stop" ends it.
"""

from __future__ import annotations

import asyncio
import functools
import time
from multiprocessing.connection import Connection
from pathlib import Path

from compiler import build as build_mod
from compiler import load
from reconciler import gcpause
from reconciler.ops import metrics
from reconciler.xds.ads import AdsOptions, AdsServer
from reconciler.xds.ads_guard import ClientCaps  # every simulated proxy connects from 127.0.0.1
from reconciler.xds.cache import SnapshotCache


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def _paused(pause: gcpause.GcPause, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    """As `meshward serve` runs the compiler: with the cyclic GC paused (reconciler.gcpause)."""
    with pause.paused():
        return fn(*args, **kwargs)


async def _main(tree: Path, pipe: Connection) -> None:
    parse_cache = load.ParseCache()
    pause = gcpause.GcPause()
    build = _paused(pause, build_mod.build, [tree], parse_cache=parse_cache)
    cache = SnapshotCache()
    await cache.publish("r0", functools.partial(_paused, pause, build_mod.snapshot_for, build))
    m = metrics.Metrics()
    server = AdsServer(cache, observer=metrics.XdsObserver(m), options=AdsOptions(caps=ClientCaps(max_streams_per_peer=1_000_000)))
    port = await server.start("127.0.0.1:0")
    pipe.send(("ready", port))
    generation = 0
    while True:
        if not pipe.poll():
            await asyncio.sleep(0.02)
            continue
        command = pipe.recv()
        if command == "change":
            seen = time.time()
            build = await asyncio.to_thread(_paused, pause, build_mod.build, [tree], parse_cache=parse_cache)
            generation += 1
            result = await cache.publish(f"r{generation}",
                                         functools.partial(_paused, pause, build_mod.snapshot_for, build))
            pipe.send(("changed", seen, result.started, result.finished))
        elif command == "rss":
            pipe.send(_rss())
        elif command == "cpu":
            pipe.send(time.process_time())
        elif command == "encode":
            pipe.send(sum(s.value for f in m.registry.collect() if f.name == "meshward_xds_encode_seconds"
                          for s in f.samples if s.name.endswith("_sum")))
        elif command == "stop":
            break
    await server.stop(0.5)


def run(tree: Path, pipe: Connection) -> None:
    asyncio.run(_main(tree, pipe))
