"""Config models and YAML loading.

Every key is declared; an unknown key fails with its dotted name and the file. Relative
paths are resolved against the config file's folder.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (BaseModel, ConfigDict, Field, ValidationError, field_validator,
                      model_validator)

from .errors import ConfigError

__all__ = ["AuditConfig", "DataConfig", "EncoderConfig", "GateConfig", "GeometryConfig",
           "load_config", "config_from_dict"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- built-in datasets -------------------------------------------------------------

class ShapesSpec(_Strict):
    """Procedural shapes images with independent, recorded generative factors."""
    name: Literal["shapes"]
    n: int = Field(3000, ge=10, description="number of images")
    image_size: int = Field(32, ge=16, le=128)
    seed: int = 0
    remove: list[dict[str, Any]] = Field(
        default_factory=list,
        description="regions of factor space to leave out: each a dict factor -> value "
                    "(categorical) or [low, high] (numeric); a sample is removed when it "
                    "matches every entry of one region")
    correlate: list["CorrelateSpec"] = Field(default_factory=list)
    groups: dict[str, float] | None = Field(
        None, description="an extra metadata column `group` drawn with these shares, "
                          "independent of the image")


class CorrelateSpec(_Strict):
    """Correlate two numeric factors through a Gaussian copula with correlation ``rho``."""
    factors: tuple[str, str]
    rho: float = Field(0.8, gt=-1, lt=1)


class DigitsSpec(_Strict):
    """scikit-learn's 8×8 handwritten digits (1797 real images, label 0-9)."""
    name: Literal["digits"]
    n: int | None = Field(None, ge=10, description="subsample to this many images")
    seed: int = 0


BuiltinSpec = Annotated[Union[ShapesSpec, DigitsSpec], Field(discriminator="name")]


class DataConfig(_Strict):
    """One set of samples: precomputed latents, or inputs an encoder turns into latents."""
    latents: Path | None = None
    metadata: Path | None = None
    builtin: BuiltinSpec | None = None
    id_column: str = "id"
    key: str | None = Field(None, description="array name inside an .npz with several arrays")

    @model_validator(mode="after")
    def _one_source(self) -> "DataConfig":
        sources = [k for k in ("latents", "builtin") if getattr(self, k) is not None]
        if len(sources) != 1:
            raise ValueError("give exactly one of 'latents' or 'builtin'"
                             + (f" (got {', '.join(sources)})" if sources else ""))
        return self


# ---- encoders ----------------------------------------------------------------------

class DemoVAESpec(_Strict):
    """Train the small demo VAE on the image inputs (CPU, fixed seed) and encode with its mean."""
    latent_dim: int = Field(8, ge=2, le=256)
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(128, ge=8)
    learning_rate: float = Field(2e-3, gt=0)
    beta: float = Field(1.0, gt=0)
    hidden: int = Field(256, ge=16)
    seed: int = 0


class EncoderConfig(_Strict):
    """How inputs become latents. Exactly one kind key is given."""
    demo_vae: DemoVAESpec | None = None
    flatten: bool | None = Field(
        None, description="use the flattened inputs themselves as latents (e.g. pixels)")

    @model_validator(mode="after")
    def _one_kind(self) -> "EncoderConfig":
        kinds = [k for k in ("demo_vae", "flatten") if getattr(self, k)]
        if len(kinds) != 1:
            raise ValueError("give exactly one encoder kind: demo_vae or flatten")
        return self


# ---- geometry and checks -----------------------------------------------------------

class GeometryConfig(_Strict):
    """The shared geometry every check reads (computed once)."""
    scale: Literal["none", "standard", "l2"] = Field(
        "none", description="distance space: raw (centred) latents, z-scored dimensions, "
                            "or unit-norm rows (cosine geometry)")
    pca_variance: float = Field(
        0.99, gt=0, le=1, description="when d > max_dims_exact, keep the PCA components "
                                      "that explain this share of the variance")
    max_dims_exact: int = Field(64, ge=2)
    k: int = Field(15, ge=2, le=200, description="neighbours in the shared kNN graph")
    map: Literal["auto", "pca", "tsne", "umap"] = "auto"
    map_sample: int = Field(2000, ge=100, description="the 2-D map is fitted on at most this "
                                                        "many points and extended to the rest")
    cluster_dims: int = Field(10, ge=2, description="PCA dimensions HDBSCAN clusters in")
    cluster_sample: int = Field(20000, ge=500, description="HDBSCAN is fitted on at most "
                                                           "this many points, the rest predicted")
    min_cluster_size: int | None = Field(None, ge=2, description="default: max(15, 1% of N)")
    min_samples: int | None = Field(None, ge=1)
    plot_points: int = Field(50000, ge=100, description="points drawn in the report's map")


class GateConfig(_Strict):
    """A release gate: ``metric op threshold``."""
    metric: str
    op: Literal["<=", ">=", "<", ">", "=="]
    threshold: float

    @property
    def label(self) -> str:
        return f"{self.metric} {self.op} {self.threshold:g}"


_GATE_RE = re.compile(r"^\s*([A-Za-z0-9_.\-<>:]+?)\s*(<=|>=|==|<|>)\s*([-+0-9.eE]+|nan|inf)\s*$")


class AuditConfig(_Strict):
    """The whole audit, as written in one YAML file."""
    name: str = Field("audit", min_length=1, max_length=120)
    data: DataConfig
    reference: DataConfig | None = None
    encoder: EncoderConfig | None = None
    attributes: list[str] = Field(default_factory=list)
    protected: list[str] = Field(default_factory=list)
    outcome: str | None = Field(None, description="metadata column with a per-sample outcome "
                                                  "(e.g. correct/incorrect, loss) for slices")
    seed: int = 0
    geometry: GeometryConfig = Field(default_factory=GeometryConfig)
    checks: dict[str, dict[str, Any]] | None = Field(
        None, description="check name -> its settings; default: every default check")
    gates: list[GateConfig] = Field(default_factory=list)
    config_path: Path | None = Field(None, exclude=True)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", v):
            raise ValueError("use letters, digits, '.', '_' and '-' only (it names the "
                             "output folder)")
        return v

    @field_validator("gates", mode="before")
    @classmethod
    def _parse_gates(cls, v: Any) -> Any:
        if not isinstance(v, list):
            return v
        out = []
        for item in v:
            if isinstance(item, str):
                m = _GATE_RE.match(item)
                if not m:
                    raise ValueError(f"gate {item!r} is not of the form "
                                     "'metric <= number' (ops: <=, >=, <, >, ==)")
                out.append({"metric": m.group(1), "op": m.group(2),
                            "threshold": float(m.group(3))})
            else:
                out.append(item)
        return out

    @model_validator(mode="after")
    def _no_overlap(self) -> "AuditConfig":
        dup = sorted(set(self.attributes) & set(self.protected))
        if dup:
            raise ValueError(f"columns listed both as attributes and protected: {dup}")
        return self

    def public_dict(self) -> dict[str, Any]:
        """The config as JSON-ready data (paths as strings), for findings.json."""
        return self.model_dump(mode="json", exclude_none=True)


def _loc(err: dict[str, Any]) -> str:
    parts = [str(p) for p in err.get("loc", ())]
    # drop pydantic's union tags ("builtin.shapes" -> "builtin"): they are not user keys
    keep = [p for i, p in enumerate(parts) if not (i and parts[i - 1] == "builtin")]
    return ".".join(keep)


def _resolve_paths(cfg: AuditConfig, base: Path) -> AuditConfig:
    def fix(dc: DataConfig | None) -> DataConfig | None:
        if dc is None:
            return None
        upd = {}
        for key in ("latents", "metadata"):
            p = getattr(dc, key)
            if p is not None and not p.is_absolute():
                upd[key] = (base / p)
        return dc.model_copy(update=upd)
    return cfg.model_copy(update={"data": fix(cfg.data), "reference": fix(cfg.reference)})


def config_from_dict(raw: Any, *, source: str | Path = "<config>",
                     base_dir: Path | None = None) -> AuditConfig:
    """Validate a parsed config; errors name the dotted key and ``source``."""
    if not isinstance(raw, dict):
        raise ConfigError("the config must be a mapping of keys to values", source=source)
    try:
        cfg = AuditConfig.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = _loc(err)
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see the README's config reference)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        else:
            msg = err["msg"].removeprefix("Value error, ")
        more = len(exc.errors()) - 1
        if more:
            msg += f" (and {more} more problem{'s' if more > 1 else ''})"
        raise ConfigError(msg, source=source, key=key or None) from None
    if base_dir is not None:
        cfg = _resolve_paths(cfg, base_dir)
    return cfg


def load_config(path: str | Path) -> AuditConfig:
    """Read and validate a YAML config file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("config file not found", source=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config ({exc.__class__.__name__}: {exc})",
                          source=path) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"not valid YAML{where}: {getattr(exc, 'problem', exc)}",
                          source=path) from None
    cfg = config_from_dict(raw, source=path, base_dir=path.resolve().parent)
    return cfg.model_copy(update={"config_path": path.resolve()})
