"""Fixed-seed audits whose outputs are kept in ``tests/golden/`` (see test_golden.py).

Each case writes latents, metadata and a config into a folder and is audited in full, every
check on. The planted truth is the one the check tests use: holes cut from a sheet, a blob the
data lacks against a reference, shared and separate directions of attributes, a protected
attribute that leaks and is unevenly represented. ``demo`` audits the demo's own latents
(stored in ``tests/golden/demo/``, so no VAE training makes the case depend on torch's threads).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import yaml

GOLDEN = Path(__file__).resolve().parent / "golden"


def _write(folder: Path, x: np.ndarray, meta: pd.DataFrame, cfg: dict,
           ref: np.ndarray | None = None, ref_meta: pd.DataFrame | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "latents.npy", x.astype(np.float32))
    meta.to_parquet(folder / "meta.parquet")
    full = {"data": {"latents": "latents.npy", "metadata": "meta.parquet"}, "seed": 0, **cfg}
    if ref is not None:
        np.save(folder / "ref.npy", ref.astype(np.float32))
        full["reference"] = {"latents": "ref.npy"}
        if ref_meta is not None:
            ref_meta.to_parquet(folder / "ref-meta.parquet")
            full["reference"]["metadata"] = "ref-meta.parquet"
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(full, sort_keys=False))
    return path


def holes(folder: Path) -> Path:
    """A 2-D sheet in 16 dimensions with two balls cut out."""
    rng = np.random.default_rng(0)
    n = 2500
    z = rng.random((3 * n, 2))
    keep = np.ones(len(z), dtype=bool)
    for c, r in (((0.3, 0.3), 0.12), ((0.7, 0.65), 0.1)):
        keep &= np.linalg.norm(z - np.array(c), axis=1) > r
    z = z[keep][:n]
    q = np.linalg.qr(rng.standard_normal((16, 16)))[0]
    x = np.concatenate([z, np.zeros((n, 14))], 1) @ q.T + 0.005 * rng.standard_normal((n, 16))
    meta = pd.DataFrame({"id": [f"h{i}" for i in range(n)], "u": z[:, 0],
                         "side": np.where(z[:, 1] > 0.5, "top", "bottom"),
                         "group": rng.choice(["A", "B"], n)})
    return _write(folder, x, meta, {"name": "golden-holes", "attributes": ["u", "side"],
                                    "protected": ["group"], "geometry": {"map": "pca"}})


_CENTRES = 6.0 * np.array([[np.cos(a), np.sin(a)] for a in np.linspace(0, 2 * np.pi, 6)[:5]])


def _mixture(rng: np.random.Generator, n: int, drop: bool) -> tuple[np.ndarray, pd.DataFrame]:
    lab = rng.integers(0, 5, 2 * n)
    x = np.zeros((2 * n, 4))
    x[:, :2] = _CENTRES[lab]
    x += rng.standard_normal(x.shape)
    keep = np.ones(2 * n, dtype=bool)
    if drop:
        keep &= (lab != 4) & ~((lab == 3) & (x[:, 0] > _CENTRES[3, 0]))
    x, lab = x[keep][:n], lab[keep][:n]
    meta = pd.DataFrame({"blob": lab.astype(str), "size": rng.random(n),
                         "group": rng.choice(["A", "B"], n)})
    return x, meta


def coverage(folder: Path) -> Path:
    """Five blobs in the reference; the data lacks one and half of another."""
    rng = np.random.default_rng(1)
    x, meta = _mixture(rng, 1500, drop=True)
    meta.insert(0, "id", [f"c{i}" for i in range(len(x))])
    ref, ref_meta = _mixture(rng, 1500, drop=False)
    ref_meta.insert(0, "id", [f"r{i}" for i in range(len(ref))])
    return _write(folder, x, meta, {"name": "golden-coverage", "attributes": ["blob", "size"],
                                    "protected": ["group"], "geometry": {"map": "pca"}},
                  ref, ref_meta)


def entanglement(folder: Path) -> Path:
    """a, b correlated but on separate axes; c, e independent but sharing directions."""
    rng = np.random.default_rng(2)
    n = 1500
    a = rng.normal(size=n)
    b = 0.8 * a + 0.6 * rng.normal(size=n)
    c, e = rng.normal(size=n), rng.normal(size=n)
    k = rng.choice(["r", "s", "t"], n)
    kpos = np.select([k == "r", k == "s"], [-1.0, 0.0], 1.0)
    x = np.column_stack([a, b, c + 0.8 * e, 0.2 * c + 0.6 * e, 1.5 * kpos,
                         rng.normal(size=(n, 3))])
    x = x + 0.3 * rng.normal(size=x.shape)
    meta = pd.DataFrame({"id": [f"e{i}" for i in range(n)], "a": a, "b": b, "c": c, "e": e,
                         "k": k})
    return _write(folder, x, meta, {"name": "golden-entanglement",
                                    "attributes": ["a", "b", "c", "e", "k"],
                                    "geometry": {"map": "pca"}})


def bias(folder: Path) -> Path:
    """Three blobs; the protected group leaks along one axis, is 80/20 in one blob and has a
    lower positive outcome rate."""
    rng = np.random.default_rng(3)
    n, d = 1800, 6
    centres = rng.standard_normal((3, d)) * 6.0
    lab = rng.integers(0, 3, n)
    share_b = np.array([0.5, 0.5, 0.2])[lab]
    group = np.where(rng.random(n) < share_b, "B", "A")
    x = centres[lab] + rng.standard_normal((n, d))
    x[:, 5] += np.where(group == "B", 1.2, 0.0)
    outcome = (rng.random(n) < np.where(group == "B", 0.35, 0.6)).astype(int)
    meta = pd.DataFrame({"id": [f"b{i}" for i in range(n)], "cluster": lab.astype(str),
                         "group": group, "label": outcome})
    return _write(folder, x, meta, {"name": "golden-bias", "attributes": ["cluster"],
                                    "protected": ["group"], "outcome": "label",
                                    "geometry": {"map": "pca"}})


def demo(folder: Path) -> Path:
    """The demo config, audited on the demo VAE's latents (data and reference)."""
    src = GOLDEN / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    cfg = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs" / "demo.yaml")
                         .read_text())
    cfg.pop("encoder")
    cfg.pop("generator", None)          # the generator audit needs the VAE: not in this case
    # `map: auto` is UMAP where umap-learn is installed (the bench extra): pin what the
    # golden file was made with, so the case does not depend on optional packages
    cfg.setdefault("geometry", {})["map"] = "tsne"
    cfg["data"] = {"latents": str(src / "latents.npy"), "metadata": str(src / "meta.parquet")}
    cfg["reference"] = {"latents": str(src / "ref.npy"),
                        "metadata": str(src / "ref-meta.parquet")}
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


CASES: dict[str, Callable[[Path], Path]] = {
    "demo": demo, "holes": holes, "coverage": coverage, "entanglement": entanglement,
    "bias": bias}


# ------------------------------------------------------------------------ normalising

_VOLATILE = {"created", "versions", "seconds", "timings", "config_file"}


def _round(v):
    if isinstance(v, float):
        return float(f"{v:.10g}")
    return v


def normalise(doc, folder: Path):
    """Drop what changes between runs (times, versions, paths) from a findings document."""
    here = str(folder)
    demo_dir = str(GOLDEN / "demo")

    def walk(v):
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items() if k not in _VOLATILE}
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, str):
            return v.replace(here, "<case>").replace(demo_dir, "<demo>")
        return _round(v)
    return walk(doc)


def digest(result) -> dict:
    """What the report draws besides findings.json: each check's tables and per-sample
    columns (sums and counts, so a moved array that changed shows)."""
    from audit.findings import jsonable
    out = {}
    for c in result.checks:
        cols = {}
        for name, arr in sorted(c.per_sample.items()):
            a = np.asarray(arr)
            if a.dtype.kind in "biuf" and a.size:
                f = a.astype(np.float64)
                cols[name] = {"shape": list(a.shape), "sum": _round(float(np.nansum(f))),
                              "nan": int(np.isnan(f).sum())}
        out[c.check] = {"status": c.status, "error": c.error, "per_sample": cols, "tables": jsonable(c.tables),
                        "display": jsonable(list(c.display)), "images": sorted(c.images)}
    return out


def diff(a, b, path: str = "", *, rtol: float = 1e-6, out: list[str] | None = None
         ) -> list[str]:
    """Paths where two documents differ (floats compared to ``rtol``)."""
    out = [] if out is None else out
    if len(out) > 40:
        return out
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                out.append(f"{path}.{k}: only in {'the golden' if k in b else 'the run'}")
            else:
                diff(a[k], b[k], f"{path}.{k}", rtol=rtol, out=out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{path}: length {len(a)} != golden {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            diff(x, y, f"{path}[{i}]", rtol=rtol, out=out)
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)) \
            and not isinstance(a, bool) and not isinstance(b, bool):
        if not np.isclose(a, b, rtol=rtol, atol=1e-9):
            out.append(f"{path}: {a!r} != golden {b!r}")
    elif a != b:
        out.append(f"{path}: {str(a)[:80]!r} != golden {str(b)[:80]!r}")
    return out
