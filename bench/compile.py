"""Compile benchmark (issue: 10,000 services to a full sidecar config in under 5 s cold, under 0.5 s after one
change). Prints times and ratios measured in this one run; no number here is asserted by the test suite.

    .venv/bin/python bench/compile.py --services 1000 10000

For each size: a tree of N services (Service with 2 ports, VirtualService with a header match and an 80/15/5 split,
retries and timeout, DestinationRule with 3 subsets, one WorkloadEntry per subset) is written to a temp dir, then:
  check    load + schema + Istio rules + analyzers, cold parse cache
  index    the mesh model (translate.index)
  sidecar  one sidecar's full config (translate.proxy_config + emit, whole mesh visible: no Sidecar scoping)
  raw      serializing the same protobufs once more (the floor: SerializeToString of every resource)
  change   one VirtualService's weights edited, then check (warm parse cache) + index + the same sidecar
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import meshgen

from compiler import emit, load, pipeline, translate


def _timed(fn, *args):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - started


def _sidecar(mesh, node_id):  # type: ignore[no-untyped-def]
    cfg = translate.proxy_config(mesh, translate.find_proxy(mesh, node_id))
    return emit.snapshot(cfg)


def run(services: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = meshgen.write_mesh(Path(tmp), services)
        cache = load.ParseCache()
        checked, t_check = _timed(lambda: pipeline.check([root], cache=cache))
        assert checked.ok, [d.render() for d in checked.diagnostics if d.severity == "error"][:5]
        mesh, t_index = _timed(translate.index, checked.resources)
        node = meshgen.node_id(0)
        snap, t_sidecar = _timed(_sidecar, mesh, node)
        messages = [r.message for by_name in snap.by_type.values() for r in by_name.values()]
        _, t_raw = _timed(lambda: [m.SerializeToString(deterministic=True) for m in messages])
        size = sum(len(r.serialized) for by_name in snap.by_type.values() for r in by_name.values())

        changed = root / "ns0" / "svc1.yaml"
        changed.write_text(changed.read_text().replace("weight: 80", "weight: 70").replace("weight: 15", "weight: 25"))
        started = time.perf_counter()
        checked2 = pipeline.check([root], cache=cache)
        mesh2 = translate.index(checked2.resources)
        snap2 = _sidecar(mesh2, node)
        t_change = time.perf_counter() - started
        assert snap2.version != snap.version
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        resources = sum(len(v) for v in snap.by_type.values())
        print(f"services={services:>6} docs={len(checked.resources):>6} | check {t_check:7.2f}s  index {t_index:6.2f}s  "
              f"sidecar {t_sidecar:6.2f}s ({resources} resources, {size / 1e6:.1f} MB)  raw serialize {t_raw:5.2f}s  "
              f"sidecar/raw {t_sidecar / t_raw:5.1f}x | cold total {t_check + t_index + t_sidecar:6.2f}s  "
              f"after one change {t_change:6.2f}s ({cache.misses - 2 * 0} parses) | peak RSS {peak_mb:.0f} MB",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, nargs="+", default=[1000])
    for n in parser.parse_args().services:
        run(n)


if __name__ == "__main__":
    main()
