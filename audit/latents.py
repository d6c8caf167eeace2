"""``LatentSet``: the N×d float32 matrix under audit, its metadata, ids and provenance."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

__all__ = ["LatentSet"]


@dataclass
class LatentSet:
    """Latents plus everything known about each row.

    ``metadata`` has one row per latent, in the same order; ``ids`` are strings.
    ``images`` (optional, N×H×W×C uint8) lets the report show thumbnails, ``decoder``
    (optional) maps latents to inputs (uint8 images) for checks that generate, and
    ``encoder`` (optional) maps such inputs back to latents (decode -> re-encode).
    ``text_encoder`` (optional) embeds a list of strings with the same model that made
    the latents (text encoders), e.g. for word-list association tests (SEAT).
    """

    latents: np.ndarray
    metadata: pd.DataFrame
    ids: np.ndarray
    source: str
    provenance: dict[str, Any] = field(default_factory=dict)
    images: np.ndarray | None = None
    decoder: Callable[[np.ndarray], np.ndarray] | None = None
    encoder: Callable[[np.ndarray], np.ndarray] | None = None
    text_encoder: Callable[[list[str]], np.ndarray] | None = None

    def __post_init__(self) -> None:
        self.latents = np.ascontiguousarray(self.latents, dtype=np.float32)
        if self.latents.ndim != 2:
            raise ValueError(f"latents must be 2-D, got shape {self.latents.shape}")
        n = self.latents.shape[0]
        if len(self.metadata) != n or len(self.ids) != n:
            raise ValueError(f"metadata ({len(self.metadata)}) and ids ({len(self.ids)}) "
                             f"must have {n} rows")
        self.ids = np.asarray(self.ids).astype(str)
        self.metadata = self.metadata.reset_index(drop=True)

    @property
    def n(self) -> int:
        return int(self.latents.shape[0])

    @property
    def dim(self) -> int:
        return int(self.latents.shape[1])
