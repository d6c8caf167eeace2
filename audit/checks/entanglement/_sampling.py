"""The check's seeded draws: integer seeds for the metrics and row subsamples, each from
its own named stream of ``ctx.rng`` (``entanglement.<stage>.seed`` / ``.rows``)."""
from __future__ import annotations

import numpy as np

from ...context import Context

__all__ = ["_seed", "_subsample"]


def _seed(ctx: Context, stage: str) -> int:
    """An integer ``random_state`` for one stage's metric."""
    return int(ctx.rng(f"entanglement.{stage}.seed").integers(np.iinfo(np.int32).max))


def _subsample(ctx: Context, rows: np.ndarray, cap: int, stage: str) -> np.ndarray:
    """At most ``cap`` of ``rows``, drawn without replacement and sorted."""
    return ctx.sample_rows(rows, cap, f"entanglement.{stage}.rows")
