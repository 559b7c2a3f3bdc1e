"""`meshward completion bash|zsh`: a completion script generated from the command's own parser, so that it names
every command, flag and choice there is and never drifts from them. zsh runs the bash function through its
`bashcompinit` layer. Positional arguments and flag values without choices complete as file names (a node id
is not completed: that would need a running server or a compiled tree)."""

from __future__ import annotations

import argparse
import shlex

SHELLS = ("bash", "zsh")


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    commands = _subcommands(parser)
    top = [*commands, *_options(parser)]
    cases, value_cases = [], []
    for name, command in commands.items():
        words = " ".join(str(c) for a in command._actions if not a.option_strings and a.choices for c in a.choices)
        cases.append(f"        {shlex.quote(name)}) opts={shlex.quote(' '.join(_options(command)))} "
                     f"words={shlex.quote(words)} ;;")
        for action in command._actions:
            if action.choices and action.option_strings:
                pattern = "|".join(f"{name}\\ {flag}" for flag in action.option_strings)
                values = " ".join(str(c) for c in action.choices)
                value_cases.append(f"        {pattern}) COMPREPLY=($(compgen -W {shlex.quote(values)} -- \"$cur\"))"
                                   f"; return ;;")
    body = "\n".join([
        "_meshward() {",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" cmd="${COMP_WORDS[1]}" opts words',
        "    if [ \"$COMP_CWORD\" -eq 1 ]; then",
        f"        COMPREPLY=($(compgen -W {shlex.quote(' '.join(top))} -- \"$cur\")); return",
        "    fi",
        '    case "$cmd $prev" in',
        *value_cases,
        "    esac",
        '    case "$cmd" in',
        *cases,
        "        *) opts= words= ;;",
        "    esac",
        '    if [[ "$cur" == -* ]]; then',
        '        COMPREPLY=($(compgen -W "$opts" -- "$cur"))',
        '    elif [ -n "$words" ]; then',
        '        COMPREPLY=($(compgen -W "$words" -- "$cur"))',
        "    else",
        '        COMPREPLY=($(compgen -f -- "$cur"))',
        "    fi",
        "}",
        "complete -o filenames -F _meshward meshward",
    ])
    prelude = "autoload -U +X bashcompinit && bashcompinit\n" if shell == "zsh" else ""
    return f"# meshward {shell} completion: eval \"$(meshward completion {shell})\"\n{prelude}{body}\n"


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {name: command for sub in subs for name, command in sub.choices.items()}


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return [flag for action in parser._actions for flag in action.option_strings if flag.startswith("--")]
