"""Everything ``run`` would refuse about a config before any compute, in one place.

``latent-audit validate`` and :func:`audit.pipeline.run` both call :func:`preflight`, so
whatever ``run`` refuses on the config, the gates, the metadata headers or the installed
extras, ``validate`` refuses too. Nothing here loads latents or metadata rows.
"""
from __future__ import annotations

import importlib.util
import math
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from .columns import nested_rows, slug
from .config import AuditConfig
from .errors import ConfigError, InputError

__all__ = ["preflight", "check_gates", "check_extras", "check_metadata_header",
           "check_metadata_values", "check_baseline", "metric_declared", "GEOMETRY_METRICS",
           "COMPARE_METRICS", "MAX_ATTRIBUTE_ABS"]

#: metrics the shared geometry adds to every run (see ``Context.describe``)
GEOMETRY_METRICS = ("geometry.intrinsic_dim", "geometry.knn_recall")

#: metrics the comparison with ``baseline:`` adds to a run (see docs/compare.md); a gate
#: on one of them needs a baseline
COMPARE_METRICS = ("compare.*", "delta.*")

#: the comparison's own metrics, whatever the data (``audit.compare.run.compare``); the
#: probe metrics ``compare.probe.<column>.*`` exist for attribute and protected columns
_COMPARE_NAMES = ("compare.matched", "compare.matched_count", "compare.cka_linear",
                  "compare.cka_linear_debiased", "compare.knn_overlap",
                  "compare.procrustes_residual", "compare.linear_map_residual",
                  "compare.neighbourhood_score", "compare.neighbourhood_changed",
                  "compare.clusters.kept", "compare.clusters.split",
                  "compare.clusters.merged", "compare.clusters.vanished",
                  "compare.clusters.dispersed", "compare.clusters.appeared",
                  "compare.coverage.base", "compare.coverage.cand", "compare.coverage.delta",
                  "compare.coverage.delta_low", "compare.coverage.delta_high",
                  "compare.coverage.lost", "compare.coverage.gained")
_PROBE_FIELDS = ("score_base", "score_cand", "delta")

#: attribute, protected and outcome values beyond this magnitude are refused on load:
#: their squares and sums stay finite in float64 and they survive float32 in the report
MAX_ATTRIBUTE_ABS = 1e30


#: metrics that exist only when the config provides what computes them: (patterns, test,
#: what is missing). A gate on one of them without it would fail after the whole run.
_NEEDS: tuple = (
    (("duplicates.cross_fraction", "coverage.precision", "coverage.recall",
      "coverage.density", "coverage.coverage", "coverage.coverage_null",
      "coverage.gap_regions", "coverage.gap_fraction"),
     lambda cfg: cfg.reference is not None, "a reference (reference: latents or inputs)"),
    (("entanglement.*", "disentanglement.*"),
     lambda cfg: bool(cfg.attributes), "attributes (metadata columns to probe)"),
    (("bias.outcome.*", "bias.*.outcome_gap"),
     lambda cfg: cfg.outcome is not None, "an outcome column"),
    (("generator.*",), lambda cfg: cfg.generator is not None,
     "a generator (generator: decoder, prior, samples)"),
    (("generator.reference.*",), lambda cfg: cfg.reference is not None,
     "a reference (reference: latents or inputs)"),
)


def _source(cfg: AuditConfig) -> str:
    return str(cfg.config_path) if cfg.config_path else "<config>"


def metric_declared(metric: str, patterns: Iterable[str]) -> bool:
    """Whether ``metric`` matches one of the declared names or fnmatch patterns."""
    return any(fnmatchcase(metric, p) for p in patterns)


def check_gates(cfg: AuditConfig, checks: list, source: str | None = None) -> None:
    """Every gate names a metric some enabled check (or the geometry) can produce, and
    compares it with a number."""
    source = source or _source(cfg)
    patterns = [p for c in checks for p in c.produces] + list(GEOMETRY_METRICS)
    for i, g in enumerate(cfg.gates):
        key = f"gates[{i}]"
        if isinstance(g.threshold, float) and math.isnan(g.threshold):
            raise ConfigError(f"gate '{g.metric} {g.op} nan': a NaN threshold always fails",
                              source=source, key=key)
        if metric_declared(g.metric, COMPARE_METRICS):
            _check_compare_metric(cfg, g.metric, patterns, source, key)
            continue
        if not metric_declared(g.metric, patterns):
            prefix = g.metric.split(".")[0]
            owners = [c.name for c in checks if c.name == prefix]
            same = [p for p in patterns if p.split(".")[0] == prefix][:6]
            hint = (f"; {prefix} produces: {', '.join(same)}" if same else
                    f"; enabled checks: {', '.join(c.name for c in checks) or 'none'}")
            why = ("no enabled check produces metric" if not owners
                   else "the check does not produce metric")
            raise ConfigError(f"{why} '{g.metric}'{hint}", source=source, key=key)
        for pats, present, what in _NEEDS:
            if metric_declared(g.metric, pats) and not present(cfg):
                raise ConfigError(f"metric '{g.metric}' is only produced with {what}, and "
                                  "this config has none", source=source, key=key)
        _check_column_metric(cfg, g.metric, source, key)


def _baseline_doc(cfg: AuditConfig) -> tuple[str, dict[str, Any] | None]:
    """What ``baseline:`` is: ``("run", its findings.json)`` or ``("store", None)``;
    anything else is an ``InputError`` naming the path and the key ``baseline``."""
    from .compare.run import _read_findings
    from .data.store import is_store
    p = Path(cfg.baseline)
    if not p.exists():
        raise InputError("no such file or folder (baseline: a previous run's output folder "
                         "or a latent store)", source=p, key="baseline")
    if not p.is_dir():
        raise InputError("is not a folder (baseline: a previous run's output folder or a "
                         "latent store)", source=p, key="baseline")
    if (p / "findings.json").is_file():
        if not is_store(p / "store"):
            raise InputError("is a run folder without its latents (no store/manifest.json; "
                             "rerun that audit with this version of latent-audit, or give "
                             "the latent store it read)", source=p, key="baseline")
        return "run", _read_findings(p / "findings.json")
    if is_store(p):
        return "store", None
    raise InputError("is neither a run folder (findings.json and store/) nor a latent store "
                     "(manifest.json)", source=p, key="baseline")


def check_baseline(cfg: AuditConfig) -> str | None:
    """``baseline:``, when set, is a run folder or a latent store; returns its kind."""
    if cfg.baseline is None:
        return None
    return _baseline_doc(cfg)[0]


def _check_compare_metric(cfg: AuditConfig, metric: str, patterns: list[str], source: str,
                          key: str) -> None:
    """A gate on ``compare.*`` or ``delta.*``: there is a baseline, and the comparison
    produces that metric (``delta.<m>``: both this run and a baseline run report ``m``)."""
    if cfg.baseline is None:
        raise ConfigError(f"metric '{metric}' is only produced by the comparison with a "
                          "baseline (baseline: a previous run's output folder or a latent "
                          "store), and this config has none", source=source, key=key)
    if metric.startswith("compare."):
        cols = [slug(c) for c in dict.fromkeys(list(cfg.attributes) + list(cfg.protected))]
        names = list(_COMPARE_NAMES) + [f"compare.probe.{c}.{f}" for c in cols
                                        for f in _PROBE_FIELDS]
        if metric not in names:
            hint = ("compare.probe.<column>.* exist for attribute and protected columns "
                    f"(here: {cols or 'none'})" if metric.startswith("compare.probe.")
                    else f"the comparison produces: {', '.join(_COMPARE_NAMES[:9])}, "
                         "compare.clusters.*, compare.probe.<column>.*")
            raise ConfigError(f"the comparison does not produce metric '{metric}'; {hint}",
                              source=source, key=key)
        return
    inner = metric[len("delta."):]
    kind, doc = _baseline_doc(cfg)
    if kind != "run":
        raise ConfigError(f"metric '{metric}' needs a baseline run folder (its findings.json "
                          "holds the metrics to subtract); baseline: is a latent store",
                          source=source, key=key)
    if metric_declared(inner, COMPARE_METRICS) or not metric_declared(inner, patterns):
        raise ConfigError(f"metric '{metric}': this run produces no metric '{inner}' (a "
                          "delta is candidate - baseline of a metric both audits report)",
                          source=source, key=key)
    for pats, present, what in _NEEDS:
        if metric_declared(inner, pats) and not present(cfg):
            raise ConfigError(f"metric '{inner}' is only produced with {what}, and this "
                              "config has none", source=source, key=key)
    _check_column_metric(cfg, inner, source, key)
    value = (doc.get("metrics") or {}).get(inner) if doc is not None else None
    if not isinstance(value, (int, float)) or isinstance(value, bool) \
            or not math.isfinite(value):
        raise ConfigError(f"metric '{metric}': the baseline run "
                          f"({cfg.baseline}) reports no finite value of '{inner}'",
                          source=source, key=key)


_BIAS_OVERALL = ("bias.tests", "bias.flagged", "bias.outcome.*", "bias.weat.*")


def _check_column_metric(cfg: AuditConfig, metric: str, source: str, key: str) -> None:
    """Metrics named after config columns exist only for those columns: ``bias.<col>.*``
    for a protected column, ``coverage.combinations_*`` with two or more columns."""
    if metric.startswith("bias.") and not metric_declared(metric, _BIAS_OVERALL):
        if not any(metric.startswith(f"bias.{col}.") for col in cfg.protected):
            raise ConfigError(f"metric '{metric}' names no protected column (protected: "
                              f"{list(cfg.protected)})", source=source, key=key)
    if metric_declared(metric, ("coverage.combinations_*",)):
        cols = list(dict.fromkeys(list(cfg.attributes) + list(cfg.protected)))
        if len(cols) < 2:
            raise ConfigError(f"metric '{metric}' is only produced with two or more "
                              "attribute or protected columns", source=source, key=key)


def _has(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def check_extras(cfg: AuditConfig, source: str | None = None) -> None:
    """Optional extras the config asks for are installed."""
    source = source or _source(cfg)
    if cfg.geometry.map == "umap" and not _has("umap"):
        raise ConfigError("map: umap needs the 'umap' extra: pip install 'latent-audit[umap]'",
                          source=source, key="geometry.map")
    if cfg.geometry.knn == "approximate" and not _has("faiss"):
        raise ConfigError("knn: approximate needs faiss, the 'fast' extra: "
                          "pip install 'latent-audit[fast]'", source=source,
                          key="geometry.knn")
    enc = cfg.encoder
    if enc is not None and enc.sentence_transformers and not _has("sentence_transformers"):
        raise ConfigError("sentence_transformers needs the 'text' extra: "
                          "pip install 'latent-audit[text]'", source=source,
                          key="encoder.sentence_transformers")
    if enc is not None and enc.engine == "ray" and not _has("ray"):
        raise ConfigError("engine: ray needs the 'ray' extra: pip install 'latent-audit[ray]'",
                          source=source, key="encoder.engine")


def check_builtin(cfg: AuditConfig, source: str | None = None) -> None:
    """The built-in shapes set's removal regions, correlations and group shares are valid
    (what generating the set would refuse, without generating it)."""
    from .config import ShapesSpec
    from .data.shapes import NUMERIC_FACTORS, validate_region
    source = source or _source(cfg)
    for section in ("data", "reference"):
        dc = getattr(cfg, section)
        spec = dc.builtin if dc is not None else None
        if not isinstance(spec, ShapesSpec):
            continue
        try:
            for region in spec.remove:
                validate_region(region)
            for c in spec.correlate:
                bad = [f for f in c.factors if f not in NUMERIC_FACTORS]
                if bad:
                    raise ValueError(f"can only correlate numeric factors "
                                     f"{list(NUMERIC_FACTORS)}, got '{bad[0]}'")
                if c.factors[0] == c.factors[1]:
                    raise ValueError("correlate needs two different factors")
            if spec.groups and (any(v < 0 for v in spec.groups.values())
                                or sum(spec.groups.values()) <= 0):
                raise ValueError("group shares must be non-negative and not all zero")
        except ValueError as exc:
            raise ConfigError(str(exc), source=source, key=f"{section}.builtin") from None


def _wanted(cfg: AuditConfig) -> dict[str, list[str]]:
    out = {"attributes": list(cfg.attributes), "protected": list(cfg.protected),
           "outcome": [cfg.outcome] if cfg.outcome else []}
    return {k: v for k, v in out.items() if v}


def _header(path: Path, key: str) -> dict[str, Any]:
    """Column name -> type of a .csv / .parquet table, read without its rows."""
    from .data.arrays import TABLE_SUFFIXES, _check_file
    _check_file(path, key, TABLE_SUFFIXES)
    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq
            schema = pq.read_schema(path)
            return {n: schema.field(n).type for n in schema.names}
        return {str(c): None for c in pd.read_csv(path, nrows=0).columns}
    except pd.errors.EmptyDataError:
        raise InputError("is empty", source=path, key=key) from None
    except Exception as exc:   # noqa: BLE001 - pyarrow and the csv parser raise their own
        raise InputError(f"unreadable ({exc.__class__.__name__}: {exc})", source=path,
                         key=key) from None


def _nested(arrow_type: Any) -> bool:
    if arrow_type is None:
        return False
    import pyarrow as pa
    t = pa.types
    return bool(t.is_list(arrow_type) or t.is_large_list(arrow_type)
                or t.is_fixed_size_list(arrow_type) or t.is_struct(arrow_type)
                or t.is_map(arrow_type) or t.is_union(arrow_type))


def check_metadata_header(cfg: AuditConfig) -> None:
    """The attribute, protected and outcome columns exist in the data's metadata, and hold
    scalar values (read from the csv header or the parquet schema, not the rows)."""
    dc = cfg.data
    wanted = _wanted(cfg)
    latent_file = dc.kind == "latents" and Path(dc.latents).is_file()
    store_meta = (Path(dc.latents) / "metadata.parquet" if dc.kind == "latents"
                  and (Path(dc.latents) / "manifest.json").is_file() else None)
    if not latent_file and store_meta is None:
        return          # builtin sets and encoder inputs: their columns are known on load
    cols: dict[str, Any] = {}
    src: str | Path = dc.latents            # a bare latent file has no metadata columns
    if store_meta is not None and store_meta.is_file():
        cols.update(_header(store_meta, "data.latents"))     # a store carries its own table
        src = store_meta
    if dc.metadata is not None:             # joined onto the store's columns by id
        cols.update(_header(Path(dc.metadata), "data.metadata"))
        src = dc.metadata
    cols.pop(dc.id_column, None)
    for key, names in wanted.items():
        missing = [c for c in names if c not in cols]
        if missing:
            have = list(cols)
            raise InputError(f"column(s) {missing} not in the metadata (columns: "
                             f"{have[:20]}{'…' if len(have) > 20 else ''})"
                             + ("" if dc.metadata is not None else
                                "; add data.metadata: a .csv or .parquet table"),
                             source=src, key=key)
        for c in names:
            if _nested(cols[c]):
                raise InputError(f"column '{c}' holds lists or structs ({cols[c]}): "
                                 f"{key} need one scalar value per row", source=src, key=key)


def check_metadata_values(metadata: pd.DataFrame, cfg: AuditConfig,
                          source: str | Path) -> None:
    """Loaded attribute, protected and outcome columns hold scalars, and numeric ones hold
    no infinities and nothing beyond ``MAX_ATTRIBUTE_ABS`` (missing values are allowed)."""
    for key, names in _wanted(cfg).items():
        for c in names:
            if c not in metadata.columns:
                continue
            ser = metadata[c]
            if ser.dtype == object:
                nested = nested_rows(ser)
                if nested.any():
                    row = int(np.flatnonzero(nested)[0])
                    raise InputError(f"column '{c}' holds lists or structs (first at row "
                                     f"{row}): {key} need one scalar value per row",
                                     source=source, key=key)
                continue
            if ser.dtype == bool or not pd.api.types.is_numeric_dtype(ser):
                continue
            vals = ser.to_numpy(dtype=np.float64, na_value=np.nan)
            inf = np.isinf(vals)
            if inf.any():
                raise InputError(f"column '{c}' contains Inf in {int(inf.sum())} row(s), first "
                                 f"at row {int(np.flatnonzero(inf)[0])} (leave a value empty "
                                 "for missing)", source=source, key=key)
            big = np.abs(np.nan_to_num(vals)) > MAX_ATTRIBUTE_ABS
            if big.any():
                r = int(np.flatnonzero(big)[0])
                raise InputError(f"column '{c}' has values up to {np.nanmax(np.abs(vals)):.3g} "
                                 f"(first at row {r}); values beyond ±{MAX_ATTRIBUTE_ABS:.0e} "
                                 "are refused: rescale the column", source=source, key=key)


def preflight(cfg: AuditConfig, source: str | None = None) -> list:
    """Build the checks and refuse, before any compute, what ``run`` would refuse later:
    unknown checks or settings, a ``baseline:`` that is neither a run folder nor a latent
    store, gates on metrics no enabled check (or the comparison) produces, NaN gate
    thresholds, missing extras, and metadata columns that do not exist. Returns the
    checks."""
    from .checks import build_checks
    source = source or _source(cfg)
    checks = build_checks(cfg.checks, source=source, generator=cfg.generator is not None)
    check_baseline(cfg)
    check_gates(cfg, checks, source)
    check_extras(cfg, source)
    check_builtin(cfg, source)
    check_metadata_header(cfg)
    return checks
