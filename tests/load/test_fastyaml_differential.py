"""The loader's yaml-rs fast path reads every document it accepts exactly as ruamel does (differential tests).

`compiler.load.fast_safe` decides which texts yaml-rs may read; whatever it takes must give the very data ruamel's safe
loader gives (same types, same values), and a text ruamel rejects must never be taken (the error is ruamel's).
Checked on the shared corpus, the tests' own YAML fixtures, the benchmark tree, texts known to differ, and
generated token soups and mutations of real documents.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler import load

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / ".." / "shared" / "corpus"
sys.path.insert(0, str(ROOT / "bench"))
import meshgen

_RUAMEL = load.new_yaml()


def _ruamel(text: str) -> tuple[str, Any]:
    try:
        return "ok", _RUAMEL.load(text)
    except Exception as err:  # noqa: BLE001 - any rejection counts
        return "error", type(err).__name__


def _assert_same(text: str) -> bool:
    """When the fast path takes `text`, ruamel must accept it with the same data; True when it was taken."""
    found, data = load.fast_load(text)
    if not found:
        return False
    status, expected = _ruamel(text)
    assert status == "ok", f"fast path read a text ruamel rejects ({expected}): {text!r}"
    assert repr(data) == repr(expected), text
    assert _types(data) == _types(expected), text
    return True


def _types(value: Any) -> Any:
    if isinstance(value, dict):
        return {(type(k).__name__, k): _types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_types(v) for v in value]
    return type(value).__name__


def _chunks(paths: list[Path]) -> list[str]:
    out = []
    for path in paths:
        content = path.read_bytes()
        if content.startswith(b"\xef\xbb\xbf"):
            content = content[3:]
        for _, chunk in load._segments(content):
            try:
                out.append(chunk.decode("utf-8"))
            except UnicodeDecodeError:
                continue
    return out


def _fixture_files() -> list[Path]:
    return sorted(p for p in (ROOT / "tests").rglob("*") if p.suffix in (".yaml", ".yml"))


def _corpus_files() -> list[Path]:
    return sorted(p for p in CORPUS.rglob("*") if p.suffix in (".yaml", ".yml"))


def test_fixtures_and_bench_tree_read_the_same() -> None:
    texts = _chunks(_fixture_files()) + [c.decode() for i in range(40)
                                         for _, c in load._segments(meshgen.service_yaml(i).encode())]
    taken = [_assert_same(text) for text in texts]
    assert sum(taken[-240:]) == 240, "every benchmark document should take the fast path"


def test_corpus_reads_the_same() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS}")
    texts = _chunks(_corpus_files())
    taken = [_assert_same(text) for text in texts]
    assert any(taken) and len(taken) > 100


@pytest.mark.parametrize("text", [
    "k: 2001-12-14\n", "k: 2001-12-14 21:59:43.10\n", "k: 0X1F\n", "k: 0O17\n", "k: _1\n", "k: .5E17\n",
    "k: 1_000\n", "k: 4e9_\n", "a: &x {p: 1}\nb:\n  <<: *x\n", "a: &x [1, *x]\n", "a: !foo bar\n", "a: !!binary aGk=\n",
    "{a: 1}: x\n", "? [a, [b]]\n: c\n", ": v\n", "{a:1}\n", "{a: http://x}\n", "a: x\x85y\n", "a: x\x01y\n",
    "a: 1\n...\nb: 2\n", "a: 1\n---\nb: 2\n", "a: 1\rb: 2\r", "k: >\n", "k: |\n", "|\n0\n", "a: =\n", "a:\n\tb: 1\n",
    "%YAML 1.1\n---\na: yes\n", "k: [a,\n  b]\n", "{x1\n\nx10: }\n", "a: " + "9" * 4301 + "\n", "k: v",
    "\ufeffa: 1\n", "a: {b: 1, {c: 2}}\n", "a: {{c: 2}}\n", "a: {b: ,[c]}\n",
    "request: {authority: [web], uri::  [/]}\n",  # `::` after a nested collection closed (a mutation found it)
])
def test_texts_the_parsers_read_differently_go_to_ruamel(text: str) -> None:
    assert not load.fast_safe(text)


def test_a_yaml_rs_error_falls_back_to_ruamel(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("kind: A\nmetadata:\n  name: x\n  name: y\n---\nkind: B\n")
    result = load.load([tmp_path])
    assert [d.data["kind"] for d in result.documents] == ["B"]
    assert [(d.code, d.position.line) for d in result.diagnostics] == [("MW0002", 4)]


def test_load_gives_the_same_documents_and_diagnostics_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    files = _fixture_files() + (_corpus_files() if CORPUS.is_dir() else [])
    fast = load.load(files)
    monkeypatch.setattr(load, "fast_load", lambda text, raw=None, trusted=False: (False, None))
    slow = load.load(files)
    assert [(d.file, d.line, repr(d.data)) for d in fast.documents] == \
        [(d.file, d.line, repr(d.data)) for d in slow.documents]
    assert [d.render() for d in fast.diagnostics] == [d.render() for d in slow.diagnostics]


_TOKENS = ["a", "k", "x1", ": ", ":", " ", "  ", "\n", "\n  ", "\n    ", "- ", "-", "[", "]", "{", "}", ", ", ",",
           '"', "'", "#", " #c", "? ", "|", "|-", ">", "1", "0", "1.5", "08", "0x1", "e", "true", "null", "~", "\\",
           "&a ", "*a", "!", "--- ", "...", "%", "\t", "http://h:80", "yes", "@", "`", "\r\n", "\r", "=", "<<",
           "2020-01-01", ".5", "_1", "\u00e9", "\x85", "\u2028", "\ufeff", "\x01"]


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_TOKENS), min_size=1, max_size=16), st.booleans())
def test_token_soups(tokens: list[str], keyed: bool) -> None:
    text = ("k: " if keyed else "") + "".join(tokens)
    _assert_same(text if text.endswith("\n") else text + "\n")


_MUTATIONS = [" ", "\n", ":", "-", "[", "]", "{", "}", ",", "'", '"', "#", "|", ">", "0", "1", ".", "_", "e", "x",
              "&", "*", "!", "?", "\t", "  ", "- ", ": "]


def test_mutations_of_real_documents() -> None:
    texts = [t for t in _chunks(_fixture_files()) if 0 < len(t) < 4000]
    texts += [c.decode() for i in range(5) for _, c in load._segments(meshgen.service_yaml(i).encode())]
    rng = random.Random(3)
    for _ in range(20000):
        text = rng.choice(texts)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(text) + 1)
            cut = rng.choice([0, 0, 1, 2])
            text = text[:at] + rng.choice(_MUTATIONS) + text[at + cut:]
        _assert_same(text)


def test_a_file_that_passes_as_a_whole_has_only_documents_that_pass() -> None:
    texts = [t for t in _chunks(_fixture_files()) if 0 < len(t) < 3000]
    texts += [c.decode() for i in range(5) for _, c in load._segments(meshgen.service_yaml(i).encode())]
    rng = random.Random(5)
    checked = 0
    for _ in range(6000):
        content = "---\n".join(rng.choice(texts) for _ in range(rng.randint(1, 3)))
        for _ in range(rng.randint(0, 3)):
            at = rng.randrange(len(content) + 1)
            content = content[:at] + rng.choice(_MUTATIONS + _TOKENS) + content[at + rng.choice([0, 0, 1]):]
        raw = content.encode()
        if not load._file_safe(raw):
            continue
        checked += 1
        for _, chunk in load._segments(raw):
            assert load.fast_safe(chunk.decode(), chunk), (content, chunk)
    assert checked > 500
