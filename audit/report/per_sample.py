"""per_sample.parquet: every numeric per-sample column of a run, one row per data point."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..findings import AuditResult

__all__ = ["per_sample_frame", "write_per_sample"]


def per_sample_frame(result: AuditResult) -> pd.DataFrame:
    """An ``id`` column (the data's ids, as strings) and one column per numeric
    per-sample array of the checks, named ``<check>.<column>`` (``result.per_sample``)."""
    n = int(result.run["n"])
    ids = result.ids if result.ids is not None else range(n)
    return pd.DataFrame({"id": [str(i) for i in ids], **result.per_sample})


def write_per_sample(result: AuditResult, path: Path) -> Path:
    """Write ``per_sample_frame(result)`` to ``path`` (parquet)."""
    per_sample_frame(result).to_parquet(path, index=False)
    return Path(path)
