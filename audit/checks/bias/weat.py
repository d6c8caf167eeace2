"""Question 5, WEAT: target sets X, Y and attribute sets A, B chosen by metadata values or
given as words the audit's text encoder embeds (SEAT), compared by cosine in the analysis
space or the encoder's own output."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...context import Context
from ...findings import Finding
from ...formatting import format_p
from ...metrics._association import weat_test
from .settings import WeatTest
from .state import BiasRun, Test, num

__all__ = ["check_weat"]


def _encode_words(ctx: Context, test: WeatTest, keys: tuple[str, ...]
                  ) -> list[np.ndarray | None]:
    """Encode the word sets of one test (in its templates) in one call to the model."""
    encode = ctx.data.text_encoder
    sels = (*test.targets, *test.attributes)
    if encode is None:
        key = next(k for sel, k in zip(sels, keys) if sel.words is not None)
        raise ValueError(f"{key}.words: word sets need the audit's text encoder "
                         "(encoder.sentence_transformers); these latents come from "
                         f"{ctx.data.provenance.get('kind', 'a file')}")
    texts: list[str] = []
    spans: list[tuple[int, int] | None] = []
    for sel in sels:
        if sel.words is None:
            spans.append(None)
            continue
        start = len(texts)
        texts += [tpl.format(w) for w in sel.words for tpl in (test.templates or ["{}"])]
        spans.append((start, len(texts)))
    z = np.asarray(encode(texts), dtype=np.float32)
    if z.shape != (len(texts), ctx.data.dim) or not np.isfinite(z).all():
        raise ValueError(f"the text encoder returned {z.shape} (finite: "
                         f"{bool(np.isfinite(z).all())}) for {len(texts)} texts; the "
                         f"latents have {ctx.data.dim} dimensions")
    return [None if sp is None else z[sp[0]:sp[1]] for sp in spans]


def _selection_masks(ctx: Context, test: WeatTest, keys: tuple[str, ...],
                     rng: np.random.Generator
                     ) -> tuple[list[np.ndarray | None], dict[str, int], bool]:
    """Rows of each metadata set (None for a word set): rows in both sets of a pair are
    left out of both; when targets and attributes share rows, the rows are split at random
    into a target half and an attribute half (a vector is never compared with itself)."""
    meta = ctx.data.metadata
    sels = (*test.targets, *test.attributes)
    masks: list[np.ndarray | None] = [None if sel.words is not None else sel.mask(meta, key)
                                      for sel, key in zip(sels, keys)]
    excluded = {"targets": 0, "attributes": 0}
    for pair, (i, j) in (("targets", (0, 1)), ("attributes", (2, 3))):
        if masks[i] is not None and masks[j] is not None:
            both = masks[i] & masks[j]
            masks[i], masks[j] = masks[i] & ~both, masks[j] & ~both
            excluded[pair] = int(both.sum())
    tm = [m for m in masks[:2] if m is not None]
    am = [m for m in masks[2:] if m is not None]
    split = bool(tm and am and (np.logical_or.reduce(tm) & np.logical_or.reduce(am)).any())
    if split:
        pool = rng.random(len(meta)) < 0.5
        masks = [None if m is None else (m & pool if i < 2 else m & ~pool)
                 for i, m in enumerate(masks)]
    return masks, excluded, split


def check_weat(run: BiasRun, k: int, test: WeatTest, metrics: dict[str, float]
             ) -> dict[str, Any]:
    """The k-th configured WEAT: its table row, and one test of the family."""
    ctx = run.ctx
    ids = ctx.data.ids
    here = f"checks.bias.weat[{k}]"
    sels = (*test.targets, *test.attributes)
    keys = (f"{here}.targets[0]", f"{here}.targets[1]", f"{here}.attributes[0]",
            f"{here}.attributes[1]")
    uses_words = any(sel.words is not None for sel in sels)
    space_kind = test.space if test.space != "auto" else ("latents" if uses_words
                                                           else "analysis")
    rng = ctx.rng(f"bias.weat.{k}")
    masks, excluded, split = _selection_masks(ctx, test, keys, rng)
    texts = _encode_words(ctx, test, keys) if uses_words else [None] * 4
    base = ctx.data.latents if space_kind == "latents" else ctx.space
    vectors: list[np.ndarray] = []
    rows_used: list[np.ndarray] = []
    for m, z in zip(masks, texts):
        if m is None:
            z = z if space_kind == "latents" else ctx.to_space(z)
            keep = np.flatnonzero(np.linalg.norm(z, axis=1) > 0)
            if keep.size > test.max_set_size:
                keep = np.sort(rng.choice(keep, test.max_set_size, replace=False))
            vectors.append(np.asarray(z[keep], dtype=np.float64))
            rows_used.append(np.empty(0, dtype=np.int64))
            continue
        rows = np.flatnonzero(m)
        rows = rows[np.linalg.norm(base[rows], axis=1) > 0]
        if rows.size > test.max_set_size:
            rows = np.sort(rng.choice(rows, test.max_set_size, replace=False))
        vectors.append(np.asarray(base[rows], dtype=np.float64))
        rows_used.append(rows)
    cols = sorted({c for sel in test.targets if sel.where for c in sel.where})
    attribute = (cols[0] if len(cols) == 1 else ",".join(cols)) if cols else "text"
    labels = {"X": test.targets[0].label, "Y": test.targets[1].label,
              "A": test.attributes[0].label, "B": test.attributes[1].label}
    sizes = dict(zip("XYAB", (int(len(v)) for v in vectors)))
    row: dict[str, Any] = {"name": test.name, "sets": labels, "sizes": sizes,
                           "overlap_split": split, "alternative": test.alternative,
                           "excluded_in_both": excluded, "space": space_kind,
                           "kinds": dict(zip("XYAB", ("words" if sel.words is not None
                                                       else "metadata" for sel in sels))),
                           "templates": list(test.templates or [])}
    if min(sizes.values()) < 2:
        run.note(Finding(
            id=run.ids("weat", test.name, "not-run"), check="bias", severity="info",
            title=f"WEAT {test.name}: not run (a set has fewer than 2 points)",
            summary=f"Set sizes after selection: {sizes}.",
            metric=f"bias.weat.{test.name}.effect_size", value=None,
            subjects={"attribute": attribute, "kind": "weat", "test": test.name,
                      "sets": labels, "sizes": sizes}))
        row["error"] = "a set has fewer than 2 points"
        return row
    seed = int(rng.integers(2 ** 31 - 1))
    res = weat_test(*vectors, alternative=test.alternative,
                    n_permutations=test.n_permutations, random_state=seed)
    p, d = res["p_value"], res["effect_size"]
    metrics[f"bias.weat.{test.name}.effect_size"] = float(d)
    metrics[f"bias.weat.{test.name}.p"] = float(p)
    row.update({"effect_size": d, "statistic": res["statistic"], "p": p,
                "exact": res["exact"], "n_partitions": res["n_partitions"],
                "p_method": res["p_method"]})
    signed = {"greater": d, "less": -d}.get(test.alternative, abs(d) if math.isfinite(d)
                                            else float("nan"))
    ok = math.isfinite(signed)

    def make(sev: str, q: float | None) -> Finding:
        how = ("exact over all " if res["exact"] else "sampled, ") + \
            f"{res['n_partitions']:,} partitions" + \
            ("; beyond every sampled one, so the tail is the permutation law's normal "
             "approximation" if res["p_method"] == "normal-tail" else "")
        direction = ("X is closer to A than Y is" if d > 0 else "Y is closer to A than X is")
        ev = np.concatenate([rows_used[0], rows_used[1]])[:1000]
        where_cos = ("the encoder's own output" if space_kind == "latents"
                     else "the analysis space")
        seat = (" Word sets are encoded with the audit's text encoder"
                + (f" in {len(test.templates)} template(s) such as {test.templates[0]!r}"
                   if test.templates else "") + " (SEAT)." if uses_words else "")
        return Finding(
            id=run.ids("weat", test.name), check="bias", severity=sev,
            title=f"WEAT {test.name}: effect size {num(d, 2)}"
                  + ("" if sev == "info" else f" ({direction})"),
            summary=(f"X = {labels['X']} ({sizes['X']}), Y = {labels['Y']} "
                     f"({sizes['Y']}), A = {labels['A']} ({sizes['A']}), B = "
                     f"{labels['B']} ({sizes['B']}); cosine in {where_cos}.{seat} "
                     f"Effect size {num(d, 3)} (standard deviation with ddof=1), "
                     f"{test.alternative} permutation {format_p(p)} ({how}), "
                     f"{format_p(q, name='BH-adjusted p')}."
                     + (" Target and attribute selections overlapped, so the rows were "
                        "split at random into a target half and an attribute half."
                        if split else "")),
            metric=f"bias.weat.{test.name}.effect_size", value=float(d),
            threshold=test.min_effect, p_value=q,
            subjects={"attribute": attribute, "kind": "weat", "test": test.name,
                      "sets": labels, "sizes": sizes},
            evidence_ids=tuple(ids[ev]))
    run.add(Test(p=p, passes=ok and signed >= test.min_effect,
                 strong=ok and signed >= test.strong_effect, make=make, always=True,
                 row=row))
    return row
