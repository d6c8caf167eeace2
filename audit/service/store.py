"""The artifact store: run folders as blobs under one fsspec URL (a local folder by default).

Keys are relative paths of plain components (``audits/12/store/latents/part-00000.npy``);
:func:`clean_relpath` is the one gate every name from outside passes, so nothing an
uploader names can leave the store.
"""
from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO

import fsspec
from fsspec.core import url_to_fs

__all__ = ["ArtifactStore", "UnsafeName", "clean_relpath"]

_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_MAX_DEPTH = 8


class UnsafeName(ValueError):
    """A name from outside that is not a plain relative path."""


def clean_relpath(name: str) -> str:
    """``name`` as a safe relative POSIX path, or :class:`UnsafeName`.

    Refused: empty, absolute, backslashes, ``..`` or ``.`` parts, control characters, a part
    that starts with a dot or holds anything but letters, digits, ``._-``, deeper than 8.

    >>> clean_relpath("store/latents/part-00000.npy")
    'store/latents/part-00000.npy'
    >>> clean_relpath("../etc/passwd")
    Traceback (most recent call last):
    ...
    audit.service.store.UnsafeName: '../etc/passwd': a part of the name is not allowed ('..')
    """
    if not isinstance(name, str) or not name or len(name) > 512:
        raise UnsafeName(f"{name!r}: empty or too long")
    if "\\" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise UnsafeName(f"{name!r}: not a relative path")
    parts = name.split("/")
    if len(parts) > _MAX_DEPTH:
        raise UnsafeName(f"{name!r}: deeper than {_MAX_DEPTH} folders")
    for part in parts:
        if not _PART.match(part):
            raise UnsafeName(f"{name!r}: a part of the name is not allowed ({part!r})")
    return str(PurePosixPath(*parts))


class ArtifactStore:
    """Blobs under ``url``: a folder path or any fsspec URL (``s3://bucket/prefix``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.fs, root = url_to_fs(url)
        self.root = root.rstrip("/")
        self.local = isinstance(self.fs, fsspec.implementations.local.LocalFileSystem)
        if self.local:
            Path(self.root).mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> str:
        return f"{self.root}/{clean_relpath(key)}"

    def local_path(self, key: str) -> Path | None:
        """The file's path on this machine when the store is a local folder, else None."""
        return Path(self._path(key)) if self.local else None

    def put_stream(self, key: str, src: IO[bytes]) -> int:
        """Copy ``src`` to ``key``; returns the bytes written."""
        path = self._path(key)
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        with self.fs.open(path, "wb") as dst:
            shutil.copyfileobj(src, dst, length=1 << 20)
            return dst.tell() if hasattr(dst, "tell") else 0

    def put_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        with self.fs.open(path, "wb") as dst:
            dst.write(data)

    def put_file(self, key: str, local: Path) -> None:
        with open(local, "rb") as src:
            self.put_stream(key, src)

    def read_bytes(self, key: str) -> bytes:
        with self.fs.open(self._path(key), "rb") as f:
            return f.read()

    def open(self, key: str) -> IO[bytes]:
        return self.fs.open(self._path(key), "rb")

    def exists(self, key: str) -> bool:
        return self.fs.exists(self._path(key))

    def keys(self, prefix: str) -> Iterator[str]:
        """Every file under ``prefix``, as keys relative to the store's root."""
        base = self._path(prefix)
        if not self.fs.exists(base):
            return
        for path in sorted(self.fs.find(base)):
            yield path[len(self.root) + 1:]

    def materialize(self, prefix: str, cache: Path) -> Path:
        """A local folder holding ``prefix``'s files: the store's own folder when it is
        local, else a copy under ``cache`` (made once)."""
        if self.local:
            return Path(self._path(prefix))
        target = cache / clean_relpath(prefix)
        done = target / ".complete"
        if not done.exists():
            tmp = target.with_name(target.name + ".partial")
            shutil.rmtree(tmp, ignore_errors=True)
            for key in self.keys(prefix):
                out = tmp / key[len(prefix.rstrip("/")) + 1:]
                out.parent.mkdir(parents=True, exist_ok=True)
                with self.fs.open(f"{self.root}/{key}", "rb") as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, length=1 << 20)
            shutil.rmtree(target, ignore_errors=True)
            tmp.mkdir(parents=True, exist_ok=True)
            tmp.rename(target)
            done.touch()
        return target

    def delete(self, prefix: str) -> None:
        path = self._path(prefix)
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)
