"""``bias``: how the latents treat the groups of each protected column.

Five questions, each answered with an effect size, a p-value or an interval, and evidence,
each in its own module:

1. **Leakage** (``leakage.py``): can a cross-validated linear probe read the group from
   the latents (AUC, permutation p-value), also once the configured ``attributes`` are
   regressed out?
2. **Representation** (``representation.py``): is every group spread over the HDBSCAN
   clusters as its overall share predicts (chi-square and Cramér's V per column, exact
   binomial test per cell)?
3. **Density and coverage disparity** (``disparity.py``): do a group's members sit more
   often in low-density regions, in HDBSCAN noise, among the GLOSH outliers or (with a
   reference) in reference regions the data leaves uncovered (per-group rates, Wilson
   intervals, disparity ratio)?
4. **Outcome slices** (``slices.py``): with ``outcome:`` set, clusters, groups and group x
   cluster cells where the outcome is worse than in the rest of the data.
5. **WEAT** (``weat.py``) on metadata selections or word sets: target sets X, Y and
   attribute sets A, B, compared by cosine.

``check.py`` holds the registered :class:`BiasCheck` and runs the questions in order;
``settings.py`` the settings of each question; ``state.py`` what a run shares (the test
family, finding ids, the groups of each column). The statistics are in ``audit.metrics``.

Missing values of a protected column form their own group (``<missing>``); groups with
fewer than ``min_group_size`` members are listed as untested (an ``info`` finding each)
and take part in no test. Every p-value of the check goes into one Benjamini–Hochberg
correction; a finding is flagged only when its adjusted p-value is at most ``alpha`` AND
its effect size passes the minimum of its kind, so on data where the groups are
independent of everything the chance of any flagged bias finding is at most ``alpha``.
See docs/checks/bias.md.
"""
from __future__ import annotations

from .check import BiasCheck
from .settings import Selection, WeatTest

__all__ = ["BiasCheck", "Selection", "WeatTest"]
