"""Word Embedding Association Test (WEAT, Caliskan et al., 2017) on arrays of vectors.

Two target sets ``X`` and ``Y`` and two attribute sets ``A`` and ``B`` are compared by
cosine similarity. Each target vector ``w`` gets the association

    s(w, A, B) = mean_a cos(w, a) - mean_b cos(w, b),

the test statistic is ``sum_x s(x) - sum_y s(y)`` and the effect size is
``(mean_x s(x) - mean_y s(y)) / std_{w in X u Y} s(w)``.

:func:`weat` is the one-sided test; :func:`weat_test` gives the p-value of a chosen
alternative (both directions, with :func:`weat_normal_pvalue` as the tail estimate when
sampled partitions run out), as the ``bias`` check reports it.

Conventions chosen here (the paper leaves them open):

* **Standard deviation.** ``ddof=1`` (sample standard deviation) by default. WEFE's
  ``WEAT`` uses ``np.std``, i.e. ``ddof=0``; pass ``ddof=0`` to reproduce its numbers.
  The two differ by the factor ``sqrt((n - 1) / n)`` with ``n = |X| + |Y|``.
* **p-value.** One-sided, ``P(statistic >= observed)`` over the partitions of ``X u Y``
  into a set of size ``|X|`` and one of size ``|Y|``; ties (within rounding) count as
  "at least as extreme", so the observed partition is always among them. The paper writes
  a strict ``>``, which is not a valid p-value (it can be 0).
  When the number of partitions ``C(|X| + |Y|, |X|)`` is at most ``exact_max`` they are
  all enumerated and the p-value is exact (``count / C``). Otherwise ``n_permutations``
  partitions are drawn independently and uniformly and the p-value is
  ``(count + 1) / (n_permutations + 1)`` (Phipson & Smyth, 2010), which never
  understates the exact p-value in expectation. WEFE instead draws its "permutations"
  *with replacement* of words, so its partitions can repeat a word; its p-values are
  close to, but not the same as, these.
* **Unequal sizes.** ``|X| != |Y|`` is allowed. The statistic then is not centred at 0
  under the null, but it is an increasing function of ``sum_x s(x)`` for fixed
  ``X u Y``, exactly like the difference of means, so the permutation p-value is the
  same as for the difference of means and remains valid; the effect size uses means and
  stays comparable across sizes.
"""
from __future__ import annotations

import itertools
import math
import numbers
import warnings
from typing import Any

import numpy as np
from scipy import stats
from sklearn.utils import check_random_state

from ._validation import validate_int, validate_matrix

__all__ = ["weat", "weat_normal_pvalue", "weat_test"]

_ALTERNATIVES = ("two-sided", "greater", "less")

# Upper bound on the number of indices held at once while enumerating or sampling.
_CHUNK_VALUES = 1 << 20
_EPS = float(np.finfo(np.float64).eps)


def _unit_rows(x: np.ndarray, name: str) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1)
    if np.any(norms == 0):
        bad = np.flatnonzero(norms == 0).tolist()
        raise ValueError(f"{name} has zero vectors at rows {bad[:10]}: their cosine "
                         "similarity is undefined")
    return x / norms[:, None]


def _associations(w: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``s(w, A, B)`` for every row of ``w``; all inputs are unit rows."""
    return (w @ a.T).mean(axis=1) - (w @ b.T).mean(axis=1)


def _exact_count(s: np.ndarray, n_x: int, threshold: float) -> tuple[int, int]:
    """Number of size-``n_x`` subsets of ``s`` whose sum is >= ``threshold``, and of subsets."""
    n = s.shape[0]
    rows = max(1, _CHUNK_VALUES // n_x)
    combos = itertools.combinations(range(n), n_x)
    count = total = 0
    while True:
        flat = np.fromiter(itertools.chain.from_iterable(itertools.islice(combos, rows)),
                           dtype=np.intp)
        if flat.size == 0:
            return count, total
        sums = s[flat.reshape(-1, n_x)].sum(axis=1)
        count += int(np.count_nonzero(sums >= threshold))
        total += sums.shape[0]


def _sampled_count(s: np.ndarray, n_x: int, threshold: float, n_samples: int,
                   rng: np.random.RandomState) -> int:
    """Like :func:`_exact_count` over ``n_samples`` independent uniform random subsets."""
    n = s.shape[0]
    rows = max(1, _CHUNK_VALUES // n)
    count = 0
    done = 0
    while done < n_samples:
        b = min(rows, n_samples - done)
        # The n_x smallest of n i.i.d. uniform keys are a uniform random n_x-subset.
        idx = np.argpartition(rng.random_sample((b, n)), n_x - 1, axis=1)[:, :n_x]
        count += int(np.count_nonzero(s[idx].sum(axis=1) >= threshold))
        done += b
    return count


def weat(X, Y, A, B, *, ddof: int = 1, n_permutations: int = 10000,
         exact_max: int = 100_000, random_state=None) -> dict[str, Any]:
    """Word Embedding Association Test: effect size, statistic and permutation p-value.

    Parameters
    ----------
    X, Y : array-like of shape (n_x, d) and (n_y, d)
        Target vectors (e.g. embeddings of two sets of names). Sizes may differ; see the
        module notes. No row may be the zero vector.
    A, B : array-like of shape (n_a, d) and (n_b, d)
        Attribute vectors (e.g. embeddings of pleasant and unpleasant words).
    ddof : int, default=1
        Delta degrees of freedom of the standard deviation in the effect size, 0 or 1.
        1 is the sample standard deviation; WEFE uses 0.
    n_permutations : int, default=10000
        Number of random partitions drawn when the test is not exact, >= 1.
    exact_max : int, default=100_000
        Enumerate all ``C(n_x + n_y, n_x)`` partitions when there are at most this many,
        >= 0 (0 always samples).
    random_state : int, RandomState instance or None, default=None
        Seeds the sampled partitions; unused when the test is exact.

    Returns
    -------
    result : dict
        ``effect_size`` (float; nan with a ``RuntimeWarning`` when ``s`` is constant over
        ``X u Y``), ``statistic`` (float, ``sum_x s - sum_y s``), ``p_value`` (float,
        one-sided: small when ``X`` is more associated with ``A`` than ``Y`` is;
        swap ``A`` and ``B`` for the other direction), ``exact`` (bool) and
        ``n_partitions`` (int, the number of partitions enumerated or sampled).

    References
    ----------
    .. [1] A. Caliskan, J. J. Bryson and A. Narayanan, "Semantics derived automatically
       from language corpora contain human-like biases", Science 356(6334), 2017.
    .. [2] B. Phipson and G. K. Smyth, "Permutation p-values should never be zero",
       Stat. Appl. Genet. Mol. Biol. 9(1), 2010.
    .. [3] P. Badilla, F. Bravo-Marquez and J. Pérez, "WEFE: The Word Embeddings Fairness
       Evaluation Framework", IJCAI 2020.

    Examples
    --------
    >>> A = [[1.0, 0.0], [0.9, 0.1]]
    >>> B = [[0.0, 1.0], [0.1, 0.9]]
    >>> X = [[1.0, 0.2], [0.8, 0.1], [1.0, 0.3]]
    >>> Y = [[0.2, 1.0], [0.1, 0.7], [0.3, 1.0]]
    >>> res = weat(X, Y, A, B)
    >>> round(res["effect_size"], 3), round(res["statistic"], 3)
    (1.817, 4.357)
    >>> res["p_value"], res["exact"], res["n_partitions"]
    (0.05, True, 20)
    """
    X = validate_matrix(X, "X")
    Y = validate_matrix(Y, "Y")
    A = validate_matrix(A, "A")
    B = validate_matrix(B, "B")
    d = X.shape[1]
    for name, arr in (("Y", Y), ("A", A), ("B", B)):
        if arr.shape[1] != d:
            raise ValueError(f"X and {name} must have the same number of features, got "
                             f"{d} (X) and {arr.shape[1]} ({name})")
    ddof = validate_int(ddof, "ddof", low=0, high=1)
    n_permutations = validate_int(n_permutations, "n_permutations", low=1)
    exact_max = validate_int(exact_max, "exact_max", low=0)
    n_x, n_y = X.shape[0], Y.shape[0]  # n_x + n_y >= 2 > ddof

    a = _unit_rows(A, "A")
    b = _unit_rows(B, "B")
    s = _associations(np.vstack([_unit_rows(X, "X"), _unit_rows(Y, "Y")]), a, b)
    s_x, s_y = s[:n_x], s[n_x:]
    statistic = float(s_x.sum() - s_y.sum())

    sd = float(np.std(s, ddof=ddof))
    if sd > 0:
        effect_size = float((s_x.mean() - s_y.mean()) / sd)
    else:
        warnings.warn("WEAT effect size is undefined: the association s(w, A, B) is the "
                      "same for every target vector; returning nan", RuntimeWarning,
                      stacklevel=2)
        effect_size = float("nan")

    # statistic = 2 * sum_I s - sum(s), so partitions are ranked by sum_I s. Partition sums
    # that are equal in exact arithmetic can differ by rounding: the band below makes them
    # count as ties, so the observed partition always counts.
    observed = float(s_x.sum())
    tol = 8.0 * (s.shape[0] + 2) * _EPS * float(np.abs(s).max())
    threshold = observed - tol
    n_total = math.comb(n_x + n_y, n_x)
    if n_total <= exact_max:
        count, enumerated = _exact_count(s, n_x, threshold)
        p_value = count / enumerated
        exact, n_partitions = True, enumerated
    else:
        rng = check_random_state(random_state)
        count = _sampled_count(s, n_x, threshold, n_permutations, rng)
        p_value = (count + 1) / (n_permutations + 1)
        exact, n_partitions = False, n_permutations
    return {"effect_size": effect_size, "statistic": statistic, "p_value": float(p_value),
            "exact": exact, "n_partitions": int(n_partitions)}


def weat_normal_pvalue(X, Y, A, B) -> float:
    """Normal approximation of the one-sided WEAT permutation p-value.

    Under a uniformly random partition of ``X u Y`` into sets of sizes ``n_x`` and
    ``n_y``, the sum of the associations ``s(w, A, B)`` over the first set has the exact
    mean ``n_x * mean(s)`` and variance ``n_x n_y / (n (n - 1)) * sum (s - mean(s))^2``
    (sampling without replacement; ``n = n_x + n_y``), and is close to normal when the
    sets are large (Hoeffding's combinatorial central limit theorem). Returns
    ``P(sum >= observed)`` under that normal law: the tail estimate to use when a sampled
    test finds no partition as extreme as the observed one (see
    :func:`~audit.metrics.weat`, whose conventions it follows).

    Examples
    --------
    >>> A = [[1.0, 0.0], [0.9, 0.1]]
    >>> B = [[0.0, 1.0], [0.1, 0.9]]
    >>> X = [[1.0, 0.2], [0.8, 0.1], [1.0, 0.3]]
    >>> Y = [[0.2, 1.0], [0.1, 0.7], [0.3, 1.0]]
    >>> round(weat_normal_pvalue(X, Y, A, B), 4)  # exact: 0.05; the law is for large sets
    0.013
    """
    def unit(v):
        v = np.asarray(v, dtype=float)
        return v / np.linalg.norm(v, axis=1, keepdims=True)
    x, y, a, b = unit(X), unit(Y), unit(A), unit(B)
    w = np.vstack([x, y])
    s = (w @ a.T).mean(axis=1) - (w @ b.T).mean(axis=1)
    n_x, n = x.shape[0], w.shape[0]
    var = n_x * (n - n_x) / (n * (n - 1)) * float(((s - s.mean()) ** 2).sum())
    if var <= 0:
        return 1.0
    return float(stats.norm.sf((s[:n_x].sum() - n_x * s.mean()) / math.sqrt(var)))


def weat_test(X, Y, A, B, *, alternative: str = "two-sided", n_permutations: int = 1000,
              random_state=None) -> dict[str, Any]:
    """WEAT with the p-value of one alternative, tail-corrected where sampling runs out.

    Runs :func:`weat` for "X is more associated with A than Y is" and, swapping the
    targets, for the reverse. A sampled (not exact) one-sided p-value at its floor
    ``1 / (n_permutations + 1)`` (no sampled partition as extreme as the observed one) is
    replaced by the smaller :func:`weat_normal_pvalue`, so a modest number of
    permutations can still pass a multiple-testing correction over many tests.

    Parameters
    ----------
    X, Y, A, B : array-like of shape (n_x, d), (n_y, d), (n_a, d), (n_b, d)
        As in :func:`weat`.
    alternative : {"two-sided", "greater", "less"}, default="two-sided"
        "greater": X is more associated with A than Y is; "less": the reverse;
        "two-sided": twice the smaller one-sided p-value (at most 1).
    n_permutations : int, default=1000
        Random partitions per direction when the test is not exact, >= 1.
    random_state : int, RandomState instance or None, default=None
        An int seeds the first direction with ``random_state`` and the second with
        ``random_state + 1``.

    Returns
    -------
    result : dict
        ``effect_size``, ``statistic``, ``exact`` and ``n_partitions`` of the first
        direction (as :func:`weat`), ``p_value`` (float, for ``alternative``) and
        ``p_method`` (``"exact"``, ``"sampled"`` or ``"normal-tail"``).

    Examples
    --------
    >>> A = [[1.0, 0.0], [0.9, 0.1]]
    >>> B = [[0.0, 1.0], [0.1, 0.9]]
    >>> X = [[1.0, 0.2], [0.8, 0.1], [1.0, 0.3]]
    >>> Y = [[0.2, 1.0], [0.1, 0.7], [0.3, 1.0]]
    >>> res = weat_test(X, Y, A, B, alternative="greater")
    >>> res["p_value"], res["p_method"], round(res["effect_size"], 3)
    (0.05, 'exact', 1.817)
    >>> weat_test(X, Y, A, B)["p_value"]
    0.1
    """
    if alternative not in _ALTERNATIVES:
        raise ValueError(f"alternative must be one of {_ALTERNATIVES}, got {alternative!r}")
    n_permutations = validate_int(n_permutations, "n_permutations", low=1)
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        seed = int(random_state)
    else:
        seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max - 1))
    greater = weat(X, Y, A, B, n_permutations=n_permutations, random_state=seed)
    less = weat(Y, X, A, B, n_permutations=n_permutations, random_state=seed + 1)
    p_greater, p_less = greater["p_value"], less["p_value"]
    floor = 1.0 / (n_permutations + 1)
    tail = False
    # a sampled test that found no partition as extreme: the permutation law's normal
    # approximation (exact mean and variance) estimates the tail beyond 1 / (B + 1)
    if not greater["exact"] and p_greater <= floor:
        p_greater, tail = min(p_greater, weat_normal_pvalue(X, Y, A, B)), True
    if not less["exact"] and p_less <= floor:
        p_less, tail = min(p_less, weat_normal_pvalue(Y, X, A, B)), True
    if alternative == "greater":
        p = p_greater
    elif alternative == "less":
        p = p_less
    else:
        p = min(1.0, 2 * min(p_greater, p_less))
    return {"effect_size": greater["effect_size"], "statistic": greater["statistic"],
            "p_value": float(p), "exact": greater["exact"],
            "n_partitions": greater["n_partitions"],
            "p_method": "exact" if greater["exact"] else ("normal-tail" if tail else "sampled")}
