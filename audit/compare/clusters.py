"""How clusters map across: the contingency of two cluster labellings of the same points.

Each baseline cluster is ``kept``, ``split``, ``merged`` (with another), ``vanished`` (into
noise) or ``dispersed`` (none of these: spread over many candidate clusters and noise);
each candidate cluster that no baseline cluster sent a substantial share of itself to has
``appeared``. Labels come from HDBSCAN on each side (:func:`cluster_labels`, the audit's
clustering through :func:`audit.geometry.fit_clusters`); -1 is noise.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..findings import Finding
from ..geometry import fit_clusters
from ..metrics import wilson_interval
from ._space import cluster_space

__all__ = ["ClusterMapping", "cluster_labels", "cluster_mapping"]

CHECK = "compare"
KINDS = ("kept", "split", "merged", "vanished", "dispersed")
_SEVERITY = {"split": "warning", "merged": "warning", "vanished": "critical",
             "appeared": "warning"}


@dataclass(frozen=True, eq=False)
class ClusterMapping:
    """The contingency table and what became of each cluster.

    ``table[i, j]``: matched points in baseline cluster ``base_labels[i]`` and candidate
    cluster ``cand_labels[j]`` (label -1, noise, is the last row and the last column).
    ``kinds``: baseline cluster -> kind; ``targets``: baseline cluster -> the candidate
    clusters that took at least ``split_share`` of it; ``appeared``: candidate clusters
    without a baseline counterpart; ``findings``: one per cluster that did not stay.
    """

    table: np.ndarray
    base_labels: np.ndarray
    cand_labels: np.ndarray
    kinds: dict[int, str]
    targets: dict[int, tuple[int, ...]]
    appeared: tuple[int, ...]
    findings: tuple[Finding, ...]

    def to_json(self) -> dict:
        """Plain data for a report (the table and the mapping)."""
        return {"base_labels": [int(v) for v in self.base_labels],
                "cand_labels": [int(v) for v in self.cand_labels],
                "table": self.table.tolist(),
                "kinds": {str(b): k for b, k in self.kinds.items()},
                "targets": {str(b): [int(c) for c in t] for b, t in self.targets.items()},
                "appeared": [int(c) for c in self.appeared]}


def cluster_labels(x, *, rng: np.random.Generator, scale: str = "none",
                   cluster_dims: int = 10, sample: int = 20000,
                   min_cluster_size: int | None = None,
                   min_samples: int | None = None) -> np.ndarray:
    """HDBSCAN labels (-1 noise) of one side, fitted as the audit fits its clusters: on the
    side's leading ``cluster_dims`` PCA components (its own scaler), on a sample of at most
    ``sample`` rows drawn from ``rng``, extended to the rest
    (:func:`audit.geometry.fit_clusters`)."""
    space = cluster_space(np.asarray(x), rng=rng, scale=scale, cluster_dims=cluster_dims)
    return fit_clusters(space, rng=rng, sample=sample, min_cluster_size=min_cluster_size,
                        min_samples=min_samples).labels


def _contingency(base: np.ndarray, cand: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    bl = np.array(sorted(set(base.tolist()) - {-1}) + [-1], dtype=np.int64)
    cl = np.array(sorted(set(cand.tolist()) - {-1}) + [-1], dtype=np.int64)
    bi = np.searchsorted(bl[:-1], base)
    bi[base == -1] = len(bl) - 1
    ci = np.searchsorted(cl[:-1], cand)
    ci[cand == -1] = len(cl) - 1
    table = np.zeros((len(bl), len(cl)), dtype=np.int64)
    np.add.at(table, (bi, ci), 1)
    return table, bl, cl


def _ev(ids: np.ndarray, mask: np.ndarray) -> tuple[str, ...]:
    return tuple(str(i) for i in ids[mask])


def cluster_mapping(base_labels, cand_labels, ids, *, keep_share: float = 0.5,
                    keep_purity: float = 0.5, split_share: float = 0.2,
                    merge_share: float = 0.5, vanish_share: float = 0.5) -> ClusterMapping:
    """Map the baseline's clusters onto the candidate's over the matched points.

    With ``n_bc`` the points of baseline cluster ``b`` in candidate cluster ``c`` (``c =
    -1``: noise), ``f_bc = n_bc / n_b`` the share of ``b`` that went to ``c`` and ``g_bc =
    n_bc / sum_{b' != -1} n_b'c`` the share of ``c``'s clustered-before points that came from
    ``b``, each baseline cluster is, in this order of precedence:

    * ``vanished``: ``f_b,-1 >= vanish_share`` (mostly noise in the candidate);
    * ``split``: two or more candidate clusters with ``f_bc >= split_share``;
    * ``merged``: its main candidate cluster ``c*`` has ``f_bc* >= merge_share`` and also
      takes ``f_b'c* >= merge_share`` of another baseline cluster ``b'``, or is mostly made
      of other clusters' points (``g_bc* < keep_purity``);
    * ``kept``: ``f_bc* >= keep_share`` and ``g_bc* >= keep_purity``;
    * ``dispersed``: none of these.

    A candidate cluster ``c`` has ``appeared`` when no baseline cluster has ``f_bc >=
    split_share``.

    Findings (one per non-``kept`` outcome, numbered per kind in label order):
    ``compare-cluster-vanished-<i>`` (critical; value and Wilson ``ci``: the share of ``b``
    now noise), ``compare-cluster-split-<i>`` (warning; the share in its largest piece),
    ``compare-cluster-merged-<i>`` (warning, one per candidate cluster that is the main
    destination of a ``merged`` baseline cluster, naming every baseline cluster that sent it
    at least ``split_share`` of itself, one that counts as ``split`` included; value: the
    largest source's share ``g`` of the cluster),
    ``compare-cluster-dispersed-<i>`` (warning; the share in its main destination) and
    ``compare-cluster-appeared-<i>`` (warning; the share of ``c`` that was noise in the
    baseline). Evidence: the ids the finding is about (the baseline cluster's members; for
    a merge, the merged clusters' members now in ``c*``; for an appearance, ``c``'s members).

    Parameters
    ----------
    base_labels : array-like of int, shape (n,)
        Baseline cluster of each matched point (-1 noise).
    cand_labels : array-like of int, shape (n,)
        Candidate cluster of the same points (-1 noise).
    ids : array-like of shape (n,)
        The matched ids.
    keep_share : float, default=0.5
        Share of a baseline cluster its main candidate cluster must take for ``kept``.
    keep_purity : float, default=0.5
        Share of that candidate cluster's (previously clustered) points that must come from
        the baseline cluster for ``kept``.
    split_share : float, default=0.2
        Share of a baseline cluster that makes a candidate cluster a substantial piece.
    merge_share : float, default=0.5
        Share of each of two baseline clusters one candidate cluster must take for a merge.
    vanish_share : float, default=0.5
        Share of a baseline cluster that must be noise in the candidate for ``vanished``.

    Returns
    -------
    ClusterMapping

    Examples
    --------
    >>> b = np.array([0] * 50 + [1] * 50 + [2] * 50)
    >>> c = np.array([0] * 50 + [0] * 50 + [-1] * 50)
    >>> m = cluster_mapping(b, c, np.arange(150).astype(str))
    >>> m.kinds
    {0: 'merged', 1: 'merged', 2: 'vanished'}
    >>> [f.id for f in m.findings]
    ['compare-cluster-vanished-1', 'compare-cluster-merged-1']
    """
    base = np.asarray(base_labels).astype(np.int64)
    cand = np.asarray(cand_labels).astype(np.int64)
    ids = np.asarray(ids)
    if base.shape != cand.shape or base.ndim != 1 or ids.shape != base.shape:
        raise ValueError(f"base_labels {base.shape}, cand_labels {cand.shape} and ids "
                         f"{ids.shape} must be 1-D with one entry per matched point")
    table, bl, cl = _contingency(base, cand)
    nb_clusters, nc_clusters = len(bl) - 1, len(cl) - 1
    sizes = table.sum(axis=1)
    f = table / np.maximum(sizes, 1)[:, None]                      # share of b sent to c
    clustered_in = table[:nb_clusters].sum(axis=0)                 # per c, from clusters
    g = table / np.maximum(clustered_in, 1)[None, :]
    kinds: dict[int, str] = {}
    targets: dict[int, tuple[int, ...]] = {}
    main: dict[int, int] = {}
    for i in range(nb_clusters):
        fr = f[i, :nc_clusters]
        pieces = np.flatnonzero(fr >= split_share)
        targets[int(bl[i])] = tuple(int(cl[j]) for j in pieces)
        j = int(np.argmax(fr)) if nc_clusters else -1
        main[i] = j
        others = [b for b in range(nb_clusters) if b != i and j >= 0
                  and f[b, j] >= merge_share]
        if f[i, -1] >= vanish_share:
            kind = "vanished"
        elif len(pieces) >= 2:
            kind = "split"
        elif j >= 0 and fr[j] >= merge_share and (others or g[i, j] < keep_purity):
            kind = "merged"
        elif j >= 0 and fr[j] >= keep_share and g[i, j] >= keep_purity:
            kind = "kept"
        else:
            kind = "dispersed"
        kinds[int(bl[i])] = kind
    appeared = tuple(int(cl[j]) for j in range(nc_clusters)
                     if not (f[:nb_clusters, j] >= split_share).any())

    findings: list[Finding] = []
    count = {k: 0 for k in ("vanished", "split", "dispersed", "merged", "appeared")}

    def add(kind: str, **kw) -> None:
        count[kind] += 1
        lo, hi = wilson_interval(kw.pop("hits"), kw.pop("total"))
        findings.append(Finding(id=f"compare-cluster-{kind}-{count[kind]}", check=CHECK,
                                severity=_SEVERITY.get(kind, "warning"),
                                metric=f"compare.clusters.{kind}", ci=(lo, hi), **kw))

    for i in range(nb_clusters):
        b, kind, n_b = int(bl[i]), kinds[int(bl[i])], int(sizes[i])
        members = base == b
        dest = {int(cl[j]): int(table[i, j]) for j in np.flatnonzero(table[i])}
        subjects = {"baseline_cluster": b, "size": n_b, "destinations": dest}
        if kind == "vanished":
            noise = int(table[i, -1])
            add("vanished", hits=noise, total=n_b,
                title=f"Baseline cluster {b} vanished into noise",
                summary=(f"{noise} of its {n_b} points ({noise / n_b:.0%}) are noise in the "
                         f"candidate."),
                value=noise / n_b, threshold=vanish_share, subjects=subjects,
                evidence_ids=_ev(ids, members))
        elif kind in ("split", "dispersed"):
            j = main[i]
            parts = ", ".join(f"{int(table[i, jj])} to cluster {int(cl[jj])}"
                              for jj in np.argsort(-table[i, :nc_clusters])
                              if f[i, jj] >= split_share)
            what = ("split across candidate clusters" if kind == "split"
                    else "dispersed: no candidate cluster takes most of it")
            add(kind, hits=int(table[i, j]), total=n_b,
                title=f"Baseline cluster {b} {what.split(':')[0]}",
                summary=(f"Of its {n_b} points: {parts or 'no substantial piece'}; "
                         f"{int(table[i, -1])} noise."),
                value=float(f[i, j]), threshold=split_share if kind == "split"
                else keep_share, subjects={**subjects, "pieces": list(targets[b])},
                evidence_ids=_ev(ids, members))
    for j in range(nc_clusters):
        sources = [i for i in range(nb_clusters) if f[i, j] >= split_share]
        if len(sources) < 2 or not any(kinds[int(bl[i])] == "merged" and main[i] == j
                                       for i in sources):
            continue
        c = int(cl[j])
        names = [int(bl[i]) for i in sources]
        top = max(sources, key=lambda i: table[i, j])
        mask = np.isin(base, names) & (cand == c)
        add("merged", hits=int(table[top, j]), total=int(clustered_in[j]),
            title=f"Baseline clusters {', '.join(map(str, names))} merged into one",
            summary=(f"Candidate cluster {c} takes "
                     + ", ".join(f"{int(table[i, j])} of the {int(sizes[i])} points of "
                                 f"cluster {int(bl[i])}" for i in sources) + "."),
            value=float(g[top, j]), threshold=merge_share,
            subjects={"candidate_cluster": c, "baseline_clusters": names,
                      "counts": {str(int(bl[i])): int(table[i, j]) for i in sources},
                      "shares": {str(int(bl[i])): float(f[i, j]) for i in sources}},
            evidence_ids=_ev(ids, mask))
    for c in appeared:
        j = int(np.flatnonzero(cl == c)[0])
        n_c = int(table[:, j].sum())
        from_noise = int(table[-1, j])
        add("appeared", hits=from_noise, total=n_c,
            title=f"Candidate cluster {c} has no baseline counterpart",
            summary=(f"Its {n_c} points: {from_noise} were noise in the baseline; no "
                     f"baseline cluster sent {split_share:.0%} of itself to it."),
            value=from_noise / max(n_c, 1), threshold=split_share,
            subjects={"candidate_cluster": c, "size": n_c,
                      "sources": {str(int(bl[i])): int(table[i, j])
                                  for i in np.flatnonzero(table[:, j])}},
            evidence_ids=_ev(ids, cand == c))
    return ClusterMapping(table=table, base_labels=bl, cand_labels=cl, kinds=kinds,
                          targets=targets, appeared=appeared, findings=tuple(findings))
