"""load._starts (the `---` split points, found with bytes.find) agrees with the pattern that defines them."""

from __future__ import annotations

import random

from compiler import load


def _by_pattern(content: bytes) -> list[int]:
    return [0] + [m.start() for m in load._DOC_START.finditer(content) if m.start() > 0]


def test_starts_match_the_pattern_on_random_texts() -> None:
    rng = random.Random(7)
    alphabet = [b"-", b"--", b"---", b"\n", b" ", b"\t", b"a", b"\r", b"#"]
    for _ in range(5000):
        content = b"".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 30)))
        assert load._starts(content) == _by_pattern(content), content


def test_starts_on_typical_files() -> None:
    for content in (b"", b"---\n", b"a: 1\n---\nb: 2\n", b"a: 1\n--- \nb\n---\t\nc\n---x\n----\n---"):
        assert load._starts(content) == _by_pattern(content), content
