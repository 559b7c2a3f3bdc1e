"""`meshward test` benchmark (issue #19): 1,000 test requests over 20 proxies, and the share of the time spent
starting Envoys.

    .venv/bin/python bench/routing_tests.py [--namespaces 20] [--requests-per-proxy 50]

A tree of N namespaces, each with a service (two subsets) and a VirtualService of five routes (header match,
rewrite, redirect, direct response, default), and one test file per namespace whose requests leave that
namespace's default sidecar: N proxies, one Envoy each, all started at once. The figures are measured in this one
run; nothing here is asserted by the test suite.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler.ops import envoy_process
from routetest import run

POLICY = """apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {ns}}}
spec:
  ports: [{{name: http, port: 80}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: web, namespace: {ns}}}
spec:
  host: web
  subsets: [{{name: v1, labels: {{v: "1"}}}}, {{name: v2, labels: {{v: "2"}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: web, namespace: {ns}}}
spec:
  hosts: [web]
  http:
  - match: [{{headers: {{end-user: {{exact: jason}}}}}}]
    route: [{{destination: {{host: web, subset: v2}}}}]
  - match: [{{uri: {{prefix: /api/}}}}]
    rewrite: {{uri: /v1/}}
    route: [{{destination: {{host: web, subset: v1}}}}]
  - match: [{{uri: {{prefix: /moved}}}}]
    redirect: {{uri: /new}}
  - match: [{{uri: {{prefix: /gone}}}}]
    directResponse: {{status: 410}}
  - route: [{{destination: {{host: web, subset: v1}}}}]
"""

# (name, request path, extra request keys, expectation), the path numbered per case
CASES = [
    ("jason", "/x", "    headers: {end-user: jason}\n", "  route: [{destination: {host: web, subset: v2}}]\n"),
    ("api", "/api/", "", "  rewrite: {uri: /v1/%d}\n"),
    ("moved", "/moved", "", "  redirect: {status: 301}\n"),
    ("gone", "/gone", "", "  directResponse: {status: 410}\n"),
    ("rest", "/other", "", "  route: [{destination: {host: web, subset: v1}}]\n"),
]


def _tests(ns: str, per_proxy: int) -> str:
    out = [f"namespace: {ns}\ntestCases:\n"]
    for k in range(per_proxy):
        name, path, extra, expect = CASES[k % len(CASES)]
        out.append(f"- description: {name} {k}\n  request:\n    authority: [web]\n    uri: [{path}{k}]\n{extra}"
                   + (expect % k if "%d" in expect else expect))
    return "".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--namespaces", type=int, default=20)
    parser.add_argument("--requests-per-proxy", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i in range(args.namespaces):
            ns = f"team{i:02d}"
            (root / f"{ns}.yaml").write_text(POLICY.format(ns=ns))
            (root / f"{ns}_test.yaml").write_text(_tests(ns, args.requests_per_proxy))
        outcome = run.run([root], envoy_bin=envoy_process.binary())
    if outcome.errors:
        sys.exit("\n".join(d.render() for d in outcome.errors))
    requests = sum(len(r.calls) for r in outcome.results)
    failed = [r.case.name for r in outcome.results if not r.passed]
    proxies = len({r.proxy for r in outcome.results})
    print(f"{requests} requests, {len(outcome.results)} tests, {proxies} proxies ({len(failed)} failed)")
    print(f"total          {outcome.seconds_total:6.2f} s")
    print(f"  compile      {outcome.seconds_compiling:6.2f} s (read tests and tree, build, {proxies} bootstraps)")
    print(f"  start Envoys {outcome.seconds_starting:6.2f} s ({outcome.seconds_starting / outcome.seconds_total:.0%}"
          " of the total)")
    print(f"  send, judge  {outcome.seconds_sending:6.2f} s ({requests / outcome.seconds_sending:.0f} requests/s)")
    envoy_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)  # the Envoys, reaped when the run stopped them
    print(f"Envoys' CPU   {envoy_cpu.ru_utime + envoy_cpu.ru_stime:6.2f} s "
          f"({(envoy_cpu.ru_utime + envoy_cpu.ru_stime) / proxies:.2f} s per proxy, start and requests)")
    if failed:
        sys.exit(f"failed: {failed[:5]}")


if __name__ == "__main__":
    main()
