"""``holes``: empty regions *inside* the data, where a smooth density model expects points.

Works in the PCA subspace of the analysis space that holds the data (the components that
explain ``subspace_variance`` of its variance), with the local dimension set by the
intrinsic dimension (TwoNN). Probes are drawn from smooth models of the data (a Gaussian
KDE, one Gaussian, points on straight lines between random pairs of data points, and the
prior N(0, I) when the encoder is the demo VAE), moved to the centre of the empty space
around them, and tested: the broad k-NN density estimate (``neighbours`` points) expects
``(neighbours - 1) * inner_share`` points in the inner ball around the probe; a probe is
kept when the observed count is significantly below ``max_ratio`` times that (Poisson,
Benjamini–Hochberg over the probes) *and* the data encloses it (half-space depth among
the connected piece of its neighbours, and, on curved data, directions along the data).
Kept probes whose empty balls overlap form one hole: a ``warning`` finding with its centre
in the original latent coordinates, its radius, the counts and the p-value, and its rim
points as evidence. See :mod:`audit.metrics._holes` and docs/checks/holes.md.
"""
from __future__ import annotations

import logging
import math
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from ..context import Context
from ..decoding import DecodeError, decode_images
from ..findings import CheckResult, Finding
from ..metrics import twonn_dimension
from ..metrics._hole_probes import smooth_probes
from ..metrics._holes import (
    affine_weights,
    find_holes,
    interpolation_risk,
)
from .base import Check, CheckSettings, register

log = logging.getLogger("audit")

__all__ = ["HolesCheck", "hole_subspace_dims"]

_MIN_POINTS = 50
_DECODED_HOLES = 8
_DECODED_RIM = 3


def hole_subspace_dims(explained_variance_ratio: np.ndarray, variance: float,
                       max_dims: int) -> int:
    """Leading PCA components that explain ``variance`` of the variance (at most
    ``max_dims``, at least 1)."""
    cum = np.cumsum(np.asarray(explained_variance_ratio, dtype=float))
    p = int(np.searchsorted(cum, variance - 1e-12) + 1)
    return int(np.clip(p, 1, max(1, max_dims)))


@register
class HolesCheck(Check):
    """Holes: empty regions inside the data that a smooth density model expects to be filled."""

    name = "holes"
    produces: ClassVar[tuple[str, ...]] = (
        "holes.count",
        "holes.volume_fraction",
        "holes.interpolation_risk",
    )

    class Settings(CheckSettings):
        n_probes: int = Field(2000, ge=50, le=100_000, description=(
            "candidate locations drawn from the smooth models"))
        neighbours: int = Field(100, ge=10, le=2000, description=(
            "points of the broad k-NN density estimate around each probe; a hole must "
            "empty about neighbours × inner_share × (1 - max_ratio) points' worth of space"))
        inner_share: float = Field(0.5, ge=0.1, le=0.9, description=(
            "volume share of the inner (tested) ball in the neighbours' ball"))
        max_ratio: float = Field(0.5, gt=0, lt=1, description=(
            "a probe counts only when its observed count is significantly below this "
            "share of the expected one (tolerance of the smooth model)"))
        alpha: float = Field(0.01, gt=0, lt=1, description=(
            "false-discovery rate of the Benjamini–Hochberg correction over the probes"))
        min_depth: float = Field(0.05, ge=0, le=0.5, description=(
            "half-space depth a probe needs among its neighbours to count as enclosed"))
        min_alignment: float = Field(0.5, ge=0, le=1, description=(
            "on curved data: median cos² between the data's tangent space at the rim and "
            "the direction to the probe"))
        bandwidth: float = Field(1.0, gt=0, le=10, description=(
            "multiplier of Scott's factor for the KDE probes"))
        ascend_steps: int = Field(8, ge=0, le=100, description=(
            "steps that move each probe towards the centre of the empty space around it"))
        subspace_variance: float = Field(0.99, gt=0, le=1, description=(
            "work in the leading PCA components that explain this share of the variance"))
        max_dim: int = Field(12, ge=1, le=64, description=(
            "holes are not searched when the local dimension exceeds this (the counts "
            "have no power there at realistic sample sizes); the metrics are then NaN"))
        prior_share: float = Field(0.2, ge=0, le=0.9, description=(
            "share of probes drawn from the prior N(0, I) when the encoder is a VAE"))
        n_paths: int = Field(1000, ge=10, le=100_000, description=(
            "random pairs of data points whose straight path is checked for holes"))
        rim_points: int = Field(12, ge=3, le=500, description="rim points reported per hole")
        max_holes: int = Field(20, ge=1, le=500, description="holes reported as findings")

    def applies(self, ctx: Context) -> str | None:
        if ctx.n < _MIN_POINTS:
            return f"needs at least {_MIN_POINTS} points (has {ctx.n})"
        return None

    # ------------------------------------------------------------------ geometry
    def _subspace(self, ctx: Context) -> tuple[np.ndarray, int, float]:
        pca = ctx.pca
        max_dims = int(min(ctx.space_dims, pca.n_components_))
        p = hole_subspace_dims(pca.explained_variance_ratio_, self.settings.subspace_variance,
                               max_dims)
        h = ctx.projected(p).astype(np.float64)
        if p == ctx.space.shape[1]:
            m = float(ctx.intrinsic_dim)           # same distances: the space, rotated
        else:
            sub = ctx.sample_rows(len(h), 5000, "holes.dimension_rows")
            with np.errstate(all="ignore"):
                m = twonn_dimension(ctx.nearest(None, k=2, dims=p, among=sub)[0])
        return h, p, m

    def _probes(self, ctx: Context, h: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
        s = self.settings
        vae = (ctx.data.provenance.get("encoder") or {}).get("kind") == "demo_vae"
        n_prior = int(round(s.n_probes * s.prior_share)) if vae else 0
        probes, kind = smooth_probes(h, s.n_probes - n_prior, bandwidth=s.bandwidth,
                                     random_state=ctx.rng("holes.probes"))
        if n_prior:
            z = ctx.rng("holes.prior").standard_normal((n_prior, ctx.data.dim)).astype(np.float32)
            prior = ctx.project(z, p)
            probes = np.concatenate([probes, prior])
            kind = np.concatenate([kind, np.full(n_prior, "prior")])
        return probes, kind

    # ------------------------------------------------------------------ run
    def _not_searched(self, why: str, note: str, tables: dict[str, Any], *,
                      threshold: float | None = None) -> CheckResult:
        """An info result with NaN metrics: the holes search had nothing to stand on."""
        nan = float("nan")
        return CheckResult(
            check=self.name, status="ok",
            metrics={"holes.count": nan, "holes.volume_fraction": nan,
                     "holes.interpolation_risk": nan},
            findings=(Finding(id="holes-not-searched", check=self.name, severity="info",
                              title=f"Holes not searched: {why}", summary=note,
                              metric="holes.count", value=None, threshold=threshold),),
            tables={**tables, "searched": False, "note": note})

    def run(self, ctx: Context) -> CheckResult:
        s = self.settings
        full, p, m = self._subspace(ctx)
        # Exact copies say nothing about empty space and break the point-count model
        # (a probe beside a 150-fold copy "expects" points at radius 0): count each
        # distinct location once.
        _, first = np.unique(full, axis=0, return_index=True)
        rows = np.sort(first)
        h = full[rows] if rows.size < len(full) else full
        if rows.size < _MIN_POINTS:
            note = (f"Only {rows.size} distinct points among {ctx.n} (the rest are exact "
                    f"copies): holes need at least {_MIN_POINTS} distinct points, so they "
                    "were not searched. The duplicates check reports the copies.")
            return self._not_searched("too few distinct points", note,
                                      {"holes": [], "distinct_points": int(rows.size)})
        dim = int(np.clip(round(m), 1, p)) if math.isfinite(m) else p
        tables = {"subspace_dims": p, "latent_dims": ctx.data.dim,
                  "space_dims": int(ctx.space.shape[1]), "subspace_intrinsic_dim": m,
                  "local_dim": dim, "neighbours": int(min(s.neighbours, len(h))),
                  "distinct_points": int(len(h)),
                  "inner_share": s.inner_share, "max_ratio": s.max_ratio, "alpha": s.alpha,
                  "holes": []}
        if dim > s.max_dim:
            note = (f"The data is {dim}-dimensional locally (TwoNN {m:.1f}, in the "
                    f"{p}-dimensional PCA subspace that holds it), above max_dim = "
                    f"{s.max_dim}: at that dimension point counts cannot tell a hole from "
                    "chance, so holes were not searched.")
            return self._not_searched("the local dimension is too high", note, tables,
                                      threshold=float(s.max_dim))

        probes, kind = self._probes(ctx, h, p)
        scan = find_holes(h, probes, k=int(min(s.neighbours, len(h))), dim=dim,
                          inner_share=s.inner_share, max_ratio=s.max_ratio, alpha=s.alpha,
                          min_depth=s.min_depth, min_alignment=s.min_alignment,
                          ascend_steps=s.ascend_steps, rim_points=s.rim_points,
                          random_state=ctx.rng("holes.scan"))
        flagged = np.flatnonzero(scan.flagged)
        risk = interpolation_risk(h, scan.projected[flagged], scan.inner_radius[flagged],
                                  n_paths=s.n_paths, random_state=ctx.rng("holes.paths"))
        kde = kind == "kde"
        metrics = {"holes.count": float(len(scan.regions)),
                   "holes.volume_fraction": float(scan.in_hole[kde].mean()) if kde.any()
                   else float(scan.in_hole.mean()),
                   "holes.interpolation_risk": risk}

        regions = scan.regions[: s.max_holes]
        ids = ctx.data.ids[rows]
        centres = self._original_centres(ctx, full, regions, rows)
        map_xy = ctx.place_on_map(centres) if len(regions) else np.empty((0, 2))
        images, image_keys = self._decode(ctx, centres, regions, rows)
        findings = []
        listed = []
        for g, reg in enumerate(regions):
            hid = f"holes-{g + 1}"
            members = reg.probes
            depth = float(np.nanmedian(scan.depth[members]))
            ratio = reg.observed / reg.expected if reg.expected > 0 else float("nan")
            kinds = {str(k): int(v) for k, v in zip(*np.unique(kind[members], return_counts=True))}
            subjects = {"center": [float(v) for v in centres[g]], "radius": reg.radius,
                        "center_subspace": [float(v) for v in reg.center],
                        "observed": reg.observed, "expected": reg.expected,
                        "inner_radius": reg.inner_radius, "probes": int(members.size),
                        "probe_kinds": kinds, "depth": depth,
                        "map": [float(v) for v in map_xy[g]], "images": image_keys.get(g, [])}
            findings.append(Finding(
                id=hid, check=self.name, severity="warning",
                title=f"Hole {g + 1}: an empty region of radius {reg.radius:.3g} inside the data",
                summary=(f"Around its centre the smooth density model expects "
                         f"{reg.expected:.0f} points within {reg.inner_radius:.3g} and finds "
                         f"{reg.observed}; the data surrounds it (half-space depth "
                         f"{depth:.2f}). {members.size} probe(s) fell into it. Its centre "
                         "(in the original latent coordinates) and radius (in the analysis "
                         "space) are in subjects; the evidence is the data on its rim."
                         + (" Decoded images of the centre and rim are in the report."
                            if image_keys.get(g) else "")),
                metric="holes.deficit_ratio", value=ratio, threshold=s.max_ratio,
                p_value=reg.p_value, subjects=subjects,
                evidence_ids=tuple(str(i) for i in ids[reg.rim])))
            listed.append({"id": hid, "radius": reg.radius, "observed": reg.observed,
                         "expected": reg.expected, "p_value": reg.p_value,
                         "probes": int(members.size), "map": subjects["map"],
                         "rim": [str(i) for i in ids[reg.rim[:5]]],
                         "images": image_keys.get(g, [])})
        if len(scan.regions) > len(regions):
            tables["not_listed"] = len(scan.regions) - len(regions)
        tables.update({"searched": True, "holes": listed, "n_probes": int(len(probes)),
                       "probe_kinds": {str(k): int(v) for k, v in
                                       zip(*np.unique(kind, return_counts=True))},
                       "significant_probes": int(scan.significant.sum()),
                       "flagged_probes": int(flagged.size),
                       "n_paths": s.n_paths})
        display = ({"kind": "holes_map"},) if listed else ()
        return CheckResult(check=self.name, status="ok", metrics=metrics,
                           findings=tuple(findings), tables=tables, display=display,
                           images=images)

    # ------------------------------------------------------------------ helpers
    def _original_centres(self, ctx: Context, full: np.ndarray, regions,
                          rows: np.ndarray) -> np.ndarray:
        """Hole centres in the original latent coordinates: an affine combination of
        nearby distinct data points (``rows``; ``full`` is the data in the subspace) that
        lands on the centre in the subspace (exact for the affine scalings; the dropped
        PCA components take the neighbours' weighted average)."""
        if not regions:
            return np.empty((0, ctx.data.dim))
        c = np.array([r.center for r in regions])
        kk = int(min(len(rows), max(self.settings.rim_points, 2 * full.shape[1] + 2)))
        _, nb = ctx.nearest(c, k=kk, dims=full.shape[1], among=rows)
        lat = ctx.data.latents
        return np.array([affine_weights(full[nb[g]], c[g]) @ lat[nb[g]].astype(np.float64)
                         for g in range(len(c))])

    def _decode(self, ctx: Context, centres: np.ndarray, regions, rows: np.ndarray):
        """What the decoder produces at each hole's centre and at a few rim points (rim
        indices are positions in the distinct ``rows``)."""
        decoder = ctx.data.decoder
        if decoder is None or not len(regions):
            return {}, {}
        top = list(range(min(len(regions), _DECODED_HOLES)))
        lat = ctx.data.latents
        rim = [rows[regions[g].rim[:_DECODED_RIM]] for g in top]
        try:
            out = decode_images(decoder, np.concatenate(
                [centres[top].astype(np.float32)] + [lat[r] for r in rim]))
        except DecodeError as exc:  # a user decoder failing must not lose the holes
            log.warning("holes: the decoder failed (%s); no decoded images", exc)
            return {}, {}
        images, keys = {}, {}
        pos = len(top)
        for g in top:
            k = f"hole-{g + 1}-center"
            images[k] = out[g]
            keys[g] = [k]
            for j in range(len(rim[g])):
                k = f"hole-{g + 1}-rim-{j + 1}"
                images[k] = out[pos]
                keys[g].append(k)
                pos += 1
        return images, keys
