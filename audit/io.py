"""Atomic output writing: a run replaces its output folder whole, or leaves it untouched.

``atomic_outputs(out)`` stages everything in a sibling folder ``.NAME.staging-*`` and then
swaps it with ``out`` in one step (Linux ``renameat2(RENAME_EXCHANGE)``; elsewhere two
renames through ``.NAME.old-*``), so a reader sees the old folder or the new one, never
a mix. A lock file ``.NAME.lock`` beside the folder (``fcntl.flock``) refuses a second
concurrent run into the same folder, and leftovers of a killed run (stale staging and
old folders of the same name) are removed by the next run.

``out`` belongs to latent-audit: each run replaces the whole folder. A folder that holds
anything latent-audit did not write is refused (exit 2), never emptied.
"""
from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import InputError

__all__ = ["OWN_NAMES", "atomic_outputs", "out_lock", "write_text_atomic"]

# What a run (``write_outputs``; with ``baseline:`` also comparison.json, comparison.html
# and comparison.md), an ``encode`` (a latent store) or a ``compare`` (comparison.json,
# report.html, summary.md) writes in ``--out``.
OWN_NAMES = frozenset({"findings.json", "per_sample.parquet", "summary.md", "report.html",
                       "comparison.json", "comparison.html", "comparison.md", "model", "store",
                       "reference-store", "manifest.json", "latents", "metadata.parquet",
                       "thumbnails.npy"})

_HELD: dict[str, list] = {}        # lock path -> [fd, depth]: re-entrant within a process


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


def _lock_path(out_dir: Path) -> Path:
    return out_dir.parent / f".{out_dir.name}.lock"


@contextmanager
def out_lock(out_dir: Path) -> Iterator[None]:
    """Hold ``.NAME.lock`` beside ``out_dir`` for the block; a second holder (another
    process) gets an ``InputError`` at once. Re-entrant within one process. The lock file
    is removed on release."""
    out_dir = Path(out_dir)
    path = _lock_path(out_dir)
    key = str(path.absolute())
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield
        finally:
            _HELD[key][1] -= 1
        return
    try:
        import fcntl
    except ImportError:                      # no flock (Windows): no lock, still atomic
        yield
        return
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder ({exc.strerror})",
                         source=out_dir, key="--out") from None
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise InputError(f"cannot create the lock file {path.name} beside the output "
                             f"folder ({exc.strerror})", source=out_dir, key="--out") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise InputError("another latent-audit run is writing to this folder (it "
                                 f"holds {path.name}); wait for it to finish or give another "
                                 "--out", source=out_dir, key="--out") from None
            raise
        try:                                 # the file we locked is still the one named
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)                         # a releasing run unlinked it: lock anew
    _HELD[key] = [fd, 1]
    try:
        yield
    finally:
        del _HELD[key]
        try:
            path.unlink(missing_ok=True)     # while still holding it (see the loop above)
        finally:
            os.close(fd)


_STALE = re.compile(r"\.(staging|old)-[A-Za-z0-9_]{8}")


def _clean_stale(out_dir: Path) -> None:
    """Remove what killed runs left beside ``out_dir`` (call with the lock held): our
    ``.NAME.staging-*`` and ``.NAME.old-*`` folders. If ``out_dir`` itself is missing
    (killed between the two renames of a swap), the old folder is put back first."""
    prefix = f".{out_dir.name}"
    try:
        entries = list(out_dir.parent.iterdir())
    except OSError:
        return
    stale = [p for p in entries if p.name.startswith(prefix)
             and _STALE.fullmatch(p.name[len(prefix):]) and p.is_dir() and not p.is_symlink()]
    olds = [p for p in stale if ".old-" in p.name[len(prefix):]]
    if not os.path.lexists(out_dir) and len(olds) == 1:
        try:
            os.rename(olds[0], out_dir)
            stale.remove(olds[0])
        except OSError:
            pass
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)


def _check_ours(out_dir: Path) -> None:
    if not os.path.lexists(out_dir):
        return
    if out_dir.is_symlink() or not out_dir.is_dir():
        raise InputError("exists and is not a folder", source=out_dir, key="--out")
    try:
        foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in OWN_NAMES)
    except OSError as exc:
        raise InputError(f"cannot read the output folder ({exc.strerror})",
                         source=out_dir, key="--out") from None
    if foreign:
        shown = ", ".join(foreign[:3]) + (", …" if len(foreign) > 3 else "")
        raise InputError(f"holds files latent-audit did not write ({shown}); each run "
                         "replaces the whole folder, so give a new or empty folder",
                         source=out_dir, key="--out")


_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2); False where that is not supported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                   ctypes.c_uint]
    at_fdcwd = -100
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _swap(stage: Path, out_dir: Path) -> None:
    """Put ``stage`` in place of ``out_dir`` in one step; the old folder is removed."""
    if not os.path.lexists(out_dir):
        os.rename(stage, out_dir)
        return
    if _exchange(stage, out_dir):            # stage now holds the old folder
        shutil.rmtree(stage, ignore_errors=True)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
    os.rename(out_dir, old)                  # onto the empty folder: replaces it
    try:
        os.rename(stage, out_dir)
    except BaseException:
        os.rename(old, out_dir)              # put the old folder back
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_outputs(out_dir: Path) -> Iterator[Path]:
    """Yield an empty staging folder; on success it replaces ``out_dir`` whole.

    The staging folder ``.NAME.staging-*`` sits beside ``out_dir`` (same filesystem) and
    is swapped in by rename, so readers see the old folder or the new one, never a mix of
    their files. If the body raises, the staging folder is removed and ``out_dir`` is left
    as it was. The lock ``.NAME.lock`` is held throughout (see ``out_lock``); a folder that
    holds files latent-audit did not write is refused before anything is written.
    """
    out_dir = Path(out_dir)
    with out_lock(out_dir):
        _clean_stale(out_dir)
        _check_ours(out_dir)
        try:
            stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.staging-",
                                          dir=out_dir.parent))
            os.chmod(stage, 0o777 & ~_umask())
        except OSError as exc:
            raise InputError(f"cannot create the output folder ({exc.strerror})",
                             source=out_dir, key="--out") from None
        try:
            yield stage
            _swap(stage, out_dir)
        finally:
            if os.path.lexists(stage):
                shutil.rmtree(stage, ignore_errors=True)
