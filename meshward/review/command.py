"""`meshward diff` (what a change does to each proxy) and `meshward graph` (the mesh's routing as a picture).

Exit codes (DESIGN.md): diff 0 when no proxy's config changes and no diagnostic appears or goes, 1 when something
does, 2 on error (not a repository, an unknown revision, a revision whose policy does not compile); graph 0, 1 when
the policy does not compile, 2 on usage errors. Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from meshward.review import compare, drawing, report, revisions
from reconciler import gcpause

COMMANDS = frozenset({"diff", "graph"})
EXIT_SAME, EXIT_CHANGED, EXIT_ERROR = 0, 1, 2


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = sub.add_parser("diff", help="what a change to the policy does to each proxy's Envoy config (exit 1: "
                                    "something changes)")
    d.add_argument("path", nargs="?", default=".", metavar="PATH",
                   help="the policy directory inside the repository (default: %(default)s)")
    d.add_argument("--from", dest="rev_from", default="HEAD", metavar="REV",
                   help="the revision before the change (default: %(default)s)")
    to = d.add_mutually_exclusive_group()
    to.add_argument("--to", dest="rev_to", default=None, metavar="REV",
                    help="the revision after the change (default: the work tree as it is on disk)")
    to.add_argument("--worktree", action="store_true", help="compare with the work tree (the default)")
    d.add_argument("--node", action="append", default=[], metavar="NODE_ID",
                   help="compare this proxy too, beside those the tree enumerates (WorkloadEntries, Pods, one pod "
                        "per Deployment, StatefulSet, DaemonSet, ReplicaSet): TYPE~IP~POD.NAMESPACE~DOMAIN; "
                        "repeatable")
    d.add_argument("--format", choices=report.FORMATS, default="text",
                   help="text, markdown (a pull-request comment, with a Mermaid graph) or json (default: "
                        "%(default)s)")

    g = sub.add_parser("graph", help="the mesh's routing as a Mermaid or Graphviz dot graph")
    g.add_argument("path", metavar="PATH", help="the policy tree (a file or a directory)")
    g.add_argument("--format", choices=drawing.FORMATS, default="mermaid", help="(default: %(default)s)")
    g.add_argument("--node", action="append", default=[], metavar="NODE_ID",
                   help="draw this proxy's routing too, beside the tree's enumerated proxies; repeatable")


def run(args: argparse.Namespace) -> int:
    try:
        with gcpause.GcPause().paused():  # this process runs the compiler: it pauses the cyclic GC around it
            return _diff(args) if args.command == "diff" else _graph(args)
    except (revisions.RevisionError, compare.NotCompiled, compare.UnknownProxy) as err:
        print(f"meshward {args.command}: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


def _diff(args: argparse.Namespace) -> int:
    policy = revisions.open_policy(args.path)
    old = revisions.resolve(policy, args.rev_from)
    new = revisions.resolve(policy, args.rev_to) if args.rev_to is not None else None
    with revisions.exported(policy, old) as before_tree, _after(policy, new) as after_tree:
        before = compare.compile_tree(before_tree, revisions.label(policy, args.rev_from, old))
        after = compare.compile_tree(after_tree, "worktree" if new is None else
                                     revisions.label(policy, args.rev_to, new))
    found = compare.compare(before, after, policy.prefix, args.node)
    sys.stdout.write(report.render(found, args.format))
    return EXIT_CHANGED if found.changed else EXIT_SAME


@contextlib.contextmanager
def _after(policy: revisions.Policy, sha: str | None) -> Iterator[revisions.Tree]:
    if sha is None:
        yield policy.worktree()
        return
    with revisions.exported(policy, sha) as tree:
        yield tree


def _graph(args: argparse.Namespace) -> int:
    from compiler import build

    if not Path(args.path).exists():
        print(f"meshward graph: no such file or directory: {args.path}", file=sys.stderr)
        return EXIT_ERROR
    result = build.build([args.path])
    if not result.ok:
        first = build.errors(result)[0]
        print(f"meshward graph: {args.path} does not compile ({len(build.errors(result))} error(s), first: "
              f"{first.render()}); see `meshward validate {args.path}`", file=sys.stderr)
        return EXIT_CHANGED
    known = compare.proxies(result, args.node)
    if missing := [n for n in args.node if n not in known]:
        print(f"meshward graph: unknown proxy {missing[0]}: the tree has no workload for it", file=sys.stderr)
        return EXIT_ERROR
    graph = build.routing(result, known.values())
    sys.stdout.write(drawing.mermaid([("mesh", graph)]) if args.format == "mermaid" else drawing.dot(graph))
    return EXIT_SAME
