"""Whole-or-absent writes: a file or folder is built under a hidden temp name beside its target and renamed into place."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def save_atomically(out: Path, write: Callable[[Path], object], *, folder: bool = True, replace: bool = False) -> Path:
    """Call `write(tmp)` and rename tmp to `out`, so `out` is whole or absent.

    `tmp` is a fresh empty folder, or with `folder=False` an empty file with `out`'s suffix
    (writers that pick a format by suffix still pick the right one). `replace` lets a file
    take the place of an existing one, which readers then see old or new, never half written.
    """
    out = Path(out)
    if out.is_symlink() and not replace:
        raise FileExistsError(f"{out}: already exists (a link to {os.readlink(out)}); choose another path")
    if out.exists() and not replace:
        raise FileExistsError(f"{out}: already exists")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise NotADirectoryError(f"{out.parent}: cannot be a folder (a file or a broken link is in the way)") from None
    if folder:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    else:
        handle, name = tempfile.mkstemp(prefix=f".{out.stem}.tmp-", suffix=out.suffix, dir=out.parent)
        os.close(handle)
        tmp = Path(name)
    try:
        write(tmp)
        os.replace(tmp, out)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise
    return out


def folder_digests(folder: Path) -> dict[str, str]:
    """The sha256 of every file under `folder`, by its path relative to it: what a later check compares against."""
    folder = Path(folder)
    digests = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with open(path, "rb") as handle:
                digests[path.relative_to(folder).as_posix()] = hashlib.file_digest(handle, "sha256").hexdigest()
    return digests


def changed_files(folder: Path, digests: dict[str, str]) -> list[tuple[str, str]]:
    """(file, "missing" or "changed") for each recorded file that is gone or whose sha256 differs now."""
    folder = Path(folder)
    found = []
    for name, digest in sorted(digests.items()):
        path = folder / name
        if not path.is_file():
            found.append((name, "missing"))
            continue
        with open(path, "rb") as handle:
            if hashlib.file_digest(handle, "sha256").hexdigest() != digest:
                found.append((name, "changed"))
    return found
