"""Fixtures of the service tests: a PostgreSQL cluster, live servers, finished run folders.

``backend`` parametrises a test over SQLite and PostgreSQL; ``make_server(**opts)`` starts a
real server (stopped at teardown); ``run_dirs`` holds two finished runs (``base`` and
``cand``: the same 400 ids, the candidate's latent space changed) made once per session.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi", reason="the service tests need the 'serve' extra")

from .servers import LiveServer, PostgresCluster  # noqa: E402


@pytest.fixture(scope="session")
def postgres():
    why = PostgresCluster.available()
    if why:
        pytest.skip(why)
    cluster = PostgresCluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def database(backend, request) -> str | None:
    """None for the embedded SQLite; a fresh PostgreSQL database's URL otherwise."""
    if backend == "sqlite":
        return None
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture
def make_server(tmp_path, database):
    """Start a server: ``make_server(workers=1, args=(...), home=None)``; stopped at teardown."""
    started: list[LiveServer] = []

    def _make(*, workers: int = 1, args: tuple[str, ...] = (), home: Path | None = None,
              env: dict | None = None, start: bool = True) -> LiveServer:
        server = LiveServer(home or tmp_path / f"home{len(started)}", database=database,
                            workers=workers, args=args, env=env)
        started.append(server)
        return server.start() if start else server

    yield _make
    for server in started:
        server.stop(kill=True)


def _dataset(folder: Path, *, seed: int, shift: float) -> Path:
    """400 points in 6-D, 3 blobs, an attribute and a protected column; a config."""
    rng = np.random.default_rng(seed)
    labels = np.arange(400) % 3
    centers = np.random.default_rng(0).standard_normal((3, 6)) * 5
    x = centers[labels] + rng.standard_normal((400, 6))
    x[:, 0] += shift * labels
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "latents.npy", x.astype(np.float32))
    pd.DataFrame({"id": [f"s{i}" for i in range(400)],
                  "shape": np.array(["a", "b", "c"])[labels],
                  "group": np.where(np.arange(400) % 4 == 0, "x", "y")}) \
        .to_parquet(folder / "meta.parquet")
    cfg = {"name": folder.name, "seed": 0, "attributes": ["shape"], "protected": ["group"],
           "data": {"latents": "latents.npy", "metadata": "meta.parquet"},
           "geometry": {"map": "pca"},
           "gates": [{"metric": "outliers.fraction", "op": "<=", "threshold": 0.5}]}
    (folder / "config.yaml").write_text(json.dumps(cfg))      # JSON is YAML
    return folder / "config.yaml"


def make_run(folder: Path, out: Path, *, seed: int = 0, shift: float = 0.0) -> Path:
    """A finished ``latent-audit run`` folder for a small generated dataset."""
    from audit.config import load_config
    from audit.pipeline import run, write_outputs
    cfg = load_config(_dataset(folder, seed=seed, shift=shift))
    write_outputs(run(cfg), out)
    return out


@pytest.fixture(scope="session")
def run_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    return {"base": make_run(root / "data-base", root / "run-base"),
            "cand": make_run(root / "data-cand", root / "run-cand", seed=1, shift=3.0)}


@pytest.fixture
def run_copy(tmp_path, run_dirs):
    """A fresh copy of a run folder the test may change: ``run_copy("base")``."""
    def _copy(which: str = "base") -> Path:
        dst = tmp_path / f"copy-{which}-{len(list(tmp_path.glob('copy-*')))}"
        shutil.copytree(run_dirs[which], dst)
        return dst
    return _copy
