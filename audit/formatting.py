"""Numbers as finding text writes them: one helper per kind, used by every check."""
from __future__ import annotations

import math

__all__ = ["format_p"]

_TINY = 1e-300


def format_p(p: float | None, *, digits: int = 2, name: str = "p") -> str:
    """``"p = 0.012"``; below 1e-300 (a p-value that underflows to 0) ``"p < 1e-300"``.

    A p-value is never printed as 0: a test only bounds it. ``name`` labels the value
    (``"BH-adjusted p"``, ``"q"``); an undefined value reads ``"p = –"``.

    >>> format_p(0.01234), format_p(0.0), format_p(3e-320), format_p(float("nan"))
    ('p = 0.012', 'p < 1e-300', 'p < 1e-300', 'p = –')
    >>> format_p(1.0, name="BH-adjusted p")
    'BH-adjusted p = 1'
    """
    if p is None or not math.isfinite(p):
        return f"{name} = –"
    if p < _TINY:
        return f"{name} < 1e-300"
    return f"{name} = {p:.{digits}g}"
