"""Files that hold keys: a directory only its owner can enter (0700) and files only its owner can read (0600),
created with those modes from the start (never written first and restricted afterwards), and `create` never
overwrites (two processes starting on one empty directory must not replace each other's key); `replace` swaps a
whole file at once (a token an agent may be reading), and only ever a regular file."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def ensure_dir(directory: Path) -> None:
    """Create `directory` (and its parents) mode 0700 if it does not exist; an existing one is left as it is."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)


def create(path: Path, data: bytes) -> None:
    """Write a new file, mode 0600; FileExistsError if it is already there."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def replace(path: Path, data: bytes) -> None:
    """Write `path` anew, mode 0600, atomically: a reader sees the old file or the new one, never half of one.

    The rename would swap out whatever `path` names, so anything there but a regular file (or a link, which is
    replaced, not followed) is refused first: `-o /dev/null` run as root must not turn the null device into a
    token file, nor a directory or a FIFO be replaced."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        mode = stat.S_IFREG
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise ValueError(f"{path}: not a regular file; tokens and keys are written only to regular files")
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.unlink(missing_ok=True)
    create(partial, data)
    os.replace(partial, path)
