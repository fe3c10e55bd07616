"""Whole-or-absent writes: a folder is built under a temp name and renamed into place."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def save_atomically(out: Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp_dir)` and rename tmp_dir to `out`, so `out` is whole or absent."""
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out}: already exists")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        write(tmp)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
