"""Helpers for the bring-your-own-model tests: tiny images, one tiny CNN in every form.

The CNN's source is written into the test's folder as a module, so the same class serves
the factory config (``tinynet.py:build``), TorchScript scripting and torch.export.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

MODEL_SRC = '''
import torch
from torch import nn


class TinyCNN(nn.Module):
    """3x16x16 -> (head: B x 5, feature map: B x 8 x 16 x 16)."""

    def __init__(self, width: int = 6):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(width, 8, 3, padding=1))
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        f = self.features(x)
        return self.head(f.mean((2, 3))), f


class TinyMLP(nn.Module):
    def __init__(self, n_in: int = 4):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_in, 8), nn.Tanh())
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.body(x))


class Shifty(nn.Module):
    """Its output width depends on the batch size: a model that breaks the latents."""

    def forward(self, x):
        return x.mean((2, 3)).repeat(1, x.shape[0])


class Tokens(nn.Module):
    """B x D -> B x 3 x D ("tokens" x, 2x, 3x): their mean over axis 1 is 2x."""

    def forward(self, x):
        return torch.stack([x, 2 * x, 3 * x], 1)


def build(width: int = 6):
    return TinyCNN(width)


def build_mlp(n_in: int = 4):
    return TinyMLP(n_in)
'''

MEAN, STD = [0.5, 0.4, 0.3], [0.25, 0.2, 0.3]


def model_module(folder: Path, name: str = "tinynet"):
    """Write the model source as ``folder/name.py`` and import it."""
    path = Path(folder) / f"{name}.py"
    path.write_text(MODEL_SRC)
    modname = f"_byo_{name}_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(modname, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[modname] = mod
    spec.loader.exec_module(mod)
    return mod


def make_images(folder: Path, n: int = 12, size: int = 20, seed: int = 0) -> list[str]:
    """``n`` random images under ``folder`` (nested; RGB, grayscale and RGBA mixed)."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    names = []
    for i in range(n):
        name = f"{'sub/' if i % 3 == 0 else ''}img{i:02d}.png"
        arr = (rng.random((size, size, 3)) * 255).astype(np.uint8)
        mode = ("RGB", "L", "RGBA")[i % 3]
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).convert(mode).save(folder / name)
        names.append(name)
    return sorted(names)


def preprocess(folder: Path, names: list[str], size: int = 16, normalize: bool = True):
    """The documented preprocessing, written out independently of latent-audit."""
    import torch
    from PIL import Image
    out = []
    for n in names:
        im = Image.open(folder / n).convert("RGB").resize((size, size), Image.BILINEAR)
        x = np.asarray(im, dtype=np.float32).transpose(2, 0, 1) / 255.0
        if normalize:
            x = (x - np.array(MEAN, np.float32)[:, None, None]) / \
                np.array(STD, np.float32)[:, None, None]
        out.append(x)
    return torch.from_numpy(np.stack(out))


def save_forms(model, folder: Path, *, static_batch: int | None = None) -> dict[str, Path]:
    """The same model as TorchScript (.pt), torch.export (.pt2) and a state_dict."""
    import warnings

    import torch
    model = model.eval()
    paths = {"torchscript": folder / "model.pt", "export": folder / "model.pt2",
             "checkpoint": folder / "weights.pt"}
    with warnings.catch_warnings():          # torch.jit is deprecated, still widely used
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(model), str(paths["torchscript"]))
    example = torch.rand(static_batch or 4, 3, 16, 16)
    dyn = None if static_batch else {"x": {0: torch.export.Dim("batch", min=1)}}
    torch.export.save(torch.export.export(model, (example,), dynamic_shapes=dyn),
                      str(paths["export"]))
    torch.save(model.state_dict(), paths["checkpoint"])
    return paths


def write_config(folder: Path, data: dict, encoder: dict | None, name: str = "byo",
                 **extra) -> Path:
    cfg = {"name": name, "data": data, "geometry": {"map": "pca", "k": 5}, **extra}
    if encoder is not None:
        cfg["encoder"] = encoder
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def metadata(names: list[str], **cols) -> pd.DataFrame:
    frame = pd.DataFrame({"file": names, **cols})
    return frame.sample(frac=1.0, random_state=1).reset_index(drop=True)   # any order
