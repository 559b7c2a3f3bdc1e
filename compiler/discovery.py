"""Stage 1a, first half: which files a check reads. Paths (files and directories) become (path, display name) pairs
of the YAML files under them, sorted; a missing path or a symlink leading outside its tree is a diagnostic.
Routing tests (`*_test.yaml`, `*_test.yml`, read by `meshward test`) are not policy: they are never read, whether
named or found in a directory, so a shell glob over a policy directory cannot mistake them for policy.
With `confine` (the reconciler passes a commit's export), nothing whose real path leaves that directory is read:
a path given that resolves outside it is an error, whatever symlinks the commit holds and however the export was
written (tar's extraction filters differ between Python releases).

Directory listings can be kept between runs (`ListingCache`, which `compiler.load.ParseCache` is) and reused
while the directory's stat is the same; as for files, a stat is only trusted when the directory's last change
is well before the time it was listed.
"""

from __future__ import annotations

import dataclasses
import itertools
import operator
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from compiler import diagnostics as diag
from compiler.diagnostics import Diagnostic, Position

YAML_SUFFIXES = (".yaml", ".yml")
# routing tests kept beside the policy (`meshward test`): never read as policy
TEST_SUFFIXES = ("_test.yaml", "_test.yml")


class ListingCache(Protocol):
    def listing(self, directory: str, real: str) -> Listing | None: ...

    def remember_listing(self, directory: str, real: str, listing: Listing) -> None: ...

    def walked(self, root: str, real: str, listings: list[Listing],
               files: Callable[[], list[tuple[str, str]]]) -> list[tuple[str, str]]: ...


_RACY_NS = 2_000_000_000  # a file changed this recently may change again within the same timestamp tick


# what identifies a version of a file (or a directory's listing); one C-level call, as it is taken for every file
stat_key: Callable[[os.stat_result], tuple[int, ...]] = operator.attrgetter(
    "st_dev", "st_ino", "st_size", "st_mtime_ns", "st_ctime_ns", "st_mode")


def trusted(key: tuple[int, ...]) -> bool:
    """A stat (as `stat_key`) taken before reading is trustworthy when the last change was well before now."""
    now = time.time_ns()
    return key[3] < now - _RACY_NS and key[4] < now - _RACY_NS


def discover(paths: Sequence[Path | str], cache: ListingCache | None = None, *,
             confine: Path | str | None = None) -> tuple[list[tuple[str, str]], list[Diagnostic]]:
    """Expand files and directories into (path, display name) pairs, sorted; report missing paths and symlinks
    that lead outside the tree given (or outside `confine`). With a `cache`, directories whose stat is unchanged
    are not listed again."""
    found: list[tuple[str, str]] = []
    problems: list[Diagnostic] = []
    seen: set[str] = set()
    jail = Path(os.path.realpath(confine)) if confine is not None else None
    for raw in paths:
        root = Path(raw)
        if not root.exists():
            problems.append(diag.make("MW0009", f"no such file or directory: {raw}", Position(str(raw))))
        elif jail is not None and not _inside(root, jail):
            problems.append(diag.make("MW0013", f"{raw} leads outside {confine}, not read", Position(str(raw))))
        elif root.is_dir():
            walked = _walk(root, problems, cache)
            reals = set(map(operator.itemgetter(0), walked))
            if len(reals) == len(walked) and seen.isdisjoint(reals):  # the usual case, in C-level passes
                seen |= reals
                displays = list(map(operator.itemgetter(1), walked))
                found.extend(zip(displays, displays, strict=True))
            else:
                found.extend((display, display) for real, display in walked if _first_time(real, seen))
        elif not root.name.endswith(TEST_SUFFIXES) and _first_time(os.path.realpath(root), seen):
            found.append((str(root), str(raw)))
    return found, problems


def _first_time(real: str, seen: set[str]) -> bool:
    """A file named twice (`a.yaml dir/` with a.yaml inside dir) is read once."""
    if real in seen:
        return False
    seen.add(real)
    return True


@dataclasses.dataclass(frozen=True, slots=True)
class Listing:
    """What one directory holds for `_walk`. Kept (see `ParseCache.listing`) while the directory's stat is the
    same: adding, removing or renaming an entry changes the directory's mtime and ctime."""

    stat: tuple[int, ...]
    subdirs: tuple[tuple[str, str], ...]  # (display, real) of the subdirectories walked into
    files: tuple[tuple[str, str], ...]  # (real, display) of the YAML files
    cacheable: bool  # no symlinks in it (what a symlink leads to can change without the directory changing)


def _walk(root: Path, problems: list[Diagnostic], cache: ListingCache | None = None) -> list[tuple[str, str]]:
    """(real path, display path) of the YAML files under `root`, sorted by display path. Like os.walk without
    following directory symlinks, but with one scandir per directory and realpath only for symlinked files (a
    directory reached without symlinks is its parent's real path and its name)."""
    real_root = os.path.realpath(root)
    listings: list[Listing] = []
    pending = [(str(root), real_root)]
    while pending:
        directory, real_dir = pending.pop()
        listing = cache.listing(directory, real_dir) if cache is not None else None
        if listing is None:
            listing = _scan(directory, real_dir, Path(real_root), root, problems)
            if listing is None:
                continue
            if cache is not None:
                cache.remember_listing(directory, real_dir, listing)
        listings.append(listing)
        pending.extend(listing.subdirs)
    if cache is not None:
        return cache.walked(str(root), real_root, listings, lambda: _sorted_files(listings))
    return _sorted_files(listings)


def _sorted_files(listings: Sequence[Listing]) -> list[tuple[str, str]]:
    return sorted(itertools.chain.from_iterable(listing.files for listing in listings), key=operator.itemgetter(1))


def _scan(directory: str, real_dir: str, real_root: Path, root: Path, problems: list[Diagnostic]) -> Listing | None:
    try:
        stat = os.stat(directory)
        entries = list(os.scandir(directory))
    except OSError:
        return None
    subdirs: list[tuple[str, str]] = []
    files: list[tuple[str, str]] = []
    links = False
    real_prefix = real_dir if real_dir.endswith(os.sep) else real_dir + os.sep  # os.path.join's result, cheaper
    for entry in entries:
        name = entry.name
        if name.startswith("."):
            continue
        display = name if directory == "." else f"{directory}{os.sep}{name}"  # as str(Path(directory, name))
        link = entry.is_symlink()
        links = links or link
        if _is_dir(entry):
            if not link:
                subdirs.append((display, real_prefix + name))
        elif name.endswith(YAML_SUFFIXES) and not name.endswith(TEST_SUFFIXES):
            if link:
                if not _inside(Path(display), real_root):
                    problems.append(diag.make("MW0010", f"symlink {display} points outside {root} (or nowhere), "
                                                        "skipped", Position(display)))
                    continue
                files.append((os.path.realpath(display), display))
            else:
                files.append((real_prefix + name, display))
    return Listing(stat_key(stat), tuple(subdirs), tuple(files), not links)


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _inside(path: Path, real_root: Path) -> bool:
    """`path` exists and its real path is under `real_root` (a broken symlink or a symlink loop is not)."""
    try:
        return Path(os.path.realpath(path, strict=True)).is_relative_to(real_root)
    except OSError:  # ELOOP, ENOENT: strict realpath raises these, where Path.resolve raises RuntimeError on a loop
        return False
