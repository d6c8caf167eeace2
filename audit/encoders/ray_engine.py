"""``engine: ray``: the same encoder, run over the inputs with Ray Data on an actor pool.

The driver builds a Ray dataset of the input rows (row index and id; table values or texts
as columns; images as file names read by the actors), and ``map_batches`` runs
``_EncodeActor`` on a fixed pool of ``encoder.ray.num_actors`` actors. Each actor loads the
model once, with the loader of the in-process path (``Encoders``), decodes, checks and
batches images with the same steps (``audit.encoders.batching``), and returns the latents
with their row index. The driver puts the batches back in row order and hands them to the
store writer exactly as the in-process loop does, so the latents, the ids and their order
are the same.

Ray is imported only here (the optional ``ray`` extra). An already-initialised Ray is used
as it is; otherwise ``ray.init(address=encoder.ray.address)`` starts or joins one and it is
shut down at the end. On a cluster, latent-audit, the model file and the inputs must be
reachable from every node (a shared file system, or a ``runtime_env`` given to your own
``ray.init`` before the run).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

from ..config import EncoderConfig
from ..data.images import THUMB_SIZE, open_image
from ..data.inputs import ImageInputs, Inputs, TableInputs, TextInputs
from ..errors import AuditError, InputError
from ..logs import Progress
from .batching import (SizeGuard, check_table_model, collect_images, image_batch,
                       image_settings, normalizer, prepare_image, skip_unreadable)
from .loader import Encoders

log = logging.getLogger("audit")

__all__ = ["RayEncoding", "require_ray"]

KEY = "encoder.engine"


def require_ray() -> Any:
    """``ray`` with Ray Data, or a one-line error naming the extra to install."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise InputError("engine: ray needs the optional 'ray' extra: pip install "
                         "'latent-audit[ray]'", key=KEY) from None
    return ray


@contextlib.contextmanager
def ray_session(ray: Any, address: str | None) -> Iterator[None]:
    """Use the running Ray, or start (``address`` None) / join one and shut it down after."""
    if ray.is_initialized():
        yield
        return
    kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
    if address is None:
        kwargs.update(num_cpus=os.cpu_count() or 1, include_dashboard=False)
    else:
        kwargs["address"] = address
    try:
        ray.init(**kwargs)
    except Exception as exc:
        raise InputError(f"cannot start or reach Ray ({exc.__class__.__name__}: "
                         f"{str(exc).strip().splitlines()[0][:200] if str(exc) else ''})",
                         source=address or "local", key="encoder.ray.address") from None
    try:
        yield
    finally:
        ray.shutdown()


def _audit_error(exc: BaseException) -> AuditError | None:
    """The ``AuditError`` an actor raised, found in the chain Ray wraps it in."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, AuditError):
            return e
        stack.extend([e.__cause__, e.__context__, getattr(e, "cause", None)])
    return None


class _EncodeActor:
    """One model per actor; ``__call__`` encodes one batch of rows (numpy format)."""

    def __init__(self, enc: EncoderConfig, source: str, kind: str, key: str,
                 folder: str | None = None, load: Callable[[int], Any] | None = None,
                 columns: list[str] | None = None) -> None:
        self.enc, self.kind, self.key, self.source = enc, kind, key, source
        self.folder, self.load, self.columns = folder, load, columns
        self.error: AuditError | None = None
        try:
            self.model = Encoders(enc, source=source).get()
            fixed = getattr(self.model, "fixed_batch", None)
            self.chunk = fixed or enc.batch_size
            if kind == "images":
                self.size, _ = image_settings(enc, self.model)
                self.norm = normalizer(enc)
            elif kind == "table":
                check_table_model(len(columns), self.model)
        except AuditError as exc:
            self.error = exc          # reported with the first batch (see __call__)

    def _describe(self) -> str:
        return json.dumps(self.model.describe(), default=str)

    def _encode(self, items: Any) -> np.ndarray:
        parts = [self.model(items[s:s + self.chunk]) for s in range(0, len(items), self.chunk)]
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = np.asarray(batch["row"], dtype=np.int64)
        b = len(rows)
        try:
            if self.error is not None:
                raise self.error
            return self._call(batch, rows)
        except AuditError as exc:
            # Ray does not carry the exception's type back through Ray Data: send it as
            # data, and the driver raises it in row order
            out: dict[str, Any] = {
                "row": rows, "ok": np.zeros(b, bool), "reason": np.full(b, "", dtype=object),
                "z": np.full(b, b"", dtype=object), "desc": np.full(b, "", dtype=object),
                "error": np.full(b, json.dumps({"message": exc.message, "source": exc.source,
                                                "key": exc.key}), dtype=object)}
            if self.kind == "images":
                out.update(thumb=np.zeros((b, THUMB_SIZE, THUMB_SIZE, 3), np.uint8),
                           h=np.zeros(b, np.int64), w=np.zeros(b, np.int64))
            return out

    def _call(self, batch: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
        b = len(rows)
        out: dict[str, Any] = {"row": rows, "error": np.full(b, "", dtype=object)}
        if self.kind == "images":
            z = self._images(batch, out)
        elif self.kind == "table":
            x = np.column_stack([np.asarray(batch[c], np.float32) for c in self.columns])
            z = self._encode(x)
            out["ok"], out["reason"] = np.ones(b, bool), np.full(b, "", dtype=object)
        else:
            z = self._encode([str(t) for t in batch["text"]])
            out["ok"], out["reason"] = np.ones(b, bool), np.full(b, "", dtype=object)
        ok_rows = np.flatnonzero(out["ok"])
        zb = np.full(b, b"", dtype=object)
        for j, r in enumerate(ok_rows):       # bytes: a batch may hold no readable image
            zb[r] = np.ascontiguousarray(z[j], dtype=np.float32).tobytes()
        out["z"] = zb
        desc = np.full(b, "", dtype=object)
        if b and len(ok_rows):
            desc[0] = self._describe()
        out["desc"] = desc
        return out

    def _images(self, batch: dict[str, np.ndarray], out: dict[str, Any]) -> np.ndarray:
        ids = [str(i) for i in batch["id"]]
        b = len(ids)
        ok, reason = np.zeros(b, bool), np.full(b, "", dtype=object)
        thumbs = np.zeros((b, THUMB_SIZE, THUMB_SIZE, 3), np.uint8)
        hw = np.zeros((b, 2), np.int64)

        def prepared() -> Iterator[tuple[int, str, Any, Any]]:
            for j, (name, row) in enumerate(zip(ids, batch["row"])):
                if self.folder is not None:
                    path = Path(self.folder) / name
                    load = lambda p=path: open_image(p)            # noqa: E731
                else:
                    load = lambda i=int(row): self.load(i)         # noqa: E731
                yield (j, name, *prepare_image(load, self.enc, self.size))

        def note(j: int, why: str) -> None:      # the driver skips or fails, in row order
            reason[j] = why
        pos, arrays, thumbs_ok = collect_images(
            prepared(), SizeGuard(str(self.folder or self.source)), note)
        for j, arr, t in zip(pos, arrays, thumbs_ok):
            ok[j], thumbs[j], hw[j] = True, t, arr.shape[1:]
        out.update(ok=ok, reason=reason, thumb=thumbs, h=hw[:, 0], w=hw[:, 1])
        if not arrays:
            return np.zeros((0, 0), np.float32)
        x = image_batch(arrays, self.norm)
        return self._encode(x)


class RayEncoding:
    """Encode ``inputs`` on Ray; ``batches()`` yields ``(latents, rows, thumbnails)`` in row
    order, as the in-process loop does, and ``describe()`` then describes the encoder."""

    def __init__(self, inputs: Inputs, enc: EncoderConfig, *, corrupt: str, key: str,
                 unreadable: list[tuple[str, str]], source: str | Path) -> None:
        self.inputs, self.enc, self.corrupt, self.key = inputs, enc, corrupt, key
        self.unreadable, self.source = unreadable, str(source)
        self._desc: dict[str, Any] | None = None
        self.ray = require_ray()

    def describe(self) -> dict[str, Any]:
        spec = self.enc.ray
        return {**(self._desc or {"kind": self.enc.kind}), "engine": "ray",
                "ray": {"num_actors": spec.num_actors,
                        "num_cpus_per_actor": spec.num_cpus_per_actor,
                        "num_gpus_per_actor": spec.num_gpus_per_actor,
                        "batch_size": self._batch_size()}}

    def _batch_size(self) -> int:
        return self.enc.ray.batch_size or self.enc.batch_size

    def _frame(self) -> tuple[pd.DataFrame, dict[str, Any]]:
        inp = self.inputs
        n = len(inp)
        frame = pd.DataFrame({"row": np.arange(n, dtype=np.int64)})
        if isinstance(inp, ImageInputs):
            frame["id"] = inp.ids
            extra = ({"folder": str(inp.folder)} if inp.folder is not None
                     else {"load": inp.load})
            return frame, {"kind": "images", **extra}
        if isinstance(inp, TableInputs):
            cols = [f"x{j}" for j in range(inp.values.shape[1])]
            frame = pd.concat([frame, pd.DataFrame(inp.values, columns=cols)], axis=1)
            return frame, {"kind": "table", "columns": cols}
        if isinstance(inp, TextInputs):
            frame["text"] = inp.texts
            return frame, {"kind": "text"}
        raise TypeError(f"not an input: {type(inp).__name__}")

    def _dataset(self) -> Any:
        ray, spec = self.ray, self.enc.ray
        frame, ctor = self._frame()
        n, bs = len(frame), self._batch_size()
        # blocks of whole batches, several per actor so the pool stays busy
        per_block = bs * int(np.clip(n // max(1, bs * spec.num_actors * 4), 1, 16))
        blocks = [frame.iloc[s:s + per_block].reset_index(drop=True)
                  for s in range(0, n, per_block)]
        ds = ray.data.from_pandas(blocks)
        # fractional CPUs: with Ray's default of one CPU per actor, a pool as large as the
        # machine leaves none for the tasks that feed it, and a 2-core machine deadlocks
        remote: dict[str, Any] = {"num_cpus": spec.num_cpus_per_actor}
        if spec.num_gpus_per_actor:
            remote["num_gpus"] = spec.num_gpus_per_actor
        return ds.map_batches(
            _EncodeActor, batch_size=bs, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=spec.num_actors),
            fn_constructor_kwargs={"enc": self.enc, "source": self.source, "key": self.key,
                                   **ctor}, **remote)

    def batches(self) -> Iterator[tuple[np.ndarray, list[int], np.ndarray | None]]:
        ray = self.ray
        with ray_session(ray, self.enc.ray.address):
            ctx = ray.data.DataContext.get_current()
            saved = {k: getattr(ctx, k) for k in ("enable_progress_bars",
                                                  "print_on_execution_start")}
            order = ctx.execution_options.preserve_order
            data_log = logging.getLogger("ray.data")
            level = data_log.level
            ctx.enable_progress_bars = False
            ctx.print_on_execution_start = False
            ctx.execution_options.preserve_order = True      # stream in row order
            data_log.setLevel(logging.CRITICAL)     # failures come back as our own errors
            try:
                yield from self._collect(self._dataset())
            except Exception as exc:
                err = _audit_error(exc)
                if err is not None:
                    raise err from None
                first = str(exc).strip().splitlines()
                raise InputError(f"the Ray engine failed ({exc.__class__.__name__}: "
                                 f"{(first[-1] if first else '')[:300]})", key=KEY) from None
            finally:
                for k, v in saved.items():
                    setattr(ctx, k, v)
                ctx.execution_options.preserve_order = order
                data_log.setLevel(level)

    def _collect(self, ds: Any) -> Iterator[tuple[np.ndarray, list[int], np.ndarray | None]]:
        inp = self.inputs
        n = len(inp)
        images = isinstance(inp, ImageInputs)
        progress = Progress("encode", n, unit={"images": "images", "table": "rows",
                                               "text": "texts"}[inp.kind])
        pending: dict[int, dict[str, np.ndarray]] = {}
        expected = 0
        dim: int | None = None
        sizes = SizeGuard(inp.source)
        for out in ds.iter_batches(batch_size=None, batch_format="numpy"):
            rows = np.asarray(out["row"], dtype=np.int64)
            if not len(rows):
                continue
            order = np.argsort(rows, kind="stable")
            out = {k: np.asarray(v)[order] for k, v in out.items()}
            pending[int(out["row"][0])] = out
            while expected in pending:          # put batches back in row order
                b = pending.pop(expected)
                rows = b["row"]
                if not np.array_equal(rows, np.arange(expected, expected + len(rows))):
                    raise RuntimeError("the Ray engine lost rows (not contiguous)")
                expected += len(rows)
                if len(rows) and b["error"][0]:
                    raise InputError(**json.loads(b["error"][0]))
                idx, zs, thumbs = [], [], []
                for j, r in enumerate(rows):
                    r = int(r)
                    if not b["ok"][j]:
                        skip_unreadable(inp, r, str(b["reason"][j]), corrupt=self.corrupt,
                                        key=self.key, unreadable=self.unreadable)
                        continue
                    if images:
                        sizes.check(inp.ids[r], (self.enc.channels, int(b["h"][j]),
                                                 int(b["w"][j])))
                        thumbs.append(b["thumb"][j])
                    zs.append(np.frombuffer(b["z"][j], dtype=np.float32))
                    idx.append(r)
                if self._desc is None or "output_shape" not in self._desc:
                    d = next((s for s in b["desc"] if s), None)
                    if d:
                        self._desc = json.loads(d)
                progress.update(len(rows))
                if not idx:
                    continue
                z = np.stack(zs)
                if dim is None:
                    dim = z.shape[1]
                elif z.shape[1] != dim:
                    raise InputError(f"the model's output width changed between batches: "
                                     f"B×{dim} then B×{z.shape[1]}; latents need one shape "
                                     "for every input", source=self._model_source(),
                                     key=f"encoder.{self.enc.kind}")
                yield z, idx, (np.stack(thumbs) if images else None)
        if expected != n or pending:
            raise RuntimeError(f"the Ray engine returned {expected} of {n} rows")

    def _model_source(self) -> str:
        enc = self.enc
        return str(enc.torchscript or enc.export or enc.factory or enc.sentence_transformers)
