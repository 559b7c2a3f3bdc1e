"""Every flag's --help line says what it does, and its default where it has one (issue 16); the shell completion
is generated from the same parser, so it names every command and flag and never drifts."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys

import pytest

from meshward import cli


def _flags() -> list[tuple[str, argparse.Action]]:
    parser = cli._parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return [(f"{name} {'/'.join(action.option_strings) or action.dest}", action)
            for name, command in sub.choices.items() for action in command._actions
            if not isinstance(action, argparse._HelpAction)]


@pytest.mark.parametrize(("where", "action"), _flags(), ids=[where for where, _ in _flags()])
def test_every_flag_says_what_it_does_and_its_default(where: str, action: argparse.Action) -> None:
    assert action.help and action.help != argparse.SUPPRESS, f"{where}: no help"
    if action.default not in (None, False, [], argparse.SUPPRESS) and action.option_strings:
        assert "default" in action.help, f"{where}: the help does not say its default {action.default!r}"
