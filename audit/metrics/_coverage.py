"""k-NN precision, recall, density and coverage (Naeem et al., 2020), computed in row blocks.

The four numbers follow the reference implementation ``prdc.compute_prdc``: each point
gets the radius of its k-NN ball in its own set, counting the point itself as its 0th
neighbour, and a point is inside a ball only when its distance to the centre is
*strictly* smaller than the radius.

Nothing here builds an ``n x n`` matrix, and no float64 block spans a whole set.
Squared distances are streamed in float32 tiles (at most 256 x 4,096, one matrix product
of the centred points each, ``||a||^2 - 2 a.b + ||b||^2``) and only *screened*: a pair is
kept when its float32 value is within a proven bound (float32 rounding of the points and
of the product) of the radius it is compared with, or, for the radii, of a row's k-th
smallest value. The few pairs kept (about ``k`` a point) are decided on their distance
recomputed directly in float64, ``sqrt(sum((a - b)**2))``. Working memory is the tiles and
``O(n k)`` candidates. As a result:

* every comparison with a radius, and every radius, is the one the exact float64
  distances give: identical points are exactly 0 apart, and a pair of points is the same
  distance apart wherever it appears, so ties are settled the same way everywhere;
* the result does not depend on ``block_size`` or on the tile sizes.

Data that float32 cannot hold (or rows whose screen keeps too many candidates, as with
massive exact ties) go to float64 blocks of rows, with the same answer.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from ._stats import wilson_interval
from ._validation import MISSING_GROUP, validate_int, validate_labels, validate_matrix

__all__ = ["coverage", "knn_radii", "uncovered_mask", "uncovered_from_graph",
           "coverage_by_group", "MISSING_GROUP"]


_EPS = float(np.finfo(np.float64).eps)
# Upper bound on the number of float64 values in one temporary array of pair differences.
_PAIR_CHUNK_VALUES = 1 << 21


# --------------------------------------------------------------------------- validation

def _check_k(k: Any, sizes: dict[str, int]) -> int:
    """``k`` as int in [1, min(sizes) - 1]; ``sizes`` names each set whose radii are needed."""
    k = validate_int(k, "k", low=1)
    for name, n in sizes.items():
        if k >= n:
            raise ValueError(
                f"k={k} must be smaller than the number of points in {name} ({name} has "
                f"{n}): the k-NN radius counts the point itself as its 0th neighbour, "
                f"so it needs at least k + 1 = {k + 1} points")
    return k


def _check_pair(real: Any, fake: Any) -> tuple[np.ndarray, np.ndarray]:
    real = validate_matrix(real, "real")
    fake = validate_matrix(fake, "fake")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real and fake must have the same number of features, got "
                         f"{real.shape[1]} (real) and {fake.shape[1]} (fake)")
    return real, fake


# --------------------------------------------------------------------------- private stages

def _band_factor(n_features: int) -> float:
    """Relative bound on the error of a squared distance from the blocked expansion.

    The error of ``||a||^2 - 2 a.b + ||b||^2`` (after centring) is at most about
    ``(n_features + 2) * eps * (||a||^2 + ||b||^2)``; the factor 8 leaves room for the
    centring and for the rounding of the direct recomputation.
    """
    return 8.0 * (n_features + 4) * _EPS


def _sq_norms(x: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, x)


def _expanded_sq(a: np.ndarray, a_sq: np.ndarray, b: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    """Approximate squared distances ``(len(a), len(b))``, clipped at 0."""
    d2 = a @ b.T
    d2 *= -2.0
    d2 += a_sq[:, None]
    d2 += b_sq[None, :]
    np.maximum(d2, 0.0, out=d2)
    return d2


def _direct_sq(a: np.ndarray, b: np.ndarray, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """Squared distances ``||a[ia[t]] - b[ib[t]]||^2`` computed from the differences.

    The result for a pair depends only on the two rows, so equal pairs give equal values
    and identical rows give exactly 0.
    """
    out = np.empty(ia.shape[0])
    step = max(1, _PAIR_CHUNK_VALUES // a.shape[1])
    for s in range(0, ia.shape[0], step):
        diff = a[ia[s:s + step]] - b[ib[s:s + step]]
        diff *= diff
        out[s:s + step] = diff.sum(axis=1)
    return out


_U32 = 2.0 ** -24  # float32 unit roundoff
# Columns (points of the other set) per float32 tile of the cross distances.
_TILE_COLS = 4096
# Rows per tile of the cross distances (each worker thread holds one tile at a time).
_TILE_ROWS = 256
# Screened candidates a row, per neighbour, beyond which a row block is done in float64.
_CANDIDATE_CAP = 64
# The k-NN radii of a set of up to this many points take each float32 tile once for both
# of its row blocks (``_radii_symmetric``: half the products; its candidate lists are
# held for the whole set, so larger sets screen one row block at a time).
_SYMMETRIC = True
_SYMMETRIC_MAX = 200_000


def _cast_error(x: np.ndarray, x32: np.ndarray) -> np.ndarray:
    """Per-row norm of the float32 rounding ``||x - float64(x32)||``."""
    diff = x - x32.astype(np.float64)
    return np.sqrt(_sq_norms(diff))


def _knn_radii_sq_rows(x: np.ndarray, rows: np.ndarray, k: int, block_size: int,
                       out: np.ndarray) -> None:
    """Exact squared k-NN radii of ``x[rows]`` by float64 blocks against all of ``x``."""
    n_features = x.shape[1]
    xc = x - x.mean(axis=0)
    sq = _sq_norms(xc)
    band = _band_factor(n_features) * (sq + sq.max())  # per-row error bound
    for s0 in range(0, rows.size, block_size):
        idx = rows[s0:s0 + block_size]
        b = idx.size
        d2 = _expanded_sq(xc[idx], sq[idx], xc, sq)
        d2[np.arange(b), idx] = 0.0
        kth = np.partition(d2, k, axis=1)[:, k]
        # Every entry whose exact value could be <= the exact k-th value is a candidate:
        # at least k + 1 entries are <= kth, so the exact k-th value is <= kth + band.
        limit = kth + 2.0 * band[idx]
        ci, cj = np.nonzero(d2 <= limit[:, None])  # ci is sorted (row-major order)
        vals = _direct_sq(x, x, idx[ci], cj)
        order = np.lexsort((vals, ci))
        counts = np.bincount(ci, minlength=b)
        first = np.concatenate(([0], np.cumsum(counts)[:-1]))
        out[idx] = vals[order][first + k]


def _knn_radii_sq(x: np.ndarray, k: int, block_size: int) -> np.ndarray:
    """Squared distance of each row of ``x`` to its k-th neighbour (itself being the 0th).

    Float32 tiles of squared distances (``|a|^2 - 2ab + |b|^2`` of the centred rows, one
    matrix product each) are screened against a per-row threshold: the k-th smallest
    value over a seeded sample of the points, plus a proven bound on the float32 error.
    The few entries under it are kept; those within twice the bound of each row's k-th
    kept value are recomputed directly in float64 (``sum((a - b)**2)``), and the k-th of
    those is the radius. A row block whose candidates would not stay few (data far from
    the origin for float32, or massive ties) is computed in float64 blocks instead.
    """
    import torch

    n, n_features = x.shape
    out = np.empty(n)
    xc64 = x - x.mean(axis=0)
    xc = xc64.astype(np.float32)
    if not np.isfinite(xc).all():  # beyond float32's range: float64 throughout
        _knn_radii_sq_rows(x, np.arange(n), k, block_size, out)
        return out
    a_sq = _sq_norms(xc.astype(np.float64))
    err = _cast_error(xc64, xc)
    gamma = 2.0 * (2 * n_features + 12) * _U32
    norms = np.sqrt(_sq_norms(xc64))
    tiny = 1e-12 * (norms.max() + float(np.abs(x).max()))
    # |float32 value - exact d^2| <= fband + delta * (2 d + delta) for every pair of row i
    fband = gamma * (a_sq + a_sq.max())
    delta = err + err.max() + tiny
    width = -(-(n_features + 2) // 4) * 4
    aug_a = np.zeros((n, width), dtype=np.float32)
    aug_a[:, :n_features], aug_a[:, n_features], aug_a[:, n_features + 1] = xc, a_sq, 1.0
    aug_b = np.zeros((n, width), dtype=np.float32)
    aug_b[:, :n_features] = xc
    aug_b[:, :n_features] *= -2.0
    aug_b[:, n_features], aug_b[:, n_features + 1] = 1.0, a_sq
    at, bt = torch.from_numpy(aug_a), torch.from_numpy(aug_b)
    samp = np.sort(np.random.default_rng(0).choice(n, min(n, _TILE_COLS), replace=False))
    bs = bt[torch.from_numpy(samp)]
    rows_per = max(1, min(block_size, _TILE_ROWS))
    cap = _CANDIDATE_CAP * (k + 1)  # candidates a row beyond which a block goes to float64
    fallback: list[np.ndarray] = []
    lock = threading.Lock()
    local = threading.local()

    def bound(d2: np.ndarray, i: np.ndarray) -> np.ndarray:
        d = np.sqrt(np.maximum(d2, 0.0) + fband[i])  # >= the distance of the float32 rows
        return fband[i] + delta[i] * (2.0 * d + delta[i])

    def buffers() -> tuple[torch.Tensor, np.ndarray]:
        if not hasattr(local, "buf"):
            local.buf = torch.empty(rows_per * _TILE_COLS)
            local.m = np.empty(rows_per * _TILE_COLS, dtype=bool)
        return local.buf, local.m

    def threshold(start: int) -> np.ndarray:
        """float32 screening thresholds of rows ``start:start + rows_per``: the k-th
        smallest over the sample (others only), plus the float32 error, twice over."""
        stop = min(start + rows_per, n)
        b = stop - start
        rows = np.arange(start, stop)
        buf, _ = buffers()
        ss = buf[:b * samp.size].view(b, samp.size)
        torch.mm(at[start:stop], bs.T, out=ss)
        pos = np.searchsorted(samp, rows)
        hit = np.flatnonzero(pos < samp.size)
        hit = hit[samp[pos[hit]] == rows[hit]]
        ss.numpy()[hit, pos[hit]] = np.inf
        kth_s = torch.topk(ss, k, dim=1, largest=False, sorted=True).values[:, k - 1]
        kth_s = kth_s.numpy().astype(np.float64)
        thr = kth_s + 5.0 * bound(kth_s + 4.0 * bound(kth_s, rows), rows)
        return np.nextafter(thr.astype(np.float32), np.float32(np.inf))

    def finish(start: int, stop: int, ci: np.ndarray, cj: np.ndarray, v: np.ndarray
               ) -> None:
        """Radii of rows ``start:stop`` from their screened candidates (``ci`` local rows,
        ``cj`` columns, ``v`` float32 values), recomputed exactly near the k-th."""
        b = stop - start
        rows = np.arange(start, stop)
        v = v.astype(np.float64)
        keep = cj != ci + start  # the point itself: the 0th neighbour, not a candidate
        ci, cj, v = ci[keep], cj[keep], v[keep]
        counts = np.bincount(ci, minlength=b)
        if counts.min() < k:  # cannot happen unless the bound failed; be safe
            with lock:
                fallback.append(rows)
            return
        order = np.lexsort((v, ci))
        first = np.concatenate(([0], np.cumsum(counts)[:-1]))
        kth = v[order][first + k - 1]
        # exact (k-1)-th other <= kth + bound; any pair at most that is within 2 bounds
        upper = kth + bound(kth, rows)
        lim = upper + bound(upper, rows)
        sel = v <= lim[ci] + 1e-6 * np.abs(lim[ci])
        ci, cj = ci[sel], cj[sel]
        vals = _direct_sq(x, x, ci + start, cj)
        order = np.lexsort((vals, ci))
        counts = np.bincount(ci, minlength=b)
        first = np.concatenate(([0], np.cumsum(counts)[:-1]))
        out[start:stop] = vals[order][first + k - 1]

    def run_block(start: int) -> None:
        stop = min(start + rows_per, n)
        b = stop - start
        buf, mask = buffers()
        q = at[start:stop]
        thr32 = threshold(start)[:, None]
        ci_p, cj_p, v_p = [], [], []
        total = 0
        for t0 in range(0, n, _TILE_COLS):
            t1 = min(t0 + _TILE_COLS, n)
            w = t1 - t0
            s = buf[:b * w].view(b, w)
            torch.mm(q, bt[t0:t1].T, out=s)
            sn = s.numpy()
            m = mask[:b * w].reshape(b, w)
            np.less_equal(sn, thr32, out=m)
            flat = np.flatnonzero(m)
            total += flat.size
            if total > cap * b:
                with lock:
                    fallback.append(np.arange(start, stop))
                return
            ci_p.append(flat // w)
            cj_p.append(flat % w + t0)
            v_p.append(sn.ravel()[flat])
        finish(start, stop, np.concatenate(ci_p), np.concatenate(cj_p),
               np.concatenate(v_p))

    with ThreadPoolExecutor(max_workers=torch.get_num_threads()) as pool:
        if _SYMMETRIC and _TILE_COLS < n <= _SYMMETRIC_MAX:
            _radii_symmetric(n, at, bt, threshold, finish, rows_per, cap, fallback, pool)
        else:
            list(pool.map(run_block, range(0, n, rows_per)))
    if fallback:
        _knn_radii_sq_rows(x, np.concatenate(fallback), k, block_size, out)
    return out


def _radii_symmetric(n, at, bt, threshold, finish, rows_per, cap, fallback, pool) -> None:
    """The screening of ``_knn_radii_sq`` with each distance tile used for both of its
    row blocks: the float32 values ``|a|^2 + |b|^2 - 2 a.b`` are the same expression
    either way round (each within the per-row bound, which holds for any summation
    order), and the thresholds are fixed before the screen, so a tile's entries under
    its rows' thresholds are candidates of those rows and the entries under its columns'
    thresholds candidates of the columns. Row blocks of ``rows_per`` rows, column blocks
    of ``_TILE_COLS``; pairs of column blocks in rounds of disjoint blocks, so the
    candidate lists of a block are only ever appended to by one thread."""
    import torch

    from ._neighbors import _round_robin

    thr = np.concatenate(list(pool.map(threshold, range(0, n, rows_per))))
    tile = _TILE_COLS
    nb = -(-n // tile)
    lists = [([], [], []) for _ in range(nb)]      # per column block: rows, cols, values
    counts = np.zeros(nb, dtype=np.int64)
    dead = np.zeros(nb, dtype=bool)                # over the candidate cap: float64 later
    local = threading.local()

    def add(blk: int, r: np.ndarray, c: np.ndarray, v: np.ndarray) -> None:
        if dead[blk]:
            return
        counts[blk] += r.size
        if counts[blk] > cap * (min(n, (blk + 1) * tile) - blk * tile):
            dead[blk] = True
            lists[blk] = ([], [], [])
            return
        lists[blk][0].append(r)
        lists[blk][1].append(c)
        lists[blk][2].append(v)

    def pair(ij: tuple[int, int]) -> None:
        i, j = ij
        i0, i1 = i * tile, min((i + 1) * tile, n)
        j0, j1 = j * tile, min((j + 1) * tile, n)
        w = j1 - j0
        if not hasattr(local, "buf"):
            local.buf = torch.empty(rows_per * tile)
            local.m = np.empty(rows_per * tile, dtype=bool)
        for r0 in range(i0, i1, rows_per):
            r1 = min(r0 + rows_per, i1)
            b = r1 - r0
            s = local.buf[:b * w].view(b, w)
            torch.mm(at[r0:r1], bt[j0:j1].T, out=s)
            sn = s.numpy()
            m = local.m[:b * w].reshape(b, w)
            np.less_equal(sn, thr[r0:r1, None], out=m)
            flat = np.flatnonzero(m)
            add(i, flat // w + r0, flat % w + j0, sn.ravel()[flat])
            if i != j:
                np.less_equal(sn, thr[None, j0:j1], out=m)
                flat = np.flatnonzero(m)
                add(j, flat % w + j0, flat // w + r0, sn.ravel()[flat])

    for rnd in _round_robin(nb):
        list(pool.map(pair, rnd))

    def finish_block(blk: int) -> None:
        b0, b1 = blk * tile, min((blk + 1) * tile, n)
        if dead[blk]:
            fallback.append(np.arange(b0, b1))      # list.append: atomic
            return
        r = np.concatenate(lists[blk][0])
        c = np.concatenate(lists[blk][1])
        v = np.concatenate(lists[blk][2])
        lists[blk] = ([], [], [])
        order = np.argsort(r, kind="stable")
        r, c, v = r[order], c[order], v[order]
        starts = np.arange(b0, b1, rows_per)
        stops = np.minimum(starts + rows_per, b1)
        cuts = np.searchsorted(r, np.append(starts, b1))
        for start, stop, lo, hi in zip(starts, stops, cuts[:-1], cuts[1:]):
            finish(int(start), int(stop), r[lo:hi] - start, c[lo:hi], v[lo:hi])

    list(pool.map(finish_block, range(nb)))


def _cross_indicators(reference: np.ndarray, data: np.ndarray, r_ref: np.ndarray,
                      r_data: np.ndarray | None, block_size: int):
    """The prdc indicators from one streamed pass over the reference-data distances
    (prdc's real = the reference, fake = the data).

    Returns ``(covered, recalled, in_any_ball, n_balls)``:
    ``covered[i]``: some data point is strictly inside reference ball i (coverage);
    ``recalled[i]``: reference point i is strictly inside some data ball (recall; ``None``
    without ``r_data``); ``in_any_ball[j]`` / ``n_balls[j]``: whether / in how many
    reference balls data point j lies strictly (precision / density).

    Each float32 tile of squared distances (``block_size`` rows, at most 256, by 4,096
    columns) is only screened: a pair is a candidate when its float32 value is within a
    proven bound of the reference ball's squared radius (or the data ball's). The
    bound covers the float32 rounding of the centred points and the float32 product, so
    every pair inside a ball is a candidate; candidates (about ``k`` per point) are then
    decided on their float64 distance computed directly, exactly as the reference
    implementation's distances without its rounding.
    """
    import torch

    n_ref, n_features = reference.shape
    n_data = data.shape[0]
    centre = reference.mean(axis=0)
    rc64, fc64 = reference - centre, data - centre
    rc, fc = rc64.astype(np.float32), fc64.astype(np.float32)
    ok = np.isfinite(rc).all() and np.isfinite(fc).all()
    if ok:
        a_sq, b_sq = _sq_norms(rc.astype(np.float64)), _sq_norms(fc.astype(np.float64))
        ok = bool(np.isfinite(a_sq).all() and np.isfinite(b_sq).all())
    if not ok:  # beyond float32's range: every pair is a candidate
        return _cross_exact(reference, data, r_ref, r_data)
    er, ef = _cast_error(rc64, rc), _cast_error(fc64, fc)
    gamma = 2.0 * (2 * n_features + 12) * _U32
    tiny = 1e-12 * (np.sqrt(_sq_norms(rc64)).max() + np.sqrt(_sq_norms(fc64)).max()
                    + float(np.abs(centre).sum()))
    # a pair inside ball i (radius r) has ||a - b|| < r + delta, so its float32 value is
    # below (r + delta)^2 + the float32 error of |a|^2 - 2ab + |b|^2
    hi_a = (r_ref + er + ef.max() + tiny) ** 2 + gamma * (a_sq + b_sq.max())
    hi_b = None if r_data is None else (
        (r_data + er.max() + ef + tiny) ** 2 + gamma * (a_sq.max() + b_sq))
    rows_per = max(1, min(block_size, _TILE_ROWS))

    # d2 = |a|^2 - 2ab + |b|^2 from one product of augmented rows [a, |a|^2, 1] and
    # [-2b, 1, |b|^2] (padded to a multiple of 4 columns), so that both screens are plain
    # comparisons with a row or a column threshold
    width = -(-(n_features + 2) // 4) * 4
    aug_a = np.zeros((n_ref, width), dtype=np.float32)
    aug_a[:, :n_features], aug_a[:, n_features], aug_a[:, n_features + 1] = rc, a_sq, 1.0
    aug_b = np.zeros((n_data, width), dtype=np.float32)
    aug_b[:, :n_features] = fc
    aug_b[:, :n_features] *= -2.0
    aug_b[:, n_features], aug_b[:, n_features + 1] = 1.0, b_sq
    at, bt = torch.from_numpy(aug_a), torch.from_numpy(aug_b)
    thr_a = hi_a.astype(np.float32)[:, None]
    thr_b = None if hi_b is None else hi_b.astype(np.float32)[None, :]
    found_i: list[np.ndarray] = []
    found_j: list[np.ndarray] = []
    lock = threading.Lock()
    local = threading.local()

    def run_block(start: int) -> None:
        stop = min(start + rows_per, n_ref)
        b = stop - start
        if not hasattr(local, "buf"):
            local.buf = torch.empty(rows_per * _TILE_COLS)
            local.m = np.empty(rows_per * _TILE_COLS, dtype=bool)
            local.m2 = np.empty(rows_per * _TILE_COLS, dtype=bool)
        q = at[start:stop]
        ci_parts, cj_parts = [], []
        for t0 in range(0, n_data, _TILE_COLS):
            t1 = min(t0 + _TILE_COLS, n_data)
            w = t1 - t0
            s = local.buf[:b * w].view(b, w)
            torch.mm(q, bt[t0:t1].T, out=s)
            sn = s.numpy()
            m = local.m[:b * w].reshape(b, w)
            np.less_equal(sn, thr_a[start:stop], out=m)
            if thr_b is not None:
                m2 = local.m2[:b * w].reshape(b, w)
                np.less_equal(sn, thr_b[:, t0:t1], out=m2)
                m |= m2
            flat = np.flatnonzero(m)
            if flat.size:
                ci_parts.append(flat // w + start)
                cj_parts.append(flat % w + t0)
        with lock:
            found_i.extend(ci_parts)
            found_j.extend(cj_parts)

    # worker threads, as in knn: small tile operations from the calling thread each wait
    # at an intra-op barrier, which stalls on a busy machine
    with ThreadPoolExecutor(max_workers=torch.get_num_threads()) as pool:
        list(pool.map(run_block, range(0, n_ref, rows_per)))
    ci = np.concatenate(found_i) if found_i else np.empty(0, dtype=np.int64)
    cj = np.concatenate(found_j) if found_j else np.empty(0, dtype=np.int64)
    return _decide(reference, data, r_ref, r_data, ci.astype(np.int64), cj.astype(np.int64))


def _decide(reference, data, r_ref, r_data, ci, cj):
    """The indicators from candidate pairs, each decided on its direct float64 distance."""
    n_ref, n_data = reference.shape[0], data.shape[0]
    dist = np.sqrt(_direct_sq(reference, data, ci, cj))
    inside = dist < r_ref[ci]
    covered = np.zeros(n_ref, dtype=bool)
    covered[ci[inside]] = True
    n_balls = np.bincount(cj[inside], minlength=n_data).astype(np.int64)
    recalled = None
    if r_data is not None:
        recalled = np.zeros(n_ref, dtype=bool)
        recalled[ci[dist < r_data[cj]]] = True
    return covered, recalled, n_balls > 0, n_balls


def _cross_exact(reference, data, r_ref, r_data):
    """Every pair decided on its direct float64 distance, a row at a time (the fallback
    for data outside float32's range)."""
    n_ref, n_data = reference.shape[0], data.shape[0]
    cj = np.arange(n_data)
    covered = np.zeros(n_ref, dtype=bool)
    recalled = None if r_data is None else np.zeros(n_ref, dtype=bool)
    n_balls = np.zeros(n_data, dtype=np.int64)
    for i in range(n_ref):
        dist = np.sqrt(_direct_sq(reference, data, np.full(n_data, i), cj))
        inside = dist < r_ref[i]
        covered[i] = inside.any()
        n_balls += inside
        if recalled is not None:
            recalled[i] = (dist < r_data).any()
    return covered, recalled, n_balls > 0, n_balls


# --------------------------------------------------------------------------- public API

def knn_radii(x, *, k: int = 5, block_size: int = 4096) -> np.ndarray:
    """Distance from each point to its k-th nearest neighbour in the same set.

    The point itself counts as its own 0th neighbour (distance 0), as in ``prdc``, so
    ``k=1`` gives the distance to the nearest *other* point, and a point with ``k`` or
    more exact duplicates has radius 0.

    Parameters
    ----------
    x : array-like of shape (n_samples, n_features)
        Points; finite values only.
    k : int, default=5
        Neighbour rank, in ``[1, n_samples - 1]``.
    block_size : int, default=4096
        Rows of a float32 tile (at most 256 are used) and of the float64 blocks of the
        fallback, ``>= 1``; the result does not depend on it.

    Returns
    -------
    radii : ndarray of shape (n_samples,)
        Euclidean k-NN radius of each point, in float64.

    See Also
    --------
    coverage : the prdc metrics built on these radii.

    References
    ----------
    .. [1] M. F. Naeem, S. J. Oh, Y. Uh, Y. Choi and J. Yoo, "Reliable Fidelity and
       Diversity Metrics for Generative Models", ICML 2020. arXiv:2002.09797.

    Examples
    --------
    >>> knn_radii([[0.0], [1.0], [3.0]], k=1)
    array([1., 1., 2.])
    >>> knn_radii([[0.0], [1.0], [3.0]], k=2)
    array([3., 2., 3.])
    """
    x = validate_matrix(x, "x")
    block_size = validate_int(block_size, "block_size", low=1)
    k = _check_k(k, {"x": x.shape[0]})
    return np.sqrt(_knn_radii_sq(x, k, block_size))


def coverage(real, fake, *, k: int = 5, block_size: int = 4096) -> dict[str, float]:
    """k-NN precision, recall, density and coverage of ``fake`` against ``real``.

    With ``B(x, r)`` the open ball of radius ``r`` around ``x`` and ``NND_k(x)`` the
    k-NN radius of ``x`` in its own set (:func:`knn_radii`):

    * precision: fraction of fake points inside at least one real ball
      ``B(real_i, NND_k(real_i))``;
    * recall: fraction of real points inside at least one fake ball
      ``B(fake_j, NND_k(fake_j))``;
    * density: number of (real ball, fake point) containments divided by
      ``k * n_fake``; about 1 when both sets come from one distribution, can exceed 1;
    * coverage: fraction of real balls that contain at least one fake point.

    Ties: a point is inside a ball only when its distance is *strictly* smaller than
    the radius, as in ``prdc``. A point at exactly the radius is outside, and a ball of
    radius 0 (a point with ``k`` or more exact duplicates) contains nothing.

    Parameters
    ----------
    real : array-like of shape (n_real, n_features)
        Reference points; finite values only.
    fake : array-like of shape (n_fake, n_features)
        Points to evaluate (generated samples, or the data under audit).
    k : int, default=5
        Neighbour rank for the radii, in ``[1, min(n_real, n_fake) - 1]``.
    block_size : int, default=4096
        Rows of a float32 tile of distances (at most 256 are used; a tile has 4,096
        columns) and of the float64 blocks of the fallback, ``>= 1``. Working memory
        is the tiles (a few MiB a thread) plus ``O((n_real + n_fake) * k)``; the
        result does not depend on it.

    Returns
    -------
    scores : dict of str to float
        ``{"precision", "recall", "density", "coverage"}``, each a Python float; all
        four are better higher. Precision, recall and coverage lie in [0, 1].

    See Also
    --------
    knn_radii : the k-NN radii.
    uncovered_mask : which real points make up ``1 - coverage``.

    Notes
    -----
    Matches ``prdc.compute_prdc(real, fake, nearest_k=k)`` (prdc 0.2), which builds
    the full ``n x n`` distance matrices, on float64 input. prdc takes distances from
    the same ``||a||^2 - 2 a.b + ||b||^2`` expansion without refinement, so exact
    duplicates can come out ~1e-7 apart instead of 0 when there are many features;
    where such a distance decides a comparison (``k`` at most the number of copies
    of a point), prdc's answer depends on rounding and this function follows the
    exact distances instead. Inputs are converted to float64; prdc keeps float32
    input in float32, so on float32 data the two can also differ at near-ties.

    References
    ----------
    .. [1] M. F. Naeem, S. J. Oh, Y. Uh, Y. Choi and J. Yoo, "Reliable Fidelity and
       Diversity Metrics for Generative Models", ICML 2020. arXiv:2002.09797.
    .. [2] https://github.com/clovaai/generative-evaluation-prdc

    Examples
    --------
    >>> real = [[0.0], [1.0], [2.0], [3.0]]
    >>> fake = [[0.5], [10.0]]
    >>> coverage(real, fake, k=1)
    {'precision': 0.5, 'recall': 1.0, 'density': 1.0, 'coverage': 0.5}
    """
    reference, data = _check_pair(real, fake)
    block_size = validate_int(block_size, "block_size", low=1)
    k = _check_k(k, {"real": reference.shape[0], "fake": data.shape[0]})
    r_ref = np.sqrt(_knn_radii_sq(reference, k, block_size))
    r_data = np.sqrt(_knn_radii_sq(data, k, block_size))
    covered, recalled, in_any_ball, n_balls = _cross_indicators(reference, data, r_ref,
                                                                r_data, block_size)
    return {
        "precision": float(in_any_ball.mean()),
        "recall": float(recalled.mean()),
        "density": float((1.0 / k) * n_balls.mean()),
        "coverage": float(covered.mean()),
    }


coverage.higher_is_better = True


def uncovered_mask(real, fake, *, k: int = 5, block_size: int = 4096) -> np.ndarray:
    """Real points whose k-NN ball contains no fake point.

    This is the complement of the per-point indicator that :func:`coverage` averages:
    ``1 - uncovered_mask(real, fake).mean() == coverage(real, fake)["coverage"]``.
    Uncovered points mark regions of the reference that ``fake`` misses. Ties follow
    :func:`coverage`: a fake point at exactly the radius is outside the ball.

    Parameters
    ----------
    real : array-like of shape (n_real, n_features)
        Reference points; finite values only.
    fake : array-like of shape (n_fake, n_features)
        Points to evaluate, at least one.
    k : int, default=5
        Neighbour rank for the radii of the real points, in ``[1, n_real - 1]``.
    block_size : int, default=4096
        Rows of a float32 tile of distances (at most 256 are used), ``>= 1``; the
        result does not depend on it.

    Returns
    -------
    uncovered : ndarray of bool, shape (n_real,)
        True where no fake point lies strictly inside ``B(real_i, NND_k(real_i))``.

    See Also
    --------
    coverage : the mean of ``~uncovered`` is its ``"coverage"``.
    coverage_by_group : coverage per group of real points, with intervals.

    References
    ----------
    .. [1] M. F. Naeem, S. J. Oh, Y. Uh, Y. Choi and J. Yoo, "Reliable Fidelity and
       Diversity Metrics for Generative Models", ICML 2020. arXiv:2002.09797.

    Examples
    --------
    >>> uncovered_mask([[0.0], [1.0], [2.0], [3.0]], [[0.5], [10.0]], k=1)
    array([False, False,  True,  True])
    """
    reference, data = _check_pair(real, fake)
    block_size = validate_int(block_size, "block_size", low=1)
    k = _check_k(k, {"real": reference.shape[0]})
    r_ref = np.sqrt(_knn_radii_sq(reference, k, block_size))
    covered = _cross_indicators(reference, data, r_ref, None, block_size)[0]
    return ~covered


def uncovered_from_graph(real, fake, radii, cross_distances, cross_indices, *,
                         nearest_fn: Callable[[np.ndarray], np.ndarray] | None = None
                         ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`uncovered_mask` from neighbour graphs that are already computed, in one pass.

    A real point ``i`` is covered when some fake point lies strictly inside
    ``B(real_i, radii[i])``. Every (fake point, real neighbour) pair of the cross graph
    that is closer than the real point's radius certifies a covered point at the cost
    of a comparison. Only the real points left uncertified are searched exactly: their
    nearest fake point is found with :func:`~audit.metrics.knn` (blocked, exact). The
    cost is ``O(n_fake * k_cross)`` plus ``O(n_uncertified * n_fake * n_features)``
    instead of ``O(n_real * (n_real + n_fake) * n_features)``, and the answer is exact:
    a pair the graph lacks can only add covered points, and those are found by the
    search.

    Parameters
    ----------
    real : array-like of shape (n_real, n_features)
        Reference points.
    fake : array-like of shape (n_fake, n_features)
        Points to evaluate.
    radii : array-like of shape (n_real,)
        k-NN radius of every real point in its own set (the ``k - 1``-th column of a
        self-excluding kNN graph of ``real`` is ``prdc``'s radius for ``k``).
    cross_distances, cross_indices : array-like of shape (n_fake, k_cross)
        For every fake point, distances to and indices of some of its nearest real
        points (any number; more certify more points).
    nearest_fn : callable, default=None
        Distance from each of some real points (an array of rows of ``real``) to its
        nearest fake point; ``None`` searches exactly. A run whose graphs are approximate
        passes its index here, so the answer is then as exact as that index.

    Returns
    -------
    uncovered : ndarray of bool, shape (n_real,)
        As :func:`uncovered_mask` with these radii.
    nearest : ndarray of shape (n_real,)
        Distance from each real point to its nearest fake point where it was searched
        (every uncovered point, and the uncertified covered ones); ``nan`` elsewhere.

    Examples
    --------
    >>> real = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> fake = np.array([[0.5], [10.0]])
    >>> r = knn_radii(real, k=1)
    >>> d, i = np.array([[0.5], [7.0]]), np.array([[0], [3]])
    >>> unc, near = uncovered_from_graph(real, fake, r, d, i)
    >>> unc.tolist(), near.tolist()
    ([False, False, True, True], [nan, 0.5, 1.5, 2.5])
    """
    from ._neighbors import knn
    reference, data = _check_pair(real, fake)
    radii = np.asarray(radii, dtype=np.float64)
    cd = np.asarray(cross_distances, dtype=np.float64)
    ci = np.asarray(cross_indices, dtype=np.int64)
    if radii.shape != (reference.shape[0],):
        raise ValueError(f"radii has shape {radii.shape}, expected ({reference.shape[0]},)")
    if cd.shape != ci.shape or cd.ndim != 2 or cd.shape[0] != data.shape[0]:
        raise ValueError(f"cross graph shapes {cd.shape} / {ci.shape} do not match "
                         f"{data.shape[0]} fake points")
    covered = np.zeros(reference.shape[0], dtype=bool)
    inside = cd < radii[ci]
    covered[ci[inside]] = True
    nearest = np.full(reference.shape[0], np.nan)
    rows = np.flatnonzero(~covered)
    if rows.size:
        nearest[rows] = (knn(reference[rows], y=data, k=1)[0][:, 0] if nearest_fn is None
                         else np.asarray(nearest_fn(reference[rows]), dtype=np.float64))
        covered[rows] = nearest[rows] < radii[rows]
    return ~covered, nearest


def coverage_by_group(uncovered, groups, *, confidence: float = 0.95) -> dict:
    """Coverage of the real points in each group, with a Wilson interval.

    Parameters
    ----------
    uncovered : array-like of bool, shape (n_real,)
        Output of :func:`uncovered_mask` (0/1 integers are accepted too).
    groups : array-like of shape (n_real,)
        Group label of each real point (strings or numbers). ``None`` and NaN are
        gathered into one group named ``"<missing>"`` (:data:`MISSING_GROUP`).
    confidence : float, default=0.95
        Confidence level of the intervals, in (0, 1).

    Returns
    -------
    by_group : dict
        Label -> ``{"n": int, "covered": int, "coverage": float, "ci": (lo, hi)}``.
        Labels are Python scalars (numpy scalars are converted), sorted when they can
        be compared (otherwise in order of first appearance), with ``"<missing>"``
        last. ``ci`` is :func:`~audit.metrics.wilson_interval` for ``covered / n``.

    See Also
    --------
    uncovered_mask : the per-point input.

    References
    ----------
    .. [1] E. B. Wilson, "Probable inference, the law of succession, and statistical
       inference", JASA 22(158), 1927.

    Examples
    --------
    >>> res = coverage_by_group([False, True, False, True, False], ["a", "a", "b", None, "b"])
    >>> list(res)
    ['a', 'b', '<missing>']
    >>> res["a"]["n"], res["a"]["covered"], res["a"]["coverage"]
    (2, 1, 0.5)
    >>> res["<missing>"]["coverage"]
    0.0
    >>> lo, hi = res["b"]["ci"]
    >>> round(lo, 3), hi
    (0.342, 1.0)
    """
    mask = np.asarray(uncovered)
    if mask.ndim != 1:
        raise ValueError(f"uncovered must be 1-D, got shape {mask.shape}")
    if mask.dtype != bool:
        if mask.dtype.kind not in "iuf" or not np.isin(mask, (0, 1)).all():
            raise ValueError("uncovered must be boolean (or 0/1), as returned by uncovered_mask")
        mask = mask.astype(bool)
    labels = validate_labels(groups, "groups", n=mask.shape[0])

    flat = labels.astype(object) if labels.dtype.kind not in "OUSb" else labels
    missing = pd.isna(pd.Series(flat, dtype=object)).to_numpy()
    has_missing = bool(missing.any())
    codes, uniques = pd.factorize(pd.Series(flat[~missing], dtype=object), sort=False)
    uniques = [u.item() if isinstance(u, np.generic) else u for u in uniques]
    if any(isinstance(u, str) and u == MISSING_GROUP for u in uniques):
        raise ValueError(f"groups uses the label {MISSING_GROUP!r}, which is reserved "
                         "for missing (None/NaN) labels")
    n_code = np.bincount(codes, minlength=len(uniques))
    cov_code = np.bincount(codes, weights=~mask[~missing], minlength=len(uniques))
    n_by: dict[Any, int] = {u: int(c) for u, c in zip(uniques, n_code)}
    covered_by: dict[Any, int] = {u: int(round(c)) for u, c in zip(uniques, cov_code)}
    if has_missing:
        n_by[None] = int(missing.sum())
        covered_by[None] = int((~mask[missing]).sum())
    present = list(uniques)
    try:
        present = sorted(present)
    except TypeError:
        pass
    result = {}
    for label in present + ([None] if has_missing else []):
        n, cov = n_by[label], covered_by[label]
        result[MISSING_GROUP if label is None else label] = {
            "n": n,
            "covered": cov,
            "coverage": cov / n,
            "ci": wilson_interval(cov, n, confidence=confidence),
        }
    return result
