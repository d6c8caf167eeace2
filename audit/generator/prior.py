"""The prior a generator is sampled from: a standard Gaussian, a uniform box, or a density
fitted on the encoded data (a Gaussian mixture, its size chosen by BIC).

Pure numpy/scikit-learn; every draw comes from the ``Generator`` the caller passes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = ["PRIORS", "Prior", "fit_prior"]

PRIORS = ("gaussian", "uniform", "latents")
#: mixture sizes tried for ``prior: latents`` (BIC picks one)
_MIXTURE_SIZES = (1, 2, 4, 8, 16)


@dataclass(frozen=True)
class Prior:
    """A distribution over the decoder's input space.

    ``gaussian``: N(0, I); ``uniform``: U[-1, 1]^d; ``latents``: a Gaussian mixture with
    ``weights``, ``means`` and Cholesky factors ``chols`` of its covariances.
    """

    kind: Literal["gaussian", "uniform", "latents"]
    dim: int
    weights: np.ndarray | None = None
    means: np.ndarray | None = None
    chols: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` draws, float32 (n, dim)."""
        if self.kind == "gaussian":
            z = rng.standard_normal((n, self.dim))
        elif self.kind == "uniform":
            z = rng.uniform(-1.0, 1.0, (n, self.dim))
        else:
            comp = rng.choice(len(self.weights), size=n, p=self.weights)
            eps = rng.standard_normal((n, self.dim))
            z = self.means[comp] + np.einsum("nij,nj->ni", self.chols[comp], eps)
        return z.astype(np.float32)

    def scale(self) -> np.ndarray:
        """A per-dimension spread (for steps and radii in prior units)."""
        if self.kind == "gaussian":
            return np.ones(self.dim)
        if self.kind == "uniform":
            return np.full(self.dim, 1 / np.sqrt(3))
        cov = np.einsum("kij,klj->kil", self.chols, self.chols)
        mean = self.weights @ self.means
        second = np.einsum("k,kii->i", self.weights, cov) + self.weights @ self.means ** 2
        return np.sqrt(np.maximum(second - mean ** 2, 1e-12))

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "dim": self.dim, **self.info}


def fit_prior(kind: str, dim: int, *, latents: np.ndarray | None = None,
              seed: int = 0) -> Prior:
    """The prior named by ``kind`` in ``dim`` dimensions; ``latents`` (n, dim) are needed
    for ``kind="latents"`` (the encoded data, e.g. a VAE's posterior means).

    >>> fit_prior("gaussian", 3).sample(2, np.random.default_rng(0)).shape
    (2, 3)
    """
    if kind not in PRIORS:
        raise ValueError(f"prior must be one of {', '.join(PRIORS)}, not {kind!r}")
    if not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ValueError(f"the prior's dimension must be a positive integer, not {dim!r}")
    if kind != "latents":
        return Prior(kind=kind, dim=int(dim))
    if latents is None:
        raise ValueError("prior: latents needs the encoded data")
    x = np.asarray(latents, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"prior: latents needs data latents of dimension {dim} (the "
                         f"decoder's input); the data has {x.shape[-1]}")
    if not np.isfinite(x).all():
        raise ValueError("prior: latents: the data latents hold NaN or Inf")
    from sklearn.mixture import GaussianMixture
    best = None
    for k in _MIXTURE_SIZES:
        if k > 1 and x.shape[0] < 10 * k * dim:
            break
        gm = GaussianMixture(k, covariance_type="full", reg_covar=1e-4, random_state=seed,
                             n_init=1, max_iter=200).fit(x)
        bic = gm.bic(x)
        if best is None or bic < best[0]:
            best = (bic, gm)
    gm = best[1]
    return Prior(kind="latents", dim=int(dim), weights=gm.weights_ / gm.weights_.sum(),
                 means=gm.means_, chols=np.linalg.cholesky(gm.covariances_),
                 info={"components": int(gm.n_components), "bic": float(best[0]),
                       "fitted_on": int(x.shape[0])})
