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


def _line_by_pattern(text: str, first_line: int) -> int:
    match = load._CONTENT_LINE.search(text)
    return first_line + (text.count("\n", 0, match.start()) if match else 0)


def test_content_line_matches_the_pattern() -> None:
    rng = random.Random(11)
    alphabet = ["---", "\n", " ", "\t", "#", "%", "a", "1", "é", "-", ":", "\x85", "\u3000"]
    texts = ["", "---\n", "---\napiVersion: v1\n", "a: 1\n", "---\n# c\nb: 2\n", "---\n\n---\nx\n", "---\né: 1\n"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12))) for _ in range(5000)]
    for text in texts:
        assert load._content_line(text, 3) == _line_by_pattern(text, 3), text


def test_segments_first_lines() -> None:
    content = b"a: 1\n---\nb: 2\nc: 3\n--- \n---\nd\n"
    assert [line for line, _ in load._segments(content)] == [
        content.count(b"\n", 0, start) + 1 for start in load._starts(content)]
