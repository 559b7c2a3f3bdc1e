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


def _complete(*cases: list[str]) -> list[list[str]]:
    """What bash's completion offers after each list of words (the last one being completed), the generated script
    eval'd once in one bash."""
    script = subprocess.run([sys.executable, "-m", "meshward", "completion", "bash"], capture_output=True,
                            text=True, check=True, timeout=60).stdout
    probes = [f'COMP_WORDS=({" ".join(words)}); COMP_CWORD={len(words) - 1}; _meshward; '
              f'printf "%s\\n" "${{COMPREPLY[@]}}" ---' for words in cases]
    probe = "\n".join([script, "complete -p meshward >/dev/null || exit 3", *probes])
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", probe], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return [block.split() for block in done.stdout.split("---\n")[:-1]]


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completes_commands_flags_and_choices() -> None:
    flags = [(where, f) for where, action in _flags() for f in action.option_strings if f.startswith("--")]
    found = _complete(["meshward", "va"], ["meshward", "--"], ["meshward", "validate", "--fail"],
                      ["meshward", "validate", "--format", "s"], ["meshward", "completion", "''"],
                      *[["meshward", where.split()[0], flag] for where, flag in flags])
    assert found[:5] == [["validate"], ["--help", "--version"], ["--failure-threshold"], ["sarif"], ["bash", "zsh"]]
    # every flag of every command is offered: the script comes from the parser
    for (where, flag), offered in zip(flags, found[5:], strict=True):
        assert flag in offered, where


def test_zsh_script_is_the_bash_one_through_bashcompinit(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["completion", "zsh"]) == 0
    zsh = capsys.readouterr().out
    assert cli.main(["completion", "bash"]) == 0
    assert "bashcompinit" in zsh and capsys.readouterr().out.splitlines()[1:] == zsh.splitlines()[2:]
