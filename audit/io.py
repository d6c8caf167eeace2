"""Atomic output writing: a run either replaces its files whole or leaves them untouched."""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import InputError

__all__ = ["atomic_outputs", "write_text_atomic"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_outputs(out_dir: Path) -> Iterator[Path]:
    """Yield a staging folder; on success move its contents into ``out_dir``.

    Files are staged beside ``out_dir`` (same filesystem) and moved with ``os.replace``,
    so readers see either the old file or the new one, never a partial one. If the body
    raises, the staging folder is removed and ``out_dir`` is left as it was.
    """
    out_dir = Path(out_dir)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.staging-", dir=out_dir.parent))
        os.chmod(stage, 0o777 & ~_umask())
    except OSError as exc:
        raise InputError(f"cannot create the output folder ({exc.strerror})",
                         source=out_dir, key="--out") from None
    try:
        yield stage
        out_dir.mkdir(parents=True, exist_ok=True)
        for item in sorted(stage.rglob("*")):
            if item.is_dir():
                continue
            target = out_dir / item.relative_to(stage)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(item, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
