"""Named random streams: every random draw of an audit comes from a stream named for its use.

A stream is seeded from the run seed and a hash of its name (``"outliers.null"``), so two
uses share a stream only if they share a name, and adding a stream never shifts another.
"""
from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["stream", "stream_key", "stream_seed"]


def stream_key(name: str) -> list[int]:
    """Four 32-bit words from a hash of ``name`` (the entropy beside the run seed)."""
    if not isinstance(name, str) or not name.strip():
        raise TypeError("a random stream is named by a non-empty string such as "
                        f"'outliers.null', not {name!r}")
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=16).digest()
    return [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)]


def stream(seed: int, name: str) -> np.random.Generator:
    """The generator for stream ``name`` of a run seeded with ``seed``.

    >>> a, b = stream(0, "outliers.null"), stream(0, "outliers.bootstrap")
    >>> bool(a.random() == stream(0, "outliers.null").random()), bool(a.random() == b.random())
    (True, False)
    """
    return np.random.default_rng([int(seed), *stream_key(name)])


def stream_seed(seed: int, name: str) -> int:
    """An integer seed (for a library's ``random_state``) drawn from stream ``name``."""
    return int(stream(seed, name).integers(2 ** 31 - 1))
