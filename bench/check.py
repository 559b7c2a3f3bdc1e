"""Check-stage benchmark (issue #3): `pipeline.check` alone, cold and after one changed file, at several sizes.

    .venv/bin/python bench/check.py --services 1000 10000

Per size: a meshgen tree is written to a temp dir, then
  cold     pipeline.check with fresh caches (load + typed + validate + analyze)
  change   one VirtualService's weights edited, pipeline.check again with the caches of the cold run
           (the tree is written 2 s before the cold run: the ParseCache trusts the stat of older files only)
  same     nothing changed, pipeline.check again
(pipeline.check runs with the cyclic GC paused, as `meshward serve` runs it; one full collection is timed after the
cold run.)
Numbers are measured in this one run; nothing here is asserted by the test suite.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import inspect
import pstats
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import meshgen

from compiler import load, pipeline
from reconciler import gcpause


def _caches() -> dict[str, Any]:
    """Whatever caches this version of pipeline.check accepts (the parse cache always; a check cache if any)."""
    caches: dict[str, Any] = {"cache": load.ParseCache()}
    if "check_cache" in inspect.signature(pipeline.check).parameters:
        caches["check_cache"] = pipeline.CheckCache()  # type: ignore[attr-defined]
    return caches


def _timed(root: Path, caches: dict[str, Any], profile: bool) -> tuple[pipeline.Checked, float]:
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    with gcpause.GcPause().paused():
        checked = pipeline.check([root], **caches)
    if profiler:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    return checked, time.perf_counter() - started


def _full_gc() -> float:
    """The pause around pipeline.check moves what it allocated to the oldest generation, which the next full
    collection walks (as it would have anyway). One full collection is timed here so that its cost is shown."""
    started = time.perf_counter()
    gc.collect()
    return time.perf_counter() - started


def run(services: int, profile: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = meshgen.write_mesh(Path(tmp), services)
        time.sleep(2.1)  # a repository's files are older than the check; files changed within 2 s are always read
        caches = _caches()
        cold, t_cold = _timed(root, caches, profile == "cold")
        t_gc = _full_gc()
        assert cold.ok, [d.render() for d in cold.diagnostics][:5]
        changed = root / "ns0" / "svc1.yaml"
        changed.write_text(changed.read_text().replace("weight: 80", "weight: 70").replace("weight: 15", "weight: 25"))
        after, t_change = _timed(root, caches, profile == "change")
        assert after.ok and len(after.resources) == len(cold.resources)
        _, t_same = _timed(root, caches, False)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"services={services:>6} resources={len(cold.resources):>6} | check cold {t_cold:6.2f}s (a full gc after it {t_gc:.2f}s)  "
              f"after one change {t_change:6.3f}s  unchanged {t_same:6.3f}s | peak RSS {peak_mb:.0f} MB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, nargs="+", default=[1000])
    parser.add_argument("--profile", choices=["none", "cold", "change"], default="none")
    args = parser.parse_args()
    for n in args.services:
        run(n, args.profile)


if __name__ == "__main__":
    main()
