"""Shared fixtures: small latent files with planted structure, and a CLI runner."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from audit.cli import main

ROOT = Path(__file__).resolve().parents[1]


def blobs(n: int = 600, d: int = 8, centers: int = 3, seed: int = 0, spread: float = 6.0):
    """A mixture of Gaussian blobs with known labels."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centers, d)) * spread
    labels = rng.integers(0, centers, n)
    return (c[labels] + rng.standard_normal((n, d))).astype(np.float32), labels


@pytest.fixture
def write_case(tmp_path):
    """Write latents (+ metadata, + config) into tmp_path; returns the config path."""
    def _write(latents=None, metadata=None, config=None, *, latents_name="latents.npy",
               meta_name="meta.csv", reference=None):
        if latents is None:
            latents, labels = blobs()
            metadata = pd.DataFrame({"id": [f"p{i}" for i in range(len(latents))],
                                     "shape": np.array(["a", "b", "c"])[labels],
                                     "group": np.where(np.arange(len(latents)) % 3 == 0,
                                                       "x", "y")})
        lp = tmp_path / latents_name
        if isinstance(latents, (bytes, str)):
            lp.write_bytes(latents if isinstance(latents, bytes) else latents.encode())
        elif lp.suffix == ".npy":
            np.save(lp, latents, allow_pickle=True)
        elif lp.suffix == ".npz":
            np.savez(lp, latents=latents)
        elif lp.suffix == ".csv":
            pd.DataFrame(latents).to_csv(lp, index=False)
        elif lp.suffix == ".parquet":
            pd.DataFrame(latents, columns=[f"z{i}" for i in range(latents.shape[1])]) \
              .to_parquet(lp)
        cfg = {"name": "t", "data": {"latents": latents_name}, "seed": 0,
               "geometry": {"map": "pca"}}
        if metadata is not None:
            mp = tmp_path / meta_name
            if mp.suffix == ".parquet":
                metadata.to_parquet(mp)
            else:
                metadata.to_csv(mp, index=False)
            cfg["data"]["metadata"] = meta_name
        if reference is not None:
            np.save(tmp_path / "ref.npy", reference)
            cfg["reference"] = {"latents": "ref.npy"}
        cfg.update(config or {})
        cp = tmp_path / "config.yaml"
        cp.write_text(yaml.safe_dump(cfg))
        return cp
    return _write


@pytest.fixture
def run_cli(capsys):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    def _run(*args: str):
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err
    return _run


def load_findings(out_dir: Path) -> dict:
    return json.loads((Path(out_dir) / "findings.json").read_text())


@pytest.fixture(scope="session")
def demo_out(tmp_path_factory):
    """The demo audit at a reduced size (the same code path as `latent-audit demo`)."""
    out = tmp_path_factory.mktemp("demo") / "reports" / "demo"
    code = main(["demo", "--n", "900", "--epochs", "6", "--out", str(out), "-q"])
    return code, out


# ---------------------------------------------------------------------------- browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking"]


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium through Playwright (never a downloaded browser)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def open_report(browser, path: Path, *, timeout: int = 60000):
    """Open a report, wait until every figure is drawn; returns (page, events)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    events = {"console": [], "requests": [], "dialogs": []}
    page.on("console", lambda m: events["console"].append((m.type, m.text)))
    page.on("pageerror", lambda e: events["console"].append(("pageerror", str(e))))
    page.on("request", lambda r: events["requests"].append(r.url))
    page.on("dialog", lambda d: (events["dialogs"].append(d.message), d.dismiss()))
    page.goto(Path(path).resolve().as_uri())
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= "
                           "document.querySelectorAll('div.figure').length", timeout=timeout)
    page.wait_for_timeout(300)
    return page, events


def console_errors(events):
    """Console errors, page errors and warnings (headless WebGL's driver notes aside)."""
    return [(t, m) for t, m in events["console"]
            if t in ("error", "pageerror") or (t == "warning" and "GL Driver" not in m)]
