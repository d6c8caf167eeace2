"""The demo VAE: a small fully-connected VAE trained on the CPU in seconds.

It exists so the demo audits a real learned latent space (not the generative factors
themselves) and keeps a decoder for checks that look at what the model generates.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..config import DemoVAESpec

log = logging.getLogger("audit")

__all__ = ["VAE", "TrainedVAE", "train_vae"]


class VAE(nn.Module):
    """x (flattened, in [0, 1]) -> (mu, logvar); z -> logits of x."""

    def __init__(self, n_inputs: int, latent_dim: int, hidden: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(n_inputs, hidden), nn.ReLU(),
                                     nn.Linear(hidden, hidden), nn.ReLU())
        self.mu = nn.Linear(hidden, latent_dim)
        self.logvar = nn.Linear(hidden, latent_dim)
        self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(),
                                     nn.Linear(hidden, hidden), nn.ReLU(),
                                     nn.Linear(hidden, n_inputs))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.mu(h), self.logvar(h)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decoder(z), mu, logvar


@dataclass
class TrainedVAE:
    model: VAE
    image_shape: tuple[int, ...]
    history: list[float]

    def encode(self, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Posterior means for uint8 images (n, H, W, C).

        Images become float32 one batch at a time, so the extra memory is one batch,
        not a float32 copy of every image (1.1 GiB at 50k images)."""
        images = np.asarray(images)
        out = []
        with torch.inference_mode():
            for i in range(0, len(images), batch_size):
                out.append(self.model.encode(_to_tensor(images[i:i + batch_size]))[0])
        return torch.cat(out).numpy().astype(np.float32)

    def decode(self, latents: np.ndarray) -> np.ndarray:
        """Images (n, H, W, C) uint8 that the decoder produces at ``latents``."""
        with torch.inference_mode():
            z = torch.as_tensor(np.asarray(latents, dtype=np.float32))
            x = torch.sigmoid(self.model.decoder(z)).numpy()
        return np.clip(np.round(x * 255), 0, 255).astype(np.uint8).reshape(
            (-1, *self.image_shape))

    @property
    def decoder(self) -> Callable[[np.ndarray], np.ndarray]:
        return self.decode

    def save(self, path: Path) -> None:
        torch.save({"state_dict": self.model.state_dict(), "image_shape": list(self.image_shape),
                    "latent_dim": self.model.mu.out_features,
                    "hidden": self.model.mu.in_features}, path)


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 images (n, ...) as a float32 tensor (n, pixels) in [0, 1]."""
    x = np.asarray(images, dtype=np.float32).reshape(len(images), -1) / 255.0
    return torch.from_numpy(x)


def train_vae(images: np.ndarray, spec: DemoVAESpec,
              progress: Callable[[int, int, float], None] | None = None) -> TrainedVAE:
    """Train a VAE on uint8 images (n, H, W, C) with a fixed seed; returns the trained model."""
    torch.manual_seed(spec.seed)
    gen = torch.Generator().manual_seed(spec.seed)
    x = _to_tensor(images)
    model = VAE(x.shape[1], spec.latent_dim, spec.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=spec.learning_rate)
    history: list[float] = []
    n = len(x)
    for epoch in range(spec.epochs):
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        model.train()
        for i in range(0, n, spec.batch_size):
            xb = x[perm[i:i + spec.batch_size]]
            logits, mu, logvar = model(xb)
            rec = nn.functional.binary_cross_entropy_with_logits(logits, xb, reduction="sum")
            kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            loss = (rec + spec.beta * kl) / len(xb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(xb)
        history.append(total / n)
        if progress:
            progress(epoch + 1, spec.epochs, history[-1])
    model.eval()
    return TrainedVAE(model=model, image_shape=tuple(images.shape[1:]), history=history)
