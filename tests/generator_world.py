"""A small world with known truth for generator audits: a smooth decoder from a 2-D prior to
6-D table rows, real data drawn through it, and decoders with one planted defect each.

The embedding is the identity (the rows are the latents), so every distance a check
measures is one we can reason about. ``world(...)`` builds the real data; ``context(...)``
a ``Context`` whose ``generated`` holds a ``GeneratedSet`` of any decoder, built the same
way ``audit.generator.generate`` builds it (prior draws from a named stream, decoded in
batches, embedded), without a config.

Planted defects (each a torch module, so it runs through the real decode path):
- ``HoleDecoder``: prior samples with ``z0 > 1.5`` (6.7% of the mass) decode far off the
  data manifold (+25 on every column).
- ``MemoDecoder``: prior samples with ``z0 < -1`` (15.9%) decode to an exact copy of a
  training row.
- ``UnderDecoder``: 60% of the prior region ``z1 > 0.5`` (group ``B``: 30.9% of the data) is
  folded onto ``z1 < -0.5``, so ``B`` is about 12% of generations.
- ``JumpDecoder``: a step of 6 along the first column where ``z0`` crosses 0 (draw the real
  data through it too, ``context(JumpDecoder(), real=world(decoder=JumpDecoder()))``, so
  only the interpolations see the jump).
- ``world(mode=True)``: the real data gains a compact blob (ids ``mode-*``) no decoder
  produces.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from audit.context import Context
from audit.generator import Decoder, GeneratedSet, fit_prior
from audit.generator.decoder import decode
from audit.latents import LatentSet
from audit.streams import stream

DIM_IN, DIM_OUT = 2, 6
NOISE = 0.05


def smooth(z: torch.Tensor) -> torch.Tensor:
    """The clean map from the prior (n, 2) to rows (n, 6)."""
    z0, z1 = z[:, 0], z[:, 1]
    return torch.stack([z0, z1, torch.sin(z0), 0.5 * z0 * z1, torch.cos(z1),
                        0.5 * z0 ** 2 - 0.5], dim=1)


class SmoothDecoder(nn.Module):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return smooth(z)


class HoleDecoder(nn.Module):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = smooth(z)
        return out + 25.0 * (z[:, :1] > 1.5).float()


class MemoDecoder(nn.Module):
    """``z0 < -1`` -> an exact training row (chosen by the prior point, deterministically)."""

    def __init__(self, train_rows: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("rows", torch.as_tensor(train_rows, dtype=torch.float32))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = smooth(z)
        pick = ((z[:, 1] * 1e4).abs().long() % self.rows.shape[0])
        copy = (z[:, 0] < -1.0)[:, None]
        return torch.where(copy, self.rows[pick], out)


class UnderDecoder(nn.Module):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        frac = torch.frac((z[:, 0] * 1e3).abs())
        fold = (z[:, 1] > 0.5) & (frac < 0.6)
        z1 = torch.where(fold, -z[:, 1], z[:, 1])
        return smooth(torch.stack([z[:, 0], z1], dim=1))


class JumpDecoder(nn.Module):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = smooth(z)
        step = torch.zeros_like(out)
        step[:, 0] = 6.0 * (z[:, 0] > 0).float()
        return out + step


def _rows(module: nn.Module, z: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return module(torch.as_tensor(z, dtype=torch.float32)).numpy()


def world(n: int = 2000, seed: int = 0, *, mode: bool = False,
          decoder: nn.Module | None = None) -> LatentSet:
    """Real data: ``decoder`` (default smooth) applied to N(0, I) draws, plus noise;
    metadata ``group`` (B where z1 > 0.5), ``side`` (right where z0 > 0) and the true
    prior coordinates ``z0``, ``z1``."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, DIM_IN)).astype(np.float32)
    x = _rows(decoder or SmoothDecoder(), z) + NOISE * rng.standard_normal((n, DIM_OUT))
    meta = pd.DataFrame({"id": [f"r{i}" for i in range(n)],
                         "group": np.where(z[:, 1] > 0.5, "B", "A"),
                         "side": np.where(z[:, 0] > 0, "right", "left"),
                         "z0": z[:, 0], "z1": z[:, 1]})
    if mode:
        m = n // 20
        blob = np.full(DIM_OUT, 4.0) + 0.1 * rng.standard_normal((m, DIM_OUT))
        x = np.concatenate([x, blob])
        meta = pd.concat([meta, pd.DataFrame({
            "id": [f"mode-{i}" for i in range(m)], "group": "A", "side": "mode",
            "z0": np.nan, "z1": np.nan})], ignore_index=True)
    return LatentSet(latents=x.astype(np.float32), metadata=meta, ids=meta["id"].to_numpy(),
                     source="<world>")


def generated(decoder: nn.Module, real: LatentSet, *, samples: int = 3000,
              seed: int = 0, reference: LatentSet | None = None) -> GeneratedSet:
    """What ``generate`` builds for ``decoder`` (identity embedding)."""
    def fn(z: np.ndarray) -> np.ndarray:
        return _rows(decoder, z)
    dec = Decoder(fn=fn, dim=DIM_IN, kind="factory", info={"kind": "test"})
    prior = fit_prior("gaussian", DIM_IN)
    z = prior.sample(samples, stream(seed, "generator.prior"))
    kind, out = decode(dec, z)

    def embed(kind: str, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float32)
    return GeneratedSet(prior=prior, z=z, latents=embed(kind, out), kind=kind, real=real,
                        decoder=dec, embed=embed, rows=out, reference=reference)


def context(decoder: nn.Module, *, n: int = 2000, samples: int = 3000, seed: int = 0,
            mode: bool = False, attributes=("side",), protected=("group",),
            reference: LatentSet | None = None, real: LatentSet | None = None) -> Context:
    """A ``Context`` over the real world data with ``ctx.generated`` from ``decoder``."""
    from audit.config import config_from_dict
    real = real if real is not None else world(n, seed, mode=mode)
    cfg = config_from_dict({"name": "world", "seed": seed, "data": {"latents": "x.npy"},
                            "attributes": list(attributes), "protected": list(protected),
                            "geometry": {"map": "pca"}}, source="<world>")
    gen = generated(decoder, real, samples=samples, seed=seed, reference=reference)
    return Context(real, reference=reference, config=cfg, generated=gen)


class Identity(nn.Module):
    """The audit's encoder in the table world: rows are the latents."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 1.0


def table_case(folder, decoder: nn.Module, *, n: int = 1500, samples: int = 1500,
               latent_dim: int | None = 2, checks=None, reference: bool = False,
               seed: int = 0):
    """A config file for a generator audit of ``decoder`` in the table world: the real rows
    as a CSV table (with ``group``/``side``), a TorchScript identity encoder, the decoder as
    TorchScript; ``reference`` adds a second draw of the world (seed + 1) as the reference."""
    import yaml
    real = world(n, seed=seed)
    cols = [f"f{i}" for i in range(real.dim)]

    def write(ls: LatentSet, name: str) -> None:
        table = ls.metadata[["id", "group", "side"]].copy()
        for i, c in enumerate(cols):
            table[c] = ls.latents[:, i]
        table.to_csv(folder / name, index=False)
    write(real, "rows.csv")
    torch.jit.save(torch.jit.script(Identity()), folder / "encoder.pt")
    torch.jit.save(torch.jit.script(decoder), folder / "decoder.pt")
    gen = {"decoder": {"torchscript": "decoder.pt"}, "samples": samples}
    if latent_dim is not None:
        gen["latent_dim"] = latent_dim
    cfg = {"name": "gen", "seed": seed,
           "data": {"table": "rows.csv", "columns": cols, "metadata": "rows.csv"},
           "encoder": {"torchscript": "encoder.pt", "device": "cpu"},
           "attributes": ["side"], "protected": ["group"], "geometry": {"map": "pca"},
           "cache": False, "generator": gen}
    if reference:
        write(world(n // 2, seed=seed + 1), "ref.csv")
        cfg["reference"] = {"table": "ref.csv", "columns": cols, "metadata": "ref.csv"}
    if checks is not None:
        cfg["checks"] = checks
    path = folder / "audit.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path
