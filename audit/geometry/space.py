"""The analysis space: the data's scaler, its PCA, how many dimensions to keep, and one
``project`` that maps any latents into it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA

__all__ = ["Scaler", "sample_rows", "fit_scaler", "scale", "standardize", "unstandardize", "fit_pca",
           "analysis_dims", "project"]

SCALE_MODES = ("none", "standard", "l2")


def sample_rows(n: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of a sample of ``cap`` of ``n`` rows drawn from ``rng`` (all rows,
    in order, when ``n <= cap``: nothing is drawn)."""
    if n <= cap:
        return np.arange(n)
    return np.sort(rng.choice(n, cap, replace=False))


@dataclass(frozen=True)
class Scaler:
    """The data's per-dimension mean and standard deviation (constant dimensions keep 1),
    and the mode ``scale`` applies: ``standard``, ``none`` (centred only) or ``l2``."""
    mean: np.ndarray
    std: np.ndarray
    mode: str = "standard"


def fit_scaler(x: np.ndarray, mode: str = "standard") -> Scaler:
    """Mean and standard deviation of each column of ``x`` (float64)."""
    if mode not in SCALE_MODES:
        raise ValueError(f"scale mode must be one of {SCALE_MODES}, not {mode!r}")
    mean = x.mean(axis=0, dtype=np.float64)
    std = x.std(axis=0, dtype=np.float64)
    return Scaler(mean, np.where(std > 1e-12 * max(std.max(), 1e-30), std, 1.0), mode)


def scale(x: np.ndarray, scaler: Scaler) -> np.ndarray:
    """Latents (data or any other) in the distance space before PCA (float32): unit rows
    for ``l2``, centred for ``none``, z-scored for ``standard``."""
    if scaler.mode == "l2":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32)
    out = x - scaler.mean
    if scaler.mode == "standard":
        out = out / scaler.std
    return out.astype(np.float32)


def standardize(x: np.ndarray, scaler: Scaler) -> np.ndarray:
    """Z-scored latents (whatever the scale mode), for linear probes (float32)."""
    return ((np.asarray(x) - scaler.mean) / scaler.std).astype(np.float32)


def unstandardize(z: np.ndarray, scaler: Scaler) -> np.ndarray:
    """The inverse of :func:`standardize`: z-scores back to latents (float64)."""
    return scaler.mean + np.asarray(z, dtype=np.float64) * scaler.std


def fit_pca(scaled: np.ndarray, *, rng: np.random.Generator, random_state: int,
            max_rows: int = 100_000, max_components: int = 100) -> PCA:
    """PCA of scaled latents, fitted on a sample of at most ``max_rows`` rows."""
    idx = sample_rows(len(scaled), max_rows, rng)
    n_comp = int(min(scaled.shape[1], len(idx), max_components))
    return PCA(n_components=n_comp, random_state=random_state).fit(scaled[idx])


def analysis_dims(explained_variance_ratio: np.ndarray, variance: float) -> int:
    """The leading principal components that explain ``variance`` of the variance (the
    analysis space when the latents have more than ``geometry.max_dims_exact``)."""
    cum = np.cumsum(explained_variance_ratio)
    return int(min(len(cum), np.searchsorted(cum, variance) + 1))


def project(x: np.ndarray, scaler: Scaler, pca: PCA | None, dims: int) -> np.ndarray:
    """Latents scaled and rotated onto ``pca``, first ``dims`` components (float32);
    ``pca=None``: scaled only (the analysis space when every dimension is kept)."""
    s = scale(x, scaler)
    if pca is None:
        return s
    return pca.transform(s)[:, :dims].astype(np.float32)
