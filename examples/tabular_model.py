"""The model behind configs/table-factory.yaml: a small MLP over 6 numeric columns.

`encoder.factory: ../examples/tabular_model.py:build` imports this file and calls
``build(**factory_kwargs)``; the weights come from `encoder.checkpoint` (a state_dict read
with ``torch.load(weights_only=True)``). Importing a factory runs its code: only point a
config at modules you trust.
"""
from __future__ import annotations

from torch import nn


class TabularEncoder(nn.Module):
    """6 features -> 16 hidden -> 4-dim embedding (the layer `body` is the hidden layer)."""

    def __init__(self, n_features: int = 6, hidden: int = 16, dim: int = 4) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_features, hidden), nn.Tanh())
        self.head = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.head(self.body(x))


def build(n_features: int = 6, hidden: int = 16, dim: int = 4) -> nn.Module:
    return TabularEncoder(n_features, hidden, dim)
