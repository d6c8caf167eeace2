"""Random streams are named, and no two call sites share a name (issue 13, item 5)."""
from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from audit.streams import stream, stream_key, stream_seed

AUDIT = Path(__file__).resolve().parents[1] / "audit"
#: calls that take a stream name: the context's, and the helpers that forward one
_TAKES_STREAM = {"rng", "sample_rows", "_seed", "_subsample", "_clusters", "stream", "stream_seed"}


def _stream_arg(node: ast.Call) -> str | None:
    """The stream-name argument of a call (a string, or an f-string as its template)."""
    for arg in node.args:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return arg.value
        if isinstance(arg, ast.JoinedStr):
            return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in arg.values)
    return None


def _names() -> list[tuple[str, str]]:
    """(stream name, where) for every call in audit/ that names a random stream."""
    found = []
    for path in AUDIT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            fname = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
            if fname in _TAKES_STREAM and (name := _stream_arg(node)) is not None:
                # helpers forwarding a stage name add their own suffix
                key = name if fname in ("rng", "sample_rows", "stream", "_clusters") else f"{fname}:{name}"
                found.append((key, f"{path.relative_to(AUDIT)}:{node.lineno}"))
    return found


def test_every_stream_name_is_used_at_one_call_site():
    names = _names()
    assert len(names) >= 25, names          # the scan finds the audit's streams
    counts = Counter(n for n, _ in names)
    shared = {n: [w for m, w in names if m == n] for n, c in counts.items() if c > 1}
    assert not shared, f"random streams shared by several call sites: {shared}"


def test_no_integer_salts_remain():
    for path in AUDIT.rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"\.rng\(\s*\d", text), path
        assert "salt" not in text, path


def test_streams_are_reproducible_and_distinct():
    a = stream(7, "outliers.null").random(5)
    assert np.array_equal(a, stream(7, "outliers.null").random(5))
    assert not np.array_equal(a, stream(7, "outliers.bootstrap").random(5))
    assert not np.array_equal(a, stream(8, "outliers.null").random(5))
    assert stream_seed(0, "x") == stream_seed(0, "x") != stream_seed(0, "y")
    assert len(stream_key("a")) == 4 and all(0 <= w < 2 ** 32 for w in stream_key("a"))


@pytest.mark.parametrize("bad", [11, "", "  ", None])
def test_a_stream_needs_a_name(bad):
    with pytest.raises(TypeError, match="named by a non-empty string"):
        stream(0, bad)
