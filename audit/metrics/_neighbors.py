"""Exact k-nearest neighbours by blocked matrix products, and what follows from them."""
from __future__ import annotations

import contextlib
import os
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from ._validation import validate_int, validate_matrix

__all__ = ["knn", "hnsw_index", "knn_approximate", "knn_recall", "twonn_dimension",
           "knn_distance_score", "gemm_library", "calibrate_gemm"]

_MARGIN = 8          # extra candidates re-ranked in float64, so ties resolve by index
_GROUPS = 16         # a tile's columns are screened in strided groups of this many
_U32 = 2.0 ** -24    # float32 unit roundoff
_SYMMETRIC = True    # self-searches take each distance block for both row blocks (benchmarks
                     # set it False to time the one-sided search in the same process)


def _block_rows(k: int, dim: int, tile: int, budget_bytes: int = 64 * 2**20) -> int:
    """Query rows per block: at most 256, fewer when a block's tile and its float64
    candidates (``(k + 9) * dim`` values a row) would pass ``budget_bytes``."""
    per_row = 4 * 2 * tile + 8 * 2 * (k + _MARGIN + 1) * dim
    return int(max(8, min(256, budget_bytes // per_row)))


# ---------------------------------------------------------------------------------------
# Which library multiplies. torch's CPU matmul (MKL) and numpy's (OpenBLAS) differ by up to
# 2x on some machines (AMD: MKL takes a slow path), and which wins depends on the machine,
# so a one-off calibration per process times the tile product both ways, in the threading
# the search uses (one caller per worker thread, one BLAS thread per caller), and the
# faster one is used. The choice only changes the float32 screening scores: every result
# is decided by the exact float64 re-ranking, and the screen's error bound (see
# ``_knn``) holds for any summation order, so results are identical either way.
# LATENT_AUDIT_GEMM=numpy|torch forces a library (auto, or unset: calibrate).

_GEMM_ENV = "LATENT_AUDIT_GEMM"
_GEMM_CHOICE: str | None = None
_GEMM_RATES: dict[str, float] = {}      # GFLOP/s measured by the calibration
_GEMM_LOCK = threading.Lock()
_SMALL_WORK = 2 ** 27                   # multiply-adds below which no calibration is run
_BLAS_LOCK = threading.Lock()
_BLAS_STATE: list = [0, None]           # active searches, the threadpoolctl limiter


@contextlib.contextmanager
def _one_blas_thread():
    """numpy's BLAS at one thread while numpy-path searches run (each worker thread is
    one caller; BLAS threads on top would oversubscribe the cores). Restored by the last
    search to leave, so overlapping searches do not leave it changed."""
    with _BLAS_LOCK:
        if _BLAS_STATE[0] == 0:
            try:
                from threadpoolctl import threadpool_limits
                _BLAS_STATE[1] = threadpool_limits(limits=1, user_api="blas")
            except ImportError:                     # pragma: no cover - no threadpoolctl
                _BLAS_STATE[1] = None
        _BLAS_STATE[0] += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS_STATE[0] -= 1
            if _BLAS_STATE[0] == 0 and _BLAS_STATE[1] is not None:
                _BLAS_STATE[1].restore_original_limits()
                _BLAS_STATE[1] = None


def calibrate_gemm(*, rows: int = 256, dim: int = 64, cols: int = 4096, products: int = 3,
                   repeats: int = 5) -> str:
    """Time the kNN tile product (``rows x dim`` by ``dim x cols``, float32, norms folded
    in) with torch and with numpy, from as many worker threads as torch has (the way
    :func:`knn` calls it), best of ``repeats`` each, interleaved; return the faster
    library's name, ``"numpy"`` or ``"torch"``. The rates (GFLOP/s) are kept in
    ``_GEMM_RATES``. Does not change the cached choice (see :func:`gemm_library`)."""
    rng = np.random.default_rng(0)
    workers = max(1, torch.get_num_threads())
    q = rng.standard_normal((rows, dim)).astype(np.float32)
    y = rng.standard_normal((cols, dim)).astype(np.float32)
    y_sq = torch.from_numpy((y.astype(np.float64) ** 2).sum(1).astype(np.float32))
    gems = {"torch": _Gemm("torch", y, y_sq), "numpy": _Gemm("numpy", y, y_sq)}
    preps = {name: g.prepare(q) for name, g in gems.items()}

    def work(name: str) -> None:
        out = torch.empty(rows, cols)
        for _ in range(products):
            gems[name].scores(preps[name], 0, cols, out=out)

    best = {"torch": float("inf"), "numpy": float("inf")}
    with ThreadPoolExecutor(max_workers=workers) as pool, _one_blas_thread():
        for name in gems:                                       # warm up both
            list(pool.map(work, [name] * workers))
        for _ in range(repeats):
            for name in gems:
                t0 = time.perf_counter()
                list(pool.map(work, [name] * workers))
                best[name] = min(best[name], time.perf_counter() - t0)
    flops = 2.0 * rows * cols * dim * products * workers
    _GEMM_RATES.clear()
    _GEMM_RATES.update({name: flops / sec / 1e9 for name, sec in best.items()})
    return "numpy" if best["numpy"] < best["torch"] else "torch"


def gemm_library(work: float | None = None) -> str:
    """The library :func:`knn` multiplies with: ``LATENT_AUDIT_GEMM`` (``numpy`` or
    ``torch``) when set, else the faster by :func:`calibrate_gemm`, run once per process
    (searches of fewer than ``2**27`` multiply-adds, ``work``, use torch uncalibrated)."""
    env = os.environ.get(_GEMM_ENV, "").strip().lower()
    if env in ("numpy", "torch"):
        return env
    if env not in ("", "auto"):
        raise ValueError(f"{_GEMM_ENV} must be numpy, torch or auto, not {env!r}")
    global _GEMM_CHOICE
    if _GEMM_CHOICE is None:
        if work is not None and work < _SMALL_WORK:
            return "torch"
        with _GEMM_LOCK:
            if _GEMM_CHOICE is None:
                _GEMM_CHOICE = calibrate_gemm()
    return _GEMM_CHOICE


class _Gemm:
    """Float32 screening scores ``|y|^2 - 2 q.y`` of query rows against reference rows.

    torch: ``addmm`` with the norms as the bias. numpy: one ``np.matmul`` of
    ``[-2q, 1]`` with ``[y, |y|^2]`` (the norms folded into the product, no second pass)
    written straight into a torch tensor's memory (``out=tensor.numpy()``), which torch's
    selection then reads without a copy. Either way the score of each pair is a float32
    dot product of at most ``d + 1`` terms with a float32 norm, so it is within
    ``(d + 3) u (|q| + |y|)^2`` of the exact value whatever the summation order: inside
    the ``(2d + 8) u (|q| + |y|)^2`` the search allows for (``_knn``)."""

    def __init__(self, lib: str, y: np.ndarray, y_sq: torch.Tensor) -> None:
        self.lib = lib
        if lib == "torch":
            self.yt, self.y_sq = torch.from_numpy(y), y_sq
        else:
            self.yaug = np.empty((y.shape[0], y.shape[1] + 1), dtype=np.float32)
            self.yaug[:, :-1] = y
            self.yaug[:, -1] = y_sq.numpy()

    def prepare(self, q: np.ndarray):
        """The query rows as the product wants them."""
        if self.lib == "torch":
            return torch.from_numpy(q)
        qa = np.empty((q.shape[0], q.shape[1] + 1), dtype=np.float32)
        np.multiply(q, -2.0, out=qa[:, :-1])                    # exact: a power of two
        qa[:, -1] = 1.0
        return qa

    def scores(self, qp, t0: int, t1: int, out: torch.Tensor | None = None) -> torch.Tensor:
        """Scores against reference rows ``t0:t1`` as a (rows, t1 - t0) float32 tensor,
        written into ``out`` (C-contiguous, that shape) when given."""
        if self.lib == "torch":
            if out is None:
                return torch.addmm(self.y_sq[None, t0:t1], qp, self.yt[t0:t1].T, alpha=-2.0)
            return torch.addmm(self.y_sq[None, t0:t1], qp, self.yt[t0:t1].T, alpha=-2.0,
                               out=out)
        if out is None:
            out = torch.empty(qp.shape[0], t1 - t0)
        np.matmul(qp, self.yaug[t0:t1].T, out=out.numpy())
        return out


class _SqDist:
    """Float32 squared distances ``|q|^2 + |y|^2 - 2 q.y`` among the rows of one matrix,
    from one product of ``[-2q, 1, |q|^2]`` with ``[y, |y|^2, 1]`` (both norms folded in,
    so a block serves the rows on either side of it). Each entry is a float32 dot product
    of ``d + 2`` terms: within ``(d + 4) u (|q| + |y|)^2`` of the exact value."""

    def __init__(self, lib: str, x: np.ndarray, x_sq: torch.Tensor) -> None:
        self.lib = lib
        n, d = x.shape
        self.aug = np.empty((n, d + 2), dtype=np.float32)
        self.aug[:, :d] = x
        self.aug[:, d] = x_sq.numpy()
        self.aug[:, d + 1] = 1.0

    def query(self, r0: int, r1: int) -> np.ndarray:
        """``[-2q, 1, |q|^2]`` of rows ``r0:r1``."""
        a = self.aug[r0:r1]
        d = a.shape[1] - 2
        q = np.empty_like(a)
        np.multiply(a[:, :d], -2.0, out=q[:, :d])               # exact: a power of two
        q[:, d] = 1.0
        q[:, d + 1] = a[:, d]
        return q

    def block(self, q: np.ndarray, t0: int, t1: int, out: torch.Tensor) -> None:
        """Query rows ``q`` (from :meth:`query`) against rows ``t0:t1``, into ``out``
        (that shape, C-contiguous)."""
        if self.lib == "torch":
            torch.mm(torch.from_numpy(q), torch.from_numpy(self.aug[t0:t1]).T, out=out)
        else:
            np.matmul(q, self.aug[t0:t1].T, out=out.numpy())


def knn(x, *, k: int, y=None, block_size: int | None = None,
        tile_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact Euclidean k nearest neighbours, computed tile by tile.

    Query rows are taken ``block_size`` at a time and the reference ``tile_size`` points at
    a time; each tile of squared distances comes from one matrix product (float32). A
    running per-row threshold (the ``k + 8``-th best so far, started from a seeded sample
    of the reference) screens each tile through the minima of strided column groups, so
    only entries that can still enter the list are gathered. The candidates are re-ranked
    with exact float64 distances; where more points than the candidates tie with the k-th
    distance (within float32 rounding), the row is redone over every such point.

    Parameters
    ----------
    x : array-like of shape (n_queries, d)
        Query points.
    k : int
        Neighbours per query, ``1 <= k < n_ref`` (``<= n_ref`` when ``y`` is given).
    y : array-like of shape (n_ref, d), default=None
        Points to search. ``None`` searches ``x`` itself and excludes each point from its
        own list by index (an exact duplicate of it still counts, at distance 0).
    block_size : int, default=None
        Query rows per block, ``>= 1``; ``None`` uses 256, fewer when a block would
        need more than 64 MiB (large ``k * d``).
    tile_size : int, default=None
        Reference points per tile, ``>= 16``; ``None`` uses 4096 (a 256 x 4096 float32
        tile is 4 MiB, about what stays in cache). References of at most twice this
        many (or of at most ``4 * (k + 9)``) are searched in one piece.

    Returns
    -------
    distances : ndarray of shape (n_queries, k), float64, ascending
    indices : ndarray of shape (n_queries, k), int64; ties are broken by the lower index

    See Also
    --------
    knn_approximate : an HNSW index (faiss) for large N, with its recall measured.

    Examples
    --------
    >>> d, i = knn([[0.0], [1.0], [3.0]], k=1)
    >>> i.ravel().tolist(), d.ravel().tolist()
    ([1, 0, 1], [1.0, 1.0, 2.0])
    """
    x = validate_matrix(x, "x", dtype=np.float32)
    self_search = y is None
    y = x if self_search else validate_matrix(y, "y", dtype=np.float32)
    if y.shape[1] != x.shape[1]:
        raise ValueError(f"x has {x.shape[1]} features but y has {y.shape[1]}")
    n_ref = y.shape[0]
    k = validate_int(k, "k", low=1, high=n_ref - 1 if self_search else n_ref)
    tile = validate_int(tile_size if tile_size is not None else 4096, "tile_size", low=16)
    block = validate_int(block_size if block_size is not None
                         else _block_rows(k, x.shape[1], tile), "block_size", low=1)
    return _knn(np.ascontiguousarray(x), np.ascontiguousarray(y), k, self_search, block,
                tile)


def _knn(x: np.ndarray, y: np.ndarray, k: int, self_search: bool, block: int,
         tile: int) -> tuple[np.ndarray, np.ndarray]:
    n_q, n_ref, dim = x.shape[0], y.shape[0], x.shape[1]
    m = min(n_ref, k + _MARGIN + (1 if self_search else 0))
    inf = float("inf")
    yt = torch.from_numpy(y)
    y_sq64 = (yt.double() ** 2).sum(1)
    y_norm_max = float(y_sq64.max().sqrt())
    y_sq = y_sq64.float()
    lib = gemm_library(float(n_q) * n_ref * dim)
    gemm = _Gemm(lib, y, y_sq)
    out_d = np.empty((n_q, k))
    out_i = np.empty((n_q, k), dtype=np.int64)
    # small references in one piece; otherwise the sample holds >= 4m points, so every
    # row's threshold is finite and the inf padding and masked sample columns never enter
    direct = n_ref <= max(2 * tile, 4 * m)
    if not direct:
        tile = -(-tile // _GROUPS) * _GROUPS
        # a seeded sample of the reference starts every row's threshold, whatever the order
        samp = np.sort(np.random.default_rng(0).choice(n_ref, max(tile, 4 * m), replace=False))
        samp_t = torch.from_numpy(samp)
        in_samp = torch.zeros(n_ref + tile, dtype=torch.bool)
        in_samp[samp_t] = True
        samp_gemm = _Gemm(lib, y[samp], y_sq[samp_t])
        group_offsets = torch.arange(_GROUPS) * (tile // _GROUPS)
    local = threading.local()
    # A self-search of a large reference takes each distance block once for both of its
    # row blocks (``_screen_symmetric``): half the products of a one-sided search.
    # (every row block must hold a row's first list: more than m rows)
    symmetric = (_SYMMETRIC and self_search and not direct and n_q > 2 * tile
                 and tile > 4 * m)

    def screen_block(start: int):
        """Top-m float32 candidates of query rows ``start:start + block``."""
        stop = min(start + block, n_q)
        b = stop - start
        q = gemm.prepare(x[start:stop])
        # ranking per row only needs |y|^2 - 2 q.y; |q|^2 is added back in float64
        if direct:
            s = gemm.scores(q, 0, n_ref)
            if self_search:
                r = torch.arange(b)
                s[r, r + start] = inf
            top = torch.topk(s, m, dim=1, largest=False, sorted=True)
            return top.values, top.indices
        if not hasattr(local, "buf"):
            local.buf = torch.empty(block, tile)
        return _screen_tiles(q, start, stop, n_ref, gemm, samp_gemm, samp, samp_t, in_samp,
                             local.buf, group_offsets, m, self_search)

    def finish_block(start: int, best_v: torch.Tensor, best_i: torch.Tensor) -> None:
        """Exact float64 lists of rows ``start:start + len(best_v)`` from their candidates."""
        stop = start + best_v.shape[0]
        q64 = x[start:stop].astype(np.float64)
        cand = best_i.numpy()
        diff = q64[:, None, :] - y[cand].astype(np.float64)
        exact = np.sqrt(np.einsum("qmd,qmd->qm", diff, diff))
        if self_search:
            exact[cand == np.arange(start, stop)[:, None]] = np.inf
        order = np.lexsort((cand, exact), axis=1)[:, :k]
        out_d[start:stop] = np.take_along_axis(exact, order, 1)
        out_i[start:stop] = np.take_along_axis(cand, order, 1)
        if m >= n_ref:
            return
        # Every true neighbour has a float32 score within `bound` (the k-th exact distance
        # plus the float32 error of |q|^2 + |y|^2 - 2 q.y). If the m-th candidate is also
        # within it, more points may tie with the k-th than the candidates hold: the row
        # is redone over every point within the bound. The bound holds for any summation
        # order of the float32 product (torch's or numpy's BLAS, see _Gemm; the symmetric
        # search's transposed scores, see _screen_symmetric), and only computed scores are
        # compared with each other, so the candidates may differ between paths but the
        # (distance, index)-ordered result cannot.
        q_sq = np.einsum("qd,qd->q", q64, q64)
        tol = (2 * dim + 8) * _U32 * (np.sqrt(q_sq) + y_norm_max) ** 2
        bound = out_d[start:stop, k - 1] ** 2 * (1 + 1e-4) + 1e-6 + tol - q_sq
        crowded = np.flatnonzero(best_v[:, -1].numpy() <= bound)
        if crowded.size:
            _redo_crowded(x, y, gemm, q64, start, crowded, bound, k, self_search,
                          max(tile, 4096), out_d, out_i)

    def run_block(start: int) -> None:
        finish_block(start, *screen_block(start))

    # Blocks run side by side in worker threads, as many as torch's thread count, which is
    # left as it is (no global state changes). Run from the calling thread instead, the
    # many small tile operations each wait at an intra-op parallel barrier, which stalls
    # badly on a busy machine (20k x 64, k=15, 2 busy cores: 75-130 s against 5-13 s);
    # from worker threads they ran single-threaded (CPU time about equal to wall time).
    # numpy's BLAS is held at one thread meanwhile (one caller per worker thread).
    with (_one_blas_thread() if lib == "numpy" else contextlib.nullcontext()), \
            ThreadPoolExecutor(max_workers=torch.get_num_threads()) as pool:
        if symmetric:
            best_v, best_i = _screen_symmetric(x, lib, m, tile, block, y_sq, pool)
            list(pool.map(lambda s0: finish_block(s0, best_v[s0:s0 + block],
                                                  best_i[s0:s0 + block]),
                          range(0, n_q, block)))
        else:
            list(pool.map(run_block, range(0, n_q, block)))
    return out_d, out_i


def _screen_tiles(q, start, stop, n_ref, gemm, samp_gemm, samp, samp_t, in_samp, buf,
                  group_offsets, m, self_search):
    """Top-m float32 scores of the rows ``start:stop`` (``q``, prepared for ``gemm``)
    over the whole reference."""
    inf = float("inf")
    b, tile = q.shape[0], buf.shape[1]
    st = samp_gemm.scores(q, 0, len(samp))
    if self_search:
        rows = np.arange(start, stop)
        pos = np.minimum(np.searchsorted(samp, rows), len(samp) - 1)
        hit = np.flatnonzero(samp[pos] == rows)
        st[hit, pos[hit]] = inf
    top = torch.topk(st, m, dim=1, largest=False, sorted=True)
    best_v, best_i = top.values, samp_t[top.indices]
    thr = best_v[:, -1].clone()
    for t0 in range(0, n_ref, tile):
        t1 = min(t0 + tile, n_ref)
        s = buf[:b]
        if t1 - t0 == tile:
            gemm.scores(q, t0, t1, out=s)
        else:
            s[:, :t1 - t0] = gemm.scores(q, t0, t1)
            s[:, t1 - t0:] = inf
        if self_search and t0 < stop and start < t1:
            rr = torch.arange(max(start, t0), min(stop, t1))
            s[rr - start, rr - t0] = inf
        _merge_tile(s, t0, thr, best_v, best_i, in_samp, group_offsets)
    return best_v, best_i


def _merge_tile(s: torch.Tensor, t0: int, thr: torch.Tensor, best_v: torch.Tensor,
                best_i: torch.Tensor, in_samp: torch.Tensor, group_offsets: torch.Tensor
                ) -> None:
    """Merge a tile of scores ``s`` (rows x tile, reference columns ``t0:t0 + tile``,
    inf where there is no column) into the rows' running top-m lists ``best_v`` /
    ``best_i`` and thresholds ``thr``, in place (they may be views of larger tensors)."""
    b, tile = s.shape
    width = tile // _GROUPS
    # group j holds columns j, j + width, j + 2 width, ...; its minimum screens it
    hits = (s.view(b, _GROUPS, width).amin(1) <= thr[:, None]).nonzero()
    if hits.shape[0] == 0:
        return
    cols = hits[:, 1:2] + group_offsets[None, :]
    vals = s.reshape(-1).take(hits[:, 0:1] * tile + cols)
    _merge_hits(hits[:, 0], vals, cols + t0, thr, best_v, best_i, in_samp)


def _merge_hits(rows: torch.Tensor, vals: torch.Tensor, cols: torch.Tensor,
                thr: torch.Tensor, best_v: torch.Tensor, best_i: torch.Tensor,
                in_samp: torch.Tensor | None) -> None:
    """Merge screened groups (``rows`` ascending, their ``vals`` and reference ``cols``,
    ``_GROUPS`` of each a row) into the rows' top-m lists and thresholds, in place.

    Only values at or under a row's threshold can enter its list, so only those are
    merged: a row's selection then runs over its list and a few values, not over whole
    groups padded to the busiest row's count."""
    inf = float("inf")
    m = best_v.shape[1]
    if in_samp is not None:
        vals = vals.masked_fill(in_samp[cols], inf)  # already counted from the sample
    keep = vals <= thr[rows][:, None]
    rows = rows[:, None].expand(-1, vals.shape[1])[keep]
    if rows.shape[0] == 0:
        return
    vals, cols = vals[keep], cols[keep]
    urows, first, per = torch.unique_consecutive(rows, return_inverse=True,
                                                 return_counts=True)
    slot = torch.arange(rows.shape[0]) - (torch.cumsum(per, 0) - per)[first]
    nr, wmax = urows.shape[0], int(per.max())
    dv = torch.full((nr, wmax), inf)
    dv[first, slot] = vals
    di = torch.zeros((nr, wmax), dtype=torch.int64)
    di[first, slot] = cols
    allv = torch.cat([best_v[urows], dv], 1)
    alli = torch.cat([best_i[urows], di], 1)
    top = torch.topk(allv, m, dim=1, largest=False, sorted=True)
    best_v[urows] = top.values
    best_i[urows] = torch.gather(alli, 1, top.indices)
    thr[urows] = top.values[:, -1]


def _round_robin(nb: int) -> list[list[tuple[int, int]]]:
    """Every block pair ``(i, j)``, ``i <= j``, of ``nb`` blocks in rounds whose pairs share
    no block (the circle method; the diagonal pairs form the first round), so the pairs of
    a round can update their rows' lists side by side without locks."""
    rounds = [[(i, i) for i in range(nb)]]
    ids = list(range(nb)) + ([-1] if nb % 2 else [])
    n = len(ids)
    for _ in range(n - 1):
        rounds.append([(min(a, b), max(a, b)) for a, b in
                       ((ids[i], ids[n - 1 - i]) for i in range(n // 2)) if a >= 0 and b >= 0])
        ids = [ids[0], ids[-1]] + ids[1:-1]
    return [r for r in rounds if r]


def _screen_symmetric(x, lib, m, tile, block, y_sq, pool):
    """Top-m float32 candidates of every row of ``x`` among ``x`` itself, each distance
    block computed once for both of its row blocks.

    Rows are cut into blocks of at most ``tile`` (equal sizes, multiples of ``_GROUPS``).
    Every row's list starts from its own block (the diagonal blocks, each row excluded
    by index). For a block pair (I, J) one product gives the float32 squared distances
    ``D`` of I's rows (``block`` at a time) to J's (``_SqDist``). I's rows are screened
    across the columns (groups as in ``_merge_tile``), J's down them (groups of
    ``_GROUPS`` consecutive I rows), each against its threshold plus its own squared
    norm, and a candidate's score is ``D`` less that norm: ``|y|^2 - 2 q.y`` as in the
    one-sided search. A score is then within ``(d + 6) u (|q| + |y|)^2`` of the exact
    value, inside the bound ``_knn`` allows. Pairs run in rounds of disjoint blocks
    (``_round_robin``), so no two threads touch a row."""
    inf = float("inf")
    n = x.shape[0]
    nb = -(-n // tile)
    tile = -(-(-(-n // nb)) // _GROUPS) * _GROUPS       # equal blocks, _GROUPS-aligned
    nb = -(-n // tile)
    group_offsets = torch.arange(_GROUPS) * (tile // _GROUPS)
    sq = _SqDist(lib, x, y_sq)
    best_v = torch.empty(n, m)
    best_i = torch.empty(n, m, dtype=torch.int64)

    def start_rows(s0: int) -> None:              # every row's list from its own block
        c0 = s0 // tile * tile
        c1 = min(c0 + tile, n)
        s1 = min(s0 + block, c1)
        w = c1 - c0
        q = sq.query(s0, s1)
        if w >= m:
            part = torch.empty(s1 - s0, w)
            sq.block(q, c0, c1, out=part)
        else:
            # a short last block: its lists are padded with inf, so its thresholds screen
            # nothing out until real neighbours displace the padding (a row meets n - 1 > m)
            part = torch.full((s1 - s0, m), inf)
            own = torch.empty(s1 - s0, w)
            sq.block(q, c0, c1, out=own)
            part[:, :w] = own
        r = torch.arange(s1 - s0)
        part[r, r + (s0 - c0)] = inf
        top = torch.topk(part, m, dim=1, largest=False, sorted=True)
        best_v[s0:s1] = top.values - y_sq[s0:s1, None]
        best_i[s0:s1] = torch.clamp(top.indices + c0, max=n - 1)

    list(pool.map(start_rows, [s0 for c0 in range(0, n, tile)
                               for s0 in range(c0, min(c0 + tile, n), block)]))
    thr = best_v[:, -1].clone()
    local = threading.local()
    slack = 8 * _U32                  # the sum threshold + norm rounds; never screen short
    width = tile // _GROUPS
    rows_blk = -(-block // _GROUPS) * _GROUPS

    def limit(r0: int, r1: int) -> torch.Tensor:
        lim = thr[r0:r1] + y_sq[r0:r1]
        return lim.add_(lim.abs() * slack)

    def pair(ij: tuple[int, int]) -> None:
        i, j = ij
        i0, i1 = i * tile, min((i + 1) * tile, n)
        j0, j1 = j * tile, min((j + 1) * tile, n)
        nj = j1 - j0
        if not hasattr(local, "buf"):
            local.buf = torch.full((rows_blk, tile), inf)
        buf = local.buf
        ir, iv, ic = [], [], []
        if i != j:
            lim_j = limit(j0, j1)
            jr, jv, jc = [], [], []
        for r0 in range(i0, i1, block):
            r1 = min(r0 + block, i1)
            b = r1 - r0
            q = sq.query(r0, r1)
            if nj == tile and b == rows_blk:
                sq.block(q, j0, j1, out=buf)
            else:
                buf.fill_(inf)
                part = torch.empty(b, nj)
                sq.block(q, j0, j1, out=part)
                buf[:b, :nj] = part
            s = buf[:b]
            if i == j:
                rr = torch.arange(r0, r1)
                s[rr - r0, rr - j0] = inf
            # I's rows against J's columns (merged once per pair: the sub-blocks hold
            # different rows, so no threshold could tighten between them)
            hits = (s.view(b, _GROUPS, width).amin(1) <= limit(r0, r1)[:, None]).nonzero()
            if hits.shape[0]:
                cols = hits[:, 1:2] + group_offsets[None, :]
                ir.append(hits[:, 0] + (r0 - i0))
                iv.append(s.reshape(-1).take(hits[:, 0:1] * tile + cols)
                          - y_sq[r0 + hits[:, 0], None])
                ic.append(cols + j0)
            if i != j:                            # J's rows against these columns of I
                u3 = buf.view(rows_blk // _GROUPS, _GROUPS, tile)[:, :, :nj]
                hits = (u3.amin(1) <= lim_j[None, :]).nonzero()
                if hits.shape[0]:
                    jr.append(hits[:, 1])
                    jv.append(u3[hits[:, 0], :, hits[:, 1]] - y_sq[j0 + hits[:, 1], None])
                    jc.append(r0 + hits[:, 0:1] * _GROUPS + torch.arange(_GROUPS)[None, :])
        if ir:
            _merge_hits(torch.cat(ir), torch.cat(iv), torch.cat(ic), thr[i0:i1],
                        best_v[i0:i1], best_i[i0:i1], None)
        if i != j and jr:
            rows = torch.cat(jr)
            order = torch.argsort(rows, stable=True)
            cols = torch.cat(jc)[order]
            vals = torch.cat(jv)[order].masked_fill_(cols >= i1, inf)
            _merge_hits(rows[order], vals, cols.clamp_(max=n - 1), thr[j0:j1],
                        best_v[j0:j1], best_i[j0:j1], None)

    for rnd in _round_robin(nb)[1:]:               # the diagonal round: the start above
        list(pool.map(pair, rnd))
    return best_v, best_i


def _redo_crowded(x, y, gemm, q64, start, crowded, bound, k, self_search, tile,
                  out_d, out_i):
    """Exact lists for rows whose k-th distance is tied beyond the candidates."""
    qc = gemm.prepare(np.ascontiguousarray(x[start + crowded]))
    bc = torch.from_numpy(bound[crowded]).float()
    rs, cs = [], []
    for t0 in range(0, y.shape[0], tile):
        t1 = min(t0 + tile, y.shape[0])
        s = gemm.scores(qc, t0, t1)
        nz = (s <= bc[:, None]).nonzero().numpy()
        rs.append(nz[:, 0])
        cs.append(nz[:, 1] + t0)
    rs, cs = np.concatenate(rs), np.concatenate(cs)
    for j, r in enumerate(crowded):
        row = start + int(r)
        near = cs[rs == j]
        diff = q64[r] - y[near].astype(np.float64)
        ex = np.sqrt(np.einsum("md,md->m", diff, diff))
        if self_search:
            ex[near == row] = np.inf
        o = np.lexsort((near, ex))[:k]
        out_d[row], out_i[row] = ex[o], near[o]


def hnsw_index(y, *, m: int = 32, ef_construction: int = 80, random_state: int = 0):
    """Build the reproducible HNSW index of ``y`` that :func:`knn_approximate` searches.

    Build it once to search the same points several times (their own graph, and other
    points' neighbours among them): ``knn_approximate(x, k=k, y=y, index=idx)``.
    """
    try:
        import faiss
    except ImportError as exc:
        raise ImportError("approximate kNN needs faiss: pip install 'latent-audit[fast]'") \
            from exc
    y = validate_matrix(y, "y", dtype=np.float32)
    m = validate_int(m, "m", low=4)
    ef_construction = validate_int(ef_construction, "ef_construction", low=m)
    perm = np.random.default_rng(random_state).permutation(y.shape[0])
    index = faiss.IndexHNSWFlat(y.shape[1], m)
    index.hnsw.efConstruction = ef_construction
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)             # parallel insertion is not reproducible
    try:
        index.add(np.ascontiguousarray(y[perm]))
    finally:
        faiss.omp_set_num_threads(threads)
    return _HNSW(index=index, perm=perm, n=int(y.shape[0]), d=int(y.shape[1]))


class _HNSW:
    """A built HNSW index and the insertion order of its points."""

    def __init__(self, *, index, perm: np.ndarray, n: int, d: int) -> None:
        self.index, self.perm, self.n, self.d = index, perm, n, d


def knn_approximate(x, *, k: int, y=None, m: int = 32, ef_construction: int = 80,
                    ef_search: int | None = None, random_state: int = 0,
                    index: "_HNSW | None" = None) -> tuple[np.ndarray, np.ndarray]:
    """Approximate Euclidean k nearest neighbours from an HNSW graph (faiss ``IndexHNSWFlat``).

    The index is built single-threaded over the points in a permutation drawn from
    ``random_state``, so the same seed gives the same graph; it returns ``k + 8`` (``+1``
    for self search) candidates per query, which are re-ranked by exact float64 distance
    with ties broken by the lower index, and each point is excluded from its own list by
    index. Needs the ``fast`` extra (faiss-cpu).

    Parameters
    ----------
    x : array-like of shape (n_queries, d)
        Query points.
    k : int
        Neighbours per query, ``1 <= k < n_ref`` (``<= n_ref`` when ``y`` is given).
    y : array-like of shape (n_ref, d), default=None
        Points to search; ``None`` searches ``x`` itself.
    m : int, default=32
        HNSW links per node, ``>= 4``.
    ef_construction : int, default=80
        Candidate list while building, ``>= m``.
    ef_search : int, default=None
        Candidate list while searching; ``None`` uses ``max(64, 2 * (k + 8))``.
    random_state : int, default=0
        Seed of the insertion order.
    index : default=None
        An index of ``y`` (or of ``x`` when ``y`` is None) from :func:`hnsw_index`, reused
        instead of building one; ``m``, ``ef_construction`` and ``random_state`` are then
        those it was built with.

    Returns
    -------
    distances : ndarray of shape (n_queries, k), float64, ascending
    indices : ndarray of shape (n_queries, k), int64

    See Also
    --------
    knn : the exact search; knn_recall : how much of it an approximate graph finds.
    """
    x = validate_matrix(x, "x", dtype=np.float32)
    self_search = y is None
    y = x if self_search else validate_matrix(y, "y", dtype=np.float32)
    if y.shape[1] != x.shape[1]:
        raise ValueError(f"x has {x.shape[1]} features but y has {y.shape[1]}")
    n_ref = y.shape[0]
    k = validate_int(k, "k", low=1, high=n_ref - 1 if self_search else n_ref)
    n_cand = min(n_ref, k + _MARGIN + (1 if self_search else 0))
    ef = validate_int(ef_search if ef_search is not None else max(64, 2 * (k + _MARGIN)),
                      "ef_search", low=n_cand)
    if index is None:
        index = hnsw_index(y, m=m, ef_construction=ef_construction,
                           random_state=random_state)
    elif (index.n, index.d) != y.shape:
        raise ValueError(f"the index holds {index.n}×{index.d} points, the search set is "
                         f"{y.shape[0]}×{y.shape[1]}")
    perm = index.perm
    index = index.index
    index.hnsw.efSearch = ef
    out_d = np.empty((x.shape[0], k))
    out_i = np.empty((x.shape[0], k), dtype=np.int64)
    # the float64 re-rank holds (rows, n_cand, d) differences: keep that near 256 MiB
    step = int(np.clip(2**28 // (n_cand * x.shape[1] * 8), 256, 65536))
    for start in range(0, x.shape[0], step):
        stop = min(start + step, x.shape[0])
        _, found = index.search(np.ascontiguousarray(x[start:stop]), n_cand)
        cand = np.where(found >= 0, perm[np.maximum(found, 0)], -1)
        diff = x[start:stop, None, :].astype(np.float64) - y[np.maximum(cand, 0)].astype(
            np.float64)
        exact = np.sqrt(np.einsum("qmd,qmd->qm", diff, diff))
        exact[cand < 0] = np.inf
        if self_search:
            exact[cand == np.arange(start, stop)[:, None]] = np.inf
        order = np.lexsort((cand, exact), axis=1)[:, :k]
        out_d[start:stop] = np.take_along_axis(exact, order, 1)
        out_i[start:stop] = np.take_along_axis(cand, order, 1)
    return out_d, out_i


def knn_recall(found, truth) -> float:
    """Recall@k of a neighbour list: the mean share of each row of ``truth`` in ``found``.

    Parameters
    ----------
    found : array-like of shape (n_queries, k), int
        Neighbour indices to score (e.g. from :func:`knn_approximate`).
    truth : array-like of shape (n_queries, k), int
        The exact neighbour indices of the same queries (from :func:`knn`).

    Returns
    -------
    float
        In [0, 1], higher is better.

    Examples
    --------
    >>> knn_recall([[1, 2], [0, 3]], [[1, 2], [0, 2]])
    0.75
    """
    found = np.asarray(found)
    truth = np.asarray(truth)
    if found.shape != truth.shape or found.ndim != 2 or found.shape[1] < 1:
        raise ValueError(f"found {found.shape} and truth {truth.shape} must be the same "
                         "(n_queries, k) shape")
    hits = (found[:, :, None] == truth[:, None, :]).any(axis=2).sum(axis=1)
    return float(hits.mean() / truth.shape[1])


knn_recall.higher_is_better = True


def twonn_dimension(distances) -> float:
    """Intrinsic dimension by the TwoNN maximum-likelihood estimate (Facco et al. 2017).

    Parameters
    ----------
    distances : array-like of shape (n_samples, k >= 2)
        Sorted distances to each point's nearest neighbours (e.g. from :func:`knn`).

    Returns
    -------
    float
        ``(n - 1) / sum(log(r2 / r1))`` over points whose first neighbour is not a
        duplicate; ``nan`` (with a warning) when fewer than 3 such points remain.

    References
    ----------
    E. Facco et al., "Estimating the intrinsic dimension of datasets by a minimal
    neighborhood information", Scientific Reports 7, 2017.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> from audit.metrics import knn
    >>> d, _ = knn(rng.random((2000, 3)), k=2)
    >>> 2.5 < twonn_dimension(d) < 3.5
    True
    """
    d = validate_matrix(distances, "distances", finite=False)
    if d.shape[1] < 2:
        raise ValueError("distances needs at least 2 neighbours per point")
    r1, r2 = d[:, 0], d[:, 1]
    ok = (r1 > 0) & np.isfinite(r2) & (r2 > r1)
    n = int(ok.sum())
    if n < 3:
        warnings.warn("too few distinct neighbour pairs to estimate the intrinsic dimension",
                      RuntimeWarning, stacklevel=2)
        return float("nan")
    return float((n - 1) / np.log(r2[ok] / r1[ok]).sum())


def knn_distance_score(distances) -> np.ndarray:
    """Mean distance to the k nearest neighbours, per point (higher = more isolated).

    Examples
    --------
    >>> knn_distance_score([[1.0, 3.0], [2.0, 2.0]]).tolist()
    [2.0, 2.0]
    """
    d = validate_matrix(distances, "distances")
    return d.mean(axis=1)
