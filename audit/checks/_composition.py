"""What each group of points is made of: the most common values of one metadata column per
group (clusters, gap regions), binned and labelled as in every other chart
(:func:`audit.columns.group_column`)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..columns import MISSING, group_column, range_labels

__all__ = ["composition"]


def composition(values: pd.Series, labels: np.ndarray, *, top: int = 10,
                bins: int = 4, edges: np.ndarray | None = None) -> dict:
    """Per group, the most common values of one column (numeric columns in quantile bins,
    or in the given ``edges``, e.g. the data's for a reference).

    Returns ``{"values": [...], "clusters": [{"cluster", "n", "top": [{"value", "share",
    "overall_share"}]}]}`` where ``values`` lists the column's values in display order:
    every bin in order for a binned column, otherwise the most common first; missing
    values are one value, ``"<missing>"`` (listed last for a binned column).
    """
    groups = group_column(values, bins=bins, edges=edges)
    ser = pd.Series(groups.names(), dtype=object)
    overall = ser.value_counts(normalize=True)
    rows = []
    for c in sorted(set(labels.tolist())):
        sub = ser[labels == c]
        shares = sub.value_counts(normalize=True).head(top)
        rows.append({"cluster": int(c), "n": int(len(sub)),
                     "top": [{"value": str(v), "share": float(s),
                              "overall_share": float(overall.get(v, 0.0))}
                             for v, s in shares.items()]})
    if groups.numeric:          # every bin, empty ones too: the same bins in every chart
        order = range_labels(groups.edges) + ([MISSING] if MISSING in overall.index else [])
    else:
        order = [str(v) for v in overall.index]
    return {"values": order, "clusters": rows}
