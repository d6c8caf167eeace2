"""The configured model, loaded once on first use (in process, or once per Ray actor)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..config import EncoderConfig

log = logging.getLogger("audit")

__all__ = ["Encoders"]


class Encoders:
    """Loads the configured model once, on first use, for the data and the reference."""

    def __init__(self, enc: EncoderConfig, *, source: str | Path = "<config>") -> None:
        self.enc, self.source = enc, source
        self._model: Any = None

    def get(self):
        if self._model is None:
            from .torch_models import ModelEncoder, load_model, resolve_device
            if self.enc.kind == "sentence_transformers":
                from .text import TextEncoder
                log.info("encoder: loading sentence-transformers model %s",
                         self.enc.sentence_transformers)
                self._model = TextEncoder(self.enc.sentence_transformers,
                                          resolve_device(self.enc.device))
            else:
                log.info("encoder: loading %s model", self.enc.kind)
                self._model = ModelEncoder(load_model(self.enc, source=self.source), self.enc)
        return self._model

    def close(self) -> None:
        if self._model is not None and hasattr(self._model, "close"):
            self._model.close()

    def text_encoder(self, batch_size: int) -> Callable[[list[str]], np.ndarray]:
        """Strings -> latents with the configured text model, in batches; the model is
        loaded on the first call (so, after a cache hit, only if a check asks)."""
        def encode_texts(texts: list[str]) -> np.ndarray:
            texts = list(texts)
            model = self.get()
            return np.concatenate([model(texts[i:i + batch_size])
                                   for i in range(0, len(texts), batch_size)])
        return encode_texts
