"""Stage 1a: files -> YAML documents, each with the file and line it starts at (which files: `compiler.discovery`).

Parsing is one document at a time (split on `---` lines, which YAML forbids inside content), so one broken document
does not hide the others and every document knows its first line. ruamel.yaml's safe loader defines what a document
means and every parse error message; yaml-rs (a Rust parser, ~10x faster) reads the documents that
`fast_safe` vouches for reading exactly as ruamel does, and anything else (or anything yaml-rs rejects)
goes to ruamel, so the data and the diagnostics are the same either way.
Field-level positions are looked up lazily by `compiler.positions` only when a diagnostic needs them. Parsed files
are cached by content hash, so re-validating a tree after one file changed re-parses only that file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import operator
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from stat import S_ISREG
from typing import Any

import re2
import yaml_rs
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from compiler import diagnostics as diag
from compiler import discovery, yaml_bounds
from compiler.diagnostics import Diagnostic, Position
from compiler.discovery import Listing, stat_key, trusted

MAX_FILE_BYTES = 32 * 1024 * 1024
_DOC_START = re.compile(rb"^---(?:[ \t]|$)", re.MULTILINE)
_CONTENT_LINE = re.compile(r"^(?!\s*(?:#|$)|---\s*$|%)", re.MULTILINE)


@dataclasses.dataclass(frozen=True, slots=True)
class Document:
    file: str  # display path (as given, or relative to the directory given)
    index: int  # position among the file's non-empty documents
    line: int  # 1-based line where the document's content starts
    data: Any
    text: str = dataclasses.field(repr=False, compare=False, default="")  # the document's own source text
    first_line: int = 1  # 1-based line of `text`'s first line in the file

    def position(self) -> Position:
        return Position(self.file, self.line, 1)


_Loaded = tuple[tuple[Document, ...], tuple[Diagnostic, ...]]  # one file's documents and diagnostics


@dataclasses.dataclass(frozen=True, slots=True)
class _Parsed:
    documents: tuple[tuple[int, Any, str, int], ...]  # (line, data, text, first_line)
    diagnostics: tuple[tuple[str, str, int, int], ...]  # (code, message, line, column)


class ParseCache:
    """Parsed files by content hash. Share one across revisions to re-parse only what changed.

    It also hands out the same Document objects for the same file content and display name, so that later stages
    can recognize an unchanged document by identity (see `compiler.pipeline.CheckCache`), and it remembers each
    file's stat, so that a file whose stat has not changed since it was read is not read again. As git does for its
    index, a stat is only trusted when the file's last change is well before the time it was read (a write in the
    same clock tick as the read could otherwise go unseen). Directory listings are kept the same way, by the
    directory's stat.
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        self._entries: dict[bytes, _Parsed] = {}
        self._documents: dict[tuple[bytes, str], _Loaded] = {}
        # (path, display) -> (stat, documents and diagnostics): files read before, recognized by their stat
        self._stats: dict[tuple[str, str], tuple[tuple[int, ...], _Loaded]] = {}
        self._listings: dict[tuple[str, str], Listing] = {}  # (directory, real path) -> its listing
        self._walks: dict[tuple[str, str], tuple[list[Listing], list[tuple[str, str]]]] = {}  # root -> last walk
        self._max = max_entries
        self._loaders = threading.local()  # one ruamel loader per thread: building one costs more than parsing
        self.hits = 0
        self.misses = 0

    def parse(self, content: bytes) -> _Parsed:
        return self._parse(hashlib.sha256(content).digest(), content)

    def _parse(self, key: bytes, content: bytes) -> _Parsed:
        found = self._entries.get(key)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        parsed = _parse(content, self._yaml)
        _bounded_put(self._entries, key, parsed, self._max)
        return parsed

    def _yaml(self) -> YAML:
        loader: YAML | None = getattr(self._loaders, "yaml", None)
        if loader is None:
            loader = self._loaders.yaml = new_yaml()
        return loader

    def unchanged(self, path: str, display: str,
                  stat: os.stat_result) -> _Loaded | None:
        """The file's documents when its stat is the one recorded when it was read (and that is trustworthy)."""
        recorded = self._stats.get((path, display))
        if recorded is None or recorded[0] != stat_key(stat):
            return None
        self.hits += 1
        return recorded[1]

    def listing(self, directory: str, real: str) -> Listing | None:
        """The directory's listing when its stat is the one recorded when it was listed."""
        found = self._listings.get((directory, real))
        if found is None:
            return None
        try:
            return found if stat_key(os.stat(directory)) == found.stat else None
        except OSError:
            return None

    def remember_listing(self, directory: str, real: str, listing: Listing) -> None:
        if listing.cacheable and trusted(listing.stat):
            _bounded_put(self._listings, (directory, real), listing, self._max)
        else:
            self._listings.pop((directory, real), None)

    def walked(self, root: str, real: str, listings: list[Listing],
               files: Callable[[], list[tuple[str, str]]]) -> list[tuple[str, str]]:
        """The last walk's sorted files when it went through the very same listings (do not modify them)."""
        before = self._walks.get((root, real))
        if before is not None and len(before[0]) == len(listings) and all(map(operator.is_, before[0], listings)):
            return before[1]
        found = files()
        _bounded_put(self._walks, (root, real), (listings, found), self._max)
        return found

    def documents(self, content: bytes, display: str, path: str | None = None,
                  stat: os.stat_result | None = None) -> _Loaded:
        """The file's documents and its parse diagnostics, as `display` names it. With the `stat` taken before
        `content` was read from `path`, the file can be recognized unread next time (see `unchanged`)."""
        key = hashlib.sha256(content).digest()
        made = self._documents.get((key, display))
        if made is not None:
            self.hits += 1
        else:
            problems: list[Diagnostic] = []
            documents = tuple(_documents(self._parse(key, content), display, problems))
            made = (documents, tuple(problems))
            _bounded_put(self._documents, (key, display), made, self._max)
        if path is not None and stat is not None and trusted(stat_key(stat)):
            _bounded_put(self._stats, (path, display), (stat_key(stat), made), self._max)
        elif path is not None:
            self._stats.pop((path, display), None)
        return made


def _bounded_put(table: dict[Any, Any], key: Any, value: Any, limit: int) -> None:
    if len(table) >= limit:
        table.pop(next(iter(table)))
    table[key] = value


@dataclasses.dataclass
class LoadResult:
    documents: list[Document]
    diagnostics: list[Diagnostic]
    files: int = 0


def new_yaml() -> YAML:
    """ruamel's safe loader, which reads what yaml-rs is not trusted with (`fast_load`)."""
    return YAML(typ="safe", pure=False)


def _segments(content: bytes) -> Iterator[tuple[int, bytes]]:
    """(first line, bytes) for each `---`-separated chunk of the file."""
    starts = _starts(content)
    line, counted = 1, 0
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(content)
        line += content.count(b"\n", counted, start)  # from the last start on, not from the file's beginning
        counted = start
        yield line, content[start:end]


def _starts(content: bytes) -> list[int]:
    """0 and the offset of each later `---` line (what _DOC_START finds past 0): str.find is many times faster than
    a MULTILINE `^` pattern, which is tried at every byte."""
    starts = [0]
    at = content.find(b"\n---")
    while at >= 0:
        start = at + 1
        if content[start + 3:start + 4] in (b"", b" ", b"\t", b"\n"):
            starts.append(start)
        at = content.find(b"\n---", start)
    return starts


def _content_line(text: str, first_line: int) -> int:
    # The usual starts, a key on the first line or just after a `---` line, without the pattern's scan:
    # a line starting with an ASCII letter or digit is content (not blank, a comment, `---` or a directive).
    if text[:1].isascii() and text[:1].isalnum():
        return first_line
    if text.startswith("---\n") and text[4:5].isascii() and text[4:5].isalnum():
        return first_line + 1
    match = _CONTENT_LINE.search(text)
    return first_line + (text.count("\n", 0, match.start()) if match else 0)


def _parse(content: bytes, yaml: Callable[[], YAML] = new_yaml) -> _Parsed:
    docs: list[tuple[int, Any, str, int]] = []
    problems: list[tuple[str, str, int, int]] = []
    if b"\0" in content[:8192]:
        return _Parsed((), (("MW0003", "file looks binary (contains NUL bytes)", 1, 1),))
    if content.startswith(b"\xef\xbb\xbf"):
        content = content[3:]
    trusted = _file_safe(content)
    for first_line, chunk in _segments(content):
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError as err:
            line = first_line + chunk.count(b"\n", 0, err.start)
            return _Parsed((), (("MW0003", f"not valid UTF-8 (byte {chunk[err.start]:#x})", line, 1),))
        breach = yaml_bounds.check(text, chunk, yaml)
        if breach is not None:
            line = _content_line(text, first_line) if breach.line is None else first_line + breach.line
            problems.append((breach.code, breach.message, line, breach.column + 1))
            continue
        try:
            data = _load_yaml(text, chunk, trusted, yaml)
        except MarkedYAMLError as err:
            problems.append(_yaml_problem(err, first_line, text))
            continue
        except (YAMLError, RecursionError, ValueError, OverflowError) as err:
            problems.append(("MW0001", f"cannot parse YAML: {err}".splitlines()[0], first_line, 1))
            continue
        if data is not None:
            docs.append((_content_line(text, first_line), data, text, first_line))
    return _Parsed(tuple(docs), tuple(problems))


def _load_yaml(text: str, raw: bytes, trusted: bool, yaml: Callable[[], YAML]) -> Any:
    """One document's data: yaml-rs when it reads it as ruamel would, else ruamel (which raises the errors)."""
    found, data = fast_load(text, raw, trusted=trusted)
    return data if found else yaml().load(text)


# The fast path: yaml-rs, only for text it provably reads exactly as ruamel's safe loader does. yaml-rs agrees with
# ruamel on ordinary Kubernetes YAML but not everywhere; where they can disagree was found by differential fuzzing
# (tests/load/test_fastyaml_differential.py keeps checking it): timestamps, tags, merge keys, anchors/aliases,
# numbers with `_`, exponents or upper-case radix prefixes, empty or unindented block scalars, collections and
# empty or multi-line keys, `:` or `?` inside flow collections, control characters, directives, a second document
# in one chunk. A text with any of these (or with something merely looking like one) is left to ruamel, so both the
# data and every error message are ruamel's. The guards are textual and deliberately coarse: a false alarm costs
# speed, never a different result.
# Every guard, as one RE2 pattern run once over the document's bytes (a DFA: one pass whatever the number of guards,
# ~1 ns a byte). The bytes get a space put in front, so "at a token start" is "after a space, a flow indicator or a
# line break", and the document's own first `---` line is not "a second document".
_GUARDS: tuple[bytes, ...] = (
    rb"\t",  # tabs: ruamel's messages about them
    rb"\r[^\n]", rb"\r\z",  # a lone CR is a line break that the loader's `---` split does not see
    rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]",  # control characters: ruamel rejects them
    rb"\n(?:---|\.\.\.)",  # a second document in one chunk
    rb"\s%",  # directives (%YAML 1.1 changes the schema)
    rb"!",  # tags: ruamel constructs !!binary, !!omap, !!timestamp and rejects unknown ones
    rb"[\s\[\]{},][&*]",  # anchors and aliases: shared or recursive nodes
    rb"<<",  # merge keys
    rb"[\s\[\]{},:]=(?:[\s\[\]{},:]|\z)",  # the plain scalar `=` (ruamel: the `value` tag, an error)
    rb"\?",  # explicit keys (collections as keys); inside flow collections libyaml rejects it in scalars
    rb"[\s\[\]{},:][|>]",  # block scalars: yaml-rs keeps a line break in empty ones and reads unindented text
    rb"\d\d\d\d-\d\d?-\d\d?",  # timestamps: ruamel gives a date or datetime
    rb"[\s\[\]{},:][-+]?(?:[._]|0[xXoObB]|[0-9][0-9.]*[_eE])",  # numbers the two resolvers read differently
    rb"[\s\[{,]:(?:[\s,\]}]|\z)",  # empty keys
    rb"[\]}]\s*:",  # flow collections as keys
    # `:` without a space after it inside a flow collection: libyaml rejects it. Anywhere later on the line of a
    # `[` or `{`, not only before the first `]`/`}` (`{a: [b], c:: [d]}` is inside too; flow collections are
    # single-line here, see `_multiline_flow`)
    rb"[\[{][^\n]*:\S",
)
_RISKY = re2.compile(b"|".join(b"(?:" + guard + b")" for guard in _GUARDS))
# The same over a whole file: a match inside a document is a match in the file, except for the split points
# themselves (`---` lines), so a file without a match has only documents without one.
_RISKY_FILE = re2.compile(b"|".join(b"(?:" + guard + b")" for guard in _GUARDS
                                    if guard != rb"\n(?:---|\.\.\.)") + rb"|\n(?:---[^ \t\n]|\.\.\.)")
_LONG_DIGIT_BYTES = re.compile(rb"\d{4300}")
# non-ASCII text: NEL, LS/PS, BOM and non-characters are line breaks or errors in ruamel
_ODD_CHARACTER = re.compile(r"[^\n\r\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]")
_LONG_DIGITS = re.compile(r"\d{4300}")  # integers over Python's int-from-text limit: ruamel fails on them
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}\n")
_STRIKES = 32  # nesting `_multiline_flow` strikes out (one pass over the text each) before it gives up


def fast_safe(text: str, raw: bytes | None = None) -> bool:
    """True when yaml-rs is known to read `text` (whose UTF-8 is `raw`) as ruamel does, or to reject it."""
    raw = text.encode() if raw is None else raw
    if not raw.endswith(b"\n"):  # a final block scalar's line break depends on it
        return False
    if _RISKY.search(b" " + raw) or (not raw.isascii() and _ODD_CHARACTER.search(text)):
        return False
    if len(raw) >= 4300 and _LONG_DIGITS.search(text):
        return False
    return not ((b"[" in raw or b"{" in raw) and (_multiline_flow(raw) or _flow_collection_key(raw)))


def _file_safe(content: bytes) -> bool:
    """True when every document of the file passes `fast_safe` (one scan of the file instead of one a document)."""
    if not content.endswith(b"\n") or not content.isascii():
        return False
    if _RISKY_FILE.search(b" " + content) or (len(content) >= 4300 and _LONG_DIGIT_BYTES.search(content)):
        return False
    return not ((b"[" in content or b"{" in content) and (_multiline_flow(content) or _flow_collection_key(content)))


def _multiline_flow(raw: bytes) -> bool:
    """A flow collection spanning lines (yaml-rs accepts multi-line keys in one, libyaml does not): what is left
    of the brackets once every `[]` / `{}` pair on a line is struck out is not nothing."""
    brackets = raw.translate(None, _NOT_BRACKETS)
    for _ in range(_STRIKES):  # a pass strikes one level of nesting; a deeper text is not vouched for
        if b"[]" not in brackets and b"{}" not in brackets:
            return brackets.strip(b"\n") != b"" and any(c in brackets for c in b"[]{}")
        brackets = brackets.replace(b"[]", b"").replace(b"{}", b"")
    return True


_COLLECTION_AFTER_SEPARATOR = re2.compile(rb"[,{][ ]*[\[{]")


def _flow_collection_key(raw: bytes) -> bool:
    """A flow collection that starts an entry of a flow mapping (`{a: 1, {b: 2}}`, `{{b: 2}}`): a key without `:`,
    which ruamel cannot construct and yaml-rs reads. Only lines where a `{` or `[` follows a `,` or `{` are looked
    at (flow collections are single-line here, see `_multiline_flow`); on those, a quote or a comment (which can hide
    brackets) counts as one too."""
    if not _COLLECTION_AFTER_SEPARATOR.search(raw):
        return False
    for line in raw.split(b"\n"):
        if not _COLLECTION_AFTER_SEPARATOR.search(line):
            continue
        if b"'" in line or b'"' in line or b"#" in line:
            return True
        stack: list[int] = []
        last = 0  # the last character that is not a space
        for c in line:
            if c in b"{[":
                if stack and stack[-1] == 0x7B and last in b",{":  # an entry of a flow mapping starts with it
                    return True
                stack.append(c)
            elif c in b"}]" and stack:
                stack.pop()
            if c != 0x20:
                last = c
    return False


def fast_load(text: str, raw: bytes | None = None, *, trusted: bool = False) -> tuple[bool, Any]:
    """(True, data) when the fast path read `text`; (False, None) when ruamel must (unsafe text or any error).
    `trusted`: the caller has already checked the whole file."""
    if not trusted and not fast_safe(text, raw):
        return False, None
    try:
        return True, yaml_rs.loads(text, parse_datetime=False, duplicate_key_policy=yaml_rs.DuplicateKeyPolicy.Error)
    except Exception:  # noqa: BLE001 - any failure: ruamel parses it again and reports its own error
        return False, None


def _yaml_problem(err: MarkedYAMLError, first_line: int, text: str) -> tuple[str, str, int, int]:
    mark = err.problem_mark or err.context_mark
    line = first_line + (mark.line if mark else 0)
    column = (mark.column + 1) if mark else 1
    name = type(err).__name__
    code = "MW0002" if name == "DuplicateKeyError" else "MW0001"
    problem = (err.problem or str(err)).strip().splitlines()[0]
    if code == "MW0002":
        return code, f"duplicate key: {problem}", line, column
    if mark and _char_at(text, mark.line, mark.column) == "\t":
        problem = "tab character where YAML expects spaces (tabs are not allowed for indentation): " + problem
    context = f" {err.context}" if err.context else ""
    return code, f"{problem}{context}", line, column


def load(paths: Sequence[Path | str], *, cache: ParseCache | None = None,
         max_file_bytes: int = MAX_FILE_BYTES, base: Path | str | None = None,
         confine: Path | str | None = None) -> LoadResult:
    """Read and parse every YAML file under `paths`. With `base`, files are named relative to it (the reconciler
    names them relative to the repository, not to the directory a commit was exported to): names end up in
    diagnostics and in the metadata of emitted resources, so they must not change from one commit to the next.
    With `confine`, nothing whose real path leaves that directory is read (see `compiler.discovery`)."""
    files, problems = discovery.discover(paths, cache, confine=confine)
    if base is not None:
        problems = [dataclasses.replace(d, position=dataclasses.replace(
            d.position, file=os.path.relpath(d.position.file, base))) for d in problems]
    cache = cache or ParseCache()
    loaded = [_load_file(path, os.path.relpath(display, base) if base is not None else display, cache,
                         max_file_bytes) for path, display in files]
    problems.extend(itertools.chain.from_iterable(found for _, found in loaded))
    return LoadResult(list(itertools.chain.from_iterable(documents for documents, _ in loaded)), problems,
                      files=len(files))


def load_text(text: str, file: str = "<input>") -> LoadResult:
    """Parse YAML given as a string (tests, the Kubernetes watch)."""
    problems: list[Diagnostic] = []
    docs = list(_documents(_parse(text.encode()), file, problems))
    return LoadResult(docs, problems, files=1)


def _load_file(path: str, display: str, cache: ParseCache, max_file_bytes: int) -> _Loaded:
    try:
        stat = os.stat(path)
        if not S_ISREG(stat.st_mode):
            return (), (_not_regular(display),)
        known = cache.unchanged(path, display, stat)
        if known is not None:
            return known
        stat, content = _read(path, max_file_bytes)
    except OSError as err:
        return (), (diag.make("MW0009", f"cannot read file: {err.strerror or err}", Position(display)),)
    if not S_ISREG(stat.st_mode):  # replaced between the two stats
        return (), (_not_regular(display),)
    if content is None:
        return (), (diag.make("MW0004", f"file is {stat.st_size} bytes, over the limit of {max_file_bytes}",
                              Position(display, 1, 1)),)
    return cache.documents(content, display, path, stat)


def _not_regular(display: str) -> Diagnostic:
    return diag.make("MW0014", "not a regular file, not read", Position(display))


# O_NONBLOCK: opening a FIFO that was put in a file's place after its stat must not wait for a writer (on a regular
# file the flag changes nothing)
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)


def _read(path: str, limit: int) -> tuple[os.stat_result, bytes | None]:
    """The file's stat, taken before reading it, and its content (None when the stat says it is over `limit`
    bytes, or that it is not a regular file). With os-level calls rather than a file object: a third cheaper, and
    a tree checked out a moment before is read twice in full (see `ParseCache`)."""
    fd = os.open(path, _OPEN_FLAGS)
    try:
        stat = os.fstat(fd)
        if stat.st_size > limit or not S_ISREG(stat.st_mode):
            return stat, None
        chunks = [os.read(fd, stat.st_size + 1)]
        while chunks[-1]:  # until end of file, as a file object's read() does
            chunks.append(os.read(fd, 1 << 16))
        return stat, b"".join(chunks)
    finally:
        os.close(fd)


def _documents(parsed: _Parsed, display: str, problems: list[Diagnostic]) -> Iterator[Document]:
    for code, message, line, column in parsed.diagnostics:
        problems.append(diag.make(code, message, Position(display, line, column)))
    for index, (line, data, text, first_line) in enumerate(parsed.documents):
        yield Document(display, index, line, data, text, first_line)


def _char_at(text: str, line: int, column: int) -> str:
    lines = text.splitlines()
    return lines[line][column : column + 1] if 0 <= line < len(lines) else ""
