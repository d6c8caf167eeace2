"""Built-in datasets with known truth: procedural shapes and scikit-learn's digits."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..config import DigitsSpec, ShapesSpec
from ..errors import ConfigError
from .shapes import make_shapes

__all__ = ["InputSet", "load_builtin"]


@dataclass
class InputSet:
    """Raw inputs (images) with their metadata, before an encoder turns them into latents."""
    images: np.ndarray                # (n, H, W, C) uint8
    metadata: pd.DataFrame
    ids: np.ndarray
    source: str
    truth: dict[str, Any] = field(default_factory=dict)


def load_builtin(spec: ShapesSpec | DigitsSpec, *, section: str = "data") -> InputSet:
    """Generate or load a built-in dataset."""
    if isinstance(spec, ShapesSpec):
        try:
            data = make_shapes(spec.n, image_size=spec.image_size, seed=spec.seed,
                               remove=spec.remove,
                               correlate=[(c.factors[0], c.factors[1], c.rho)
                                          for c in spec.correlate],
                               groups=spec.groups)
        except ValueError as exc:
            raise ConfigError(str(exc), key=f"{section}.builtin") from None
        prefix = "shape" if section == "data" else f"{section}-shape"
        ids = np.array([f"{prefix}-{i:05d}" for i in range(spec.n)])
        return InputSet(images=data.images, metadata=data.factors, ids=ids,
                        source=f"builtin:shapes(n={spec.n}, seed={spec.seed})",
                        truth=data.truth)
    from sklearn.datasets import load_digits
    d = load_digits()
    idx = np.arange(len(d.target))
    if spec.n is not None and spec.n < len(idx):
        idx = np.sort(np.random.default_rng(spec.seed).choice(idx, spec.n, replace=False))
    images = np.clip(d.images[idx] / 16.0 * 255, 0, 255).astype(np.uint8)[..., None]
    meta = pd.DataFrame({"label": d.target[idx].astype(int)})
    prefix = "digit" if section == "data" else f"{section}-digit"
    ids = np.array([f"{prefix}-{i:04d}" for i in idx])
    return InputSet(images=images, metadata=meta, ids=ids, source="builtin:digits")
