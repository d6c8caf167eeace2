"""Random streams are named, and no two call sites share a name (issue 13, item 5)."""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from audit.streams import stream, stream_key, stream_seed

AUDIT = Path(__file__).resolve().parents[1] / "audit"
_CALL = re.compile(r"""\.rng\(\s*(f?)(["'])(.+?)\2""")
_SAMPLE = re.compile(r"""(_(?:sample|seeded_rows|subsample|seed))\([^)]*?(["'])([a-z_.{}\[\]]+)\2\)""")


def _names() -> list[tuple[str, str]]:
    found = []
    for path in AUDIT.rglob("*.py"):
        text = path.read_text()
        for rx in (_CALL, _SAMPLE):
            for m in rx.finditer(text):
                name = m.group(3) if rx is _CALL else f"{m.group(1)}:{m.group(3)}"
                found.append((name, f"{path.relative_to(AUDIT)}:{text[:m.start()].count(chr(10)) + 1}"))
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
