"""How the check writes numbers: JSON-safe floats and matrices, and short text."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["matrix", "num", "opt_float"]


def opt_float(x: Any) -> float | None:
    """``x`` as a float, or ``None`` when it is not a finite number (JSON has no NaN)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def matrix(a: np.ndarray, digits: int = 4) -> list[list[float | None]]:
    """A matrix as nested lists, rounded to ``digits``, non-finite entries ``None``."""
    return [[opt_float(round(float(v), digits)) if np.isfinite(v) else None for v in row]
            for row in np.asarray(a, dtype=float)]


def num(v: float | None, digits: int = 2) -> str:
    """A number for a sentence: ``digits`` decimals, ``n/a`` when undefined."""
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"
