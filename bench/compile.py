"""Compile benchmark (issue: 10,000 services to a full sidecar config in under 5 s cold, under 0.5 s after one
change). Prints times and ratios measured in this one run; no number here is asserted by the test suite.

    .venv/bin/python bench/compile.py --services 1000 10000

For each size: a tree of N services (Service with 2 ports, VirtualService with a header match and an 80/15/5 split,
retries and timeout, DestinationRule with 3 subsets, one WorkloadEntry per subset) is written to a temp dir, then:
  check    load + schema + Istio rules + analyzers, cold parse cache
  index    the mesh model (translate.index)
  sidecar  one sidecar's full snapshot (translate + emit + consistency check, whole mesh visible: no Sidecar)
  raw      serializing the same protobufs once more (the floor: SerializeToString of every resource)
  proxies  the snapshots of the tree's first --all-limit proxies (outbound halves and emitted resources shared)
  change   one VirtualService's weights edited, then check (warm parse cache) + index + the same sidecar, with the
           previous build's emit memo
  floor    what any compiler of this tree in Python with these libraries must spend at least: read every file,
           parse it with the same YAML parser (yaml_rs, no positions, no checks), and the raw serialization above.
           Set against the 5 s target, it shows how much is left for validation, analysis, translation and emit.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import meshgen

from compiler import build, load, pipeline
from reconciler import gcpause

_PAUSE = gcpause.GcPause()  # the compiler's calls run with the cyclic GC paused, as `meshward serve` runs them


def _timed(fn, *args):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - started


def _paused(fn):  # type: ignore[no-untyped-def]
    def call(*args, **kwargs):  # type: ignore[no-untyped-def]
        with _PAUSE.paused():
            return fn(*args, **kwargs)
    return call


_snapshot = _paused(build.snapshot_for)
_check = _paused(pipeline.check)
_from_checked = _paused(build.from_checked)


def _read_all(root: Path) -> list[str]:
    texts = []
    for directory, _, names in os.walk(root):
        for name in sorted(names):
            fd = os.open(os.path.join(directory, name), os.O_RDONLY)
            try:
                texts.append(os.read(fd, os.fstat(fd).st_size).decode())
            finally:
                os.close(fd)
    return texts


def _parse_all(texts: list[str]) -> int:
    """The loader's own parser call (same options), without its safety scan, positions or checks."""
    parsed = [load.fast_load(text, trusted=True) for text in texts]
    assert all(ok for ok, _ in parsed)
    return len(parsed)


def run(services: int, all_limit: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = meshgen.write_mesh(Path(tmp), services)
        cache, check_cache = load.ParseCache(), pipeline.CheckCache()
        checked, t_check = _timed(lambda: _check([root], cache=cache, check_cache=check_cache))
        assert checked.ok, [d.render() for d in checked.diagnostics if d.severity == "error"][:5]
        result, t_index = _timed(_from_checked, checked)
        node = meshgen.node_id(0)
        snap, t_sidecar = _timed(_snapshot, result, node)
        messages = [r.message for by_name in snap.by_type.values() for r in by_name.values()]
        _, t_raw = _timed(lambda: [m.SerializeToString(deterministic=True) for m in messages])
        size = sum(len(r.serialized) for by_name in snap.by_type.values() for r in by_name.values())

        proxies = result.proxies()
        some = proxies[:all_limit]
        snaps, t_all = _timed(lambda: [_snapshot(result, p.node_id) for p in some])
        distinct = len({s.version for s in snaps})

        changed = root / "ns0" / "svc1.yaml"
        changed.write_text(changed.read_text().replace("weight: 80", "weight: 70").replace("weight: 15", "weight: 25"))
        started = time.perf_counter()
        checked2 = _check([root], cache=cache, check_cache=check_cache)
        t_check2 = time.perf_counter() - started
        result2 = _from_checked(checked2, previous=result)
        t_index2 = time.perf_counter() - started - t_check2
        snap2 = _snapshot(result2, node)
        t_change = time.perf_counter() - started
        assert snap2.version != snap.version
        texts, t_read = _timed(_read_all, root)
        _, t_parse = _timed(_parse_all, texts)
        floor = t_read + t_parse + t_raw
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        resources = sum(len(v) for v in snap.by_type.values())
        print(f"services={services:>6} docs={len(checked.resources):>6} proxies={len(proxies)}\n"
              f"  cold:   check {t_check:6.2f}s  index {t_index:5.2f}s  sidecar {t_sidecar:5.2f}s "
              f"({resources} resources, {size / 1e6:.1f} MB)  total {t_check + t_index + t_sidecar:6.2f}s\n"
              f"  ratio:  raw serialize {t_raw:5.2f}s  sidecar/raw {t_sidecar / t_raw:5.1f}x  "
              f"(check+index+sidecar)/raw {(t_check + t_index + t_sidecar) / t_raw:5.1f}x\n"
              f"  proxies: {len(some)} snapshots in {t_all:6.2f}s ({1000 * t_all / max(1, len(some)):.1f} ms each, "
              f"{distinct} distinct)\n"
              f"  after one VirtualService changed: {t_change:6.2f}s (check {t_check2:.2f}s, index {t_index2:.2f}s, "
              f"sidecar {t_change - t_check2 - t_index2:.2f}s; emit memo {result2.memo.hits} hits "
              f"{result2.memo.misses} misses)\n"
              f"  floor:  read {t_read:.2f}s + parse {t_parse:.2f}s + raw serialize {t_raw:.2f}s = {floor:.2f}s; "
              f"cold total / floor {(t_check + t_index + t_sidecar) / floor:.1f}x; of a 5 s budget "
              f"{5 - floor:.2f}s is left for {len(checked.resources)} documents and {resources} resources "
              f"({1e6 * max(0.0, 5 - floor) / (len(checked.resources) + resources):.0f} us each)\n"
              f"  peak RSS {peak_mb:.0f} MB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, nargs="+", default=[1000])
    parser.add_argument("--all-limit", type=int, default=200,
                        help="how many of the tree's proxies to compile for the per-proxy figure (default 200)")
    args = parser.parse_args()
    for n in args.services:
        run(n, args.all_limit)


if __name__ == "__main__":
    main()
