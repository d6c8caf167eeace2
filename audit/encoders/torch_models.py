"""PyTorch models as encoders: TorchScript files, torch.export programs, factories.

``load_model`` reads the model named by an ``EncoderConfig``; ``ModelEncoder`` runs it on
batches under ``torch.inference_mode()`` and turns what it returns into an N×d matrix:

- ``layer:`` takes a submodule's output through a forward hook (the first call of that
  submodule in a forward pass; the rest of the pass is skipped);
- ``output:`` picks an element of a tuple/list (index) or dict (key) output;
- outputs with more than two axes are pooled as ``pool:`` says: ``spatial`` (default)
  averages every axis after the channel axis, i.e. global average pooling of a B×C×H×W
  feature map to B×C; ``tokens`` averages axis 1 (B×T×D -> B×D); ``flatten`` keeps all.

Security: ``factory:`` imports a Python module named in the config and calls a function
from it, which runs arbitrary code with your permissions. It is the one place a config
runs user code; treat such a config like a script. Checkpoints are read with
``torch.load(weights_only=True)``, which does not run code.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import EncoderConfig
from ..errors import InputError

log = logging.getLogger("audit")

__all__ = ["LoadedModel", "ModelEncoder", "load_model", "resolve_device", "import_factory"]


def resolve_device(name: str):
    """``auto`` -> cuda when available, then mps, else cpu; other names as given."""
    import torch
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device '{name}' asked for, but torch sees no CUDA GPU (use "
                         "device: auto)", key="encoder.device")
    return dev


@dataclass
class LoadedModel:
    """A callable model and what is known about it before it runs."""
    module: Any
    kind: str
    file: str
    device: Any
    dtype: Any
    input_shape: tuple[int | None, ...] | None = None   # static shape of an exported input
    layer_names: list[str] = field(default_factory=list)
    hookable: bool = True
    source: str = ""
    key: str = ""


def _check_file(path: Path, key: str) -> None:
    if not path.exists():
        raise InputError("model file not found", source=path, key=key)
    if path.is_dir():
        raise InputError("is a folder, expected a model file", source=path, key=key)


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else exc.__class__.__name__)[:limit]


def _param_dtype(module: Any):
    import torch
    try:
        for p in module.parameters():
            if p.is_floating_point():
                return p.dtype
    except Exception:
        pass
    return torch.float32


def load_model(enc: EncoderConfig, *, source: str | Path = "<config>",
               section: str = "encoder") -> LoadedModel:
    """Load the torchscript / export / factory model of ``enc`` onto its device; errors
    name keys under ``section`` (``encoder``, or ``generator.decoder``)."""
    import torch
    device = resolve_device(enc.device)
    kind = enc.kind
    if kind == "torchscript":
        path, key = Path(enc.torchscript), f"{section}.torchscript"
        _check_file(path, key)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = torch.jit.load(str(path), map_location=device)
        except Exception as exc:
            hint = " (a torch.export program? use encoder.export)" if path.suffix == ".pt2" \
                else ""
            raise InputError(f"not a TorchScript file{hint}: {_first_line(exc)}",
                             source=path, key=key) from None
        module.eval()
        names = [n for n, _ in module.named_modules() if n]
        return LoadedModel(module, kind, str(path), device, _param_dtype(module),
                           layer_names=names, hookable=False, source=str(path), key=key)
    if kind == "export":
        path, key = Path(enc.export), f"{section}.export"
        _check_file(path, key)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                program = torch.export.load(str(path))
        except Exception as exc:
            raise InputError(f"not a torch.export program (.pt2 written by "
                             f"torch.export.save): {_first_line(exc)}", source=path,
                             key=key) from None
        shape = _exported_input_shape(program, path, key)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if enc.layer is not None:
                    module = torch.export.unflatten(program)   # keeps submodules hookable
                else:
                    module = program.module()
                module = module.to(device)
        except Exception as exc:
            raise InputError(f"cannot prepare the exported program: {_first_line(exc)}",
                             source=path, key=key) from None
        names = [n for n, _ in module.named_modules() if n and not n.startswith("_")]
        return LoadedModel(module, kind, str(path), device, _param_dtype(module),
                           input_shape=shape, layer_names=names, source=str(path), key=key)
    if kind == "factory":
        key = f"{section}.factory"
        fn = import_factory(enc.factory, source=source, section=section)
        try:
            module = fn(**enc.factory_kwargs)
        except Exception as exc:
            raise InputError(f"the factory '{enc.factory}' raised {exc.__class__.__name__}: "
                             f"{_first_line(exc)}", source=source, key=key) from None
        if not isinstance(module, torch.nn.Module):
            raise InputError(f"the factory '{enc.factory}' returned a "
                             f"{type(module).__name__}, expected a torch.nn.Module",
                             source=source, key=key)
        file = enc.factory
        if enc.checkpoint is not None:
            _load_checkpoint(module, Path(enc.checkpoint), enc.factory, section)
            file = str(enc.checkpoint)
        module = module.eval().to(device)
        names = [n for n, _ in module.named_modules() if n]
        return LoadedModel(module, kind, file, device, _param_dtype(module),
                           layer_names=names, source=str(source), key=key)
    raise ValueError(f"not a PyTorch model kind: {kind}")


def _exported_input_shape(program: Any, path: Path, key: str) -> tuple[int | None, ...] | None:
    """The static shape of the program's one user input (None for symbolic axes)."""
    try:
        user_inputs = list(program.graph_signature.user_inputs)
    except Exception:
        return None
    if len(user_inputs) != 1:
        raise InputError(f"the exported program takes {len(user_inputs)} inputs; latent-audit "
                         "feeds it one tensor (a batch of images or table rows)",
                         source=path, key=key)
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name == user_inputs[0]:
            val = node.meta.get("val")
            if val is None or not hasattr(val, "shape"):
                return None
            return tuple(d if isinstance(d, int) else None for d in val.shape)
    return None


def import_factory(spec: str, *, source: str | Path = "<config>", section: str = "encoder"):
    """Import ``package.module:function`` or ``path/to/file.py:function``.

    This runs the module's code. For a dotted name, the config's folder is searched before
    the installed packages.
    """
    target, func = spec.rsplit(":", 1)
    key = f"{section}.factory"
    base = Path(source).parent if str(source) not in ("<config>", "") else Path.cwd()
    try:
        if target.endswith(".py"):
            path = Path(target)
            if not path.is_file():
                raise InputError("factory file not found", source=path, key=key)
            name = f"_latent_audit_factory_{abs(hash(str(path.resolve())))}"
            mod_spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(mod_spec)
            sys.modules[name] = module
            sys.path.insert(0, str(path.parent))
            try:
                mod_spec.loader.exec_module(module)
            finally:
                sys.path.remove(str(path.parent))
        else:
            sys.path.insert(0, str(base))
            try:
                module = importlib.import_module(target)
            finally:
                sys.path.remove(str(base))
    except InputError:
        raise
    except ModuleNotFoundError as exc:
        raise InputError(f"cannot import '{target}' ({_first_line(exc)}): install it or put "
                         "it next to the config", source=source, key=key) from None
    except Exception as exc:
        raise InputError(f"importing '{target}' raised {exc.__class__.__name__}: "
                         f"{_first_line(exc)}", source=source, key=key) from None
    obj: Any = module
    for part in func.split("."):
        if not hasattr(obj, part):
            raise InputError(f"'{target}' has no '{func}'", source=source, key=key)
        obj = getattr(obj, part)
    if not callable(obj):
        raise InputError(f"'{spec}' is not callable", source=source, key=key)
    return obj


def _load_checkpoint(module: Any, path: Path, factory: str, section: str = "encoder") -> None:
    import pickle

    import torch
    key = f"{section}.checkpoint"
    if not path.exists():
        raise InputError("checkpoint file not found", source=path, key=key)
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError,
            AttributeError) as exc:
        raise InputError("cannot be read with torch.load(weights_only=True) (only tensors "
                         f"and plain containers are allowed): {_first_line(exc)}",
                         source=path, key=key) from None
    if isinstance(state, dict):
        for wrapper in ("state_dict", "model_state_dict", "model"):
            if isinstance(state.get(wrapper), dict):
                state = state[wrapper]
                break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise InputError("is not a state_dict (a mapping of names to tensors, optionally "
                         "under 'state_dict')", source=path, key=key)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise InputError(f"does not fit the model built by '{factory}': "
                         f"{_state_dict_problem(str(exc))}", source=path, key=key) from None


def _state_dict_problem(msg: str) -> str:
    """One short line from load_state_dict's multi-line error."""
    import re
    parts = []
    for line in msg.splitlines():
        line = line.strip().rstrip(".")
        m = re.match(r"size mismatch for (\S+): copying a param with shape torch\.Size\((\[.*?\])\)"
                     r" from checkpoint, the shape in current model is torch\.Size\((\[.*?\])\)",
                     line)
        if m:
            parts.append(f"size mismatch for {m.group(1)}: checkpoint {m.group(2)}, "
                         f"model {m.group(3)}")
        elif line.startswith(("Missing key(s)", "Unexpected key(s)", "size mismatch")):
            parts.append(line[:160] + ("…" if len(line) > 160 else ""))
    if not parts:
        return msg.splitlines()[0][:200]
    more = f" (and {len(parts) - 2} more)" if len(parts) > 2 else ""
    return "; ".join(parts[:2]) + more


class _Stop(Exception):
    """Raised by the layer hook once it has the layer's output (skips the rest)."""


class ModelEncoder:
    """Runs a loaded model batch by batch and returns N×d float32 latents.

    The output's shape (after ``output:`` and before pooling) must stay the same from
    batch to batch; a change is an ``InputError``.
    """

    def __init__(self, loaded: LoadedModel, enc: EncoderConfig) -> None:
        self.loaded, self.enc = loaded, enc
        self.raw_shape: tuple[int, ...] | None = None
        self.batches = 0
        self._captured: list[Any] = []
        self._hook = None
        if enc.layer is not None:
            self._attach(enc.layer)

    def _attach(self, layer: str) -> None:
        ld = self.loaded
        names = ld.layer_names
        if layer not in names:
            shown = ", ".join(names[:60]) + (f", … ({len(names)} in all)"
                                             if len(names) > 60 else "")
            raise InputError(f"no layer '{layer}' in the model; available layers: "
                             f"{shown or '(none: the model has no submodules)'}",
                             source=ld.source, key="encoder.layer")
        if not ld.hookable:
            raise InputError(f"layer '{layer}' exists, but TorchScript modules cannot take "
                             "forward hooks: save the model with torch.export (encoder.export) "
                             "or use encoder.factory, or script a model that returns that "
                             "layer's output", source=ld.source, key="encoder.layer")
        sub = dict(ld.module.named_modules())[layer]

        def hook(_mod: Any, _inp: Any, out: Any) -> None:
            if not self._captured:
                self._captured.append(out)
                raise _Stop
        self._hook = sub.register_forward_hook(hook)

    @property
    def fixed_batch(self) -> int | None:
        shape = self.loaded.input_shape
        return shape[0] if shape else None

    def describe(self) -> dict[str, Any]:
        enc, ld = self.enc, self.loaded
        d: dict[str, Any] = {"kind": ld.kind, "file": ld.file, "device": str(ld.device),
                             "dtype": str(ld.dtype).removeprefix("torch.")}
        if ld.kind == "factory":
            d["factory"] = enc.factory
            if enc.factory_kwargs:
                d["factory_kwargs"] = enc.factory_kwargs
            d["checkpoint"] = str(enc.checkpoint) if enc.checkpoint else None
        for k in ("layer", "output"):
            if getattr(enc, k) is not None:
                d[k] = getattr(enc, k)
        if self.raw_shape is not None:
            d["output_shape"] = ["B", *self.raw_shape]
            d["pooling"] = _pool_note(self.raw_shape, enc.pool)
        return d

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Latents (B, d) for one batch ``x`` (B, ...) of float32 inputs."""
        import torch
        ld = self.loaded
        b = x.shape[0]
        fixed = self.fixed_batch
        pad = 0
        if fixed is not None and b != fixed:
            if b > fixed:
                raise ValueError("batch larger than the program's fixed batch")
            pad = fixed - b
            x = np.concatenate([x, np.repeat(x[-1:], pad, axis=0)])
        t = torch.from_numpy(np.ascontiguousarray(x)).to(device=ld.device, dtype=ld.dtype)
        self._captured.clear()
        try:
            with torch.inference_mode():
                try:
                    out = ld.module(t)
                except _Stop:
                    out = None
                if self.enc.layer is not None:
                    if not self._captured:
                        raise InputError(f"layer '{self.enc.layer}' did not run in the "
                                         "forward pass", source=ld.source, key="encoder.layer")
                    out = self._captured[0]
                out = _select(out, self.enc.output, source=ld.source)
        except InputError:
            raise
        except Exception as exc:
            shape = "×".join(str(s) for s in x.shape)
            raise InputError(f"the model failed on a batch of shape {shape} "
                             f"({exc.__class__.__name__}: {_first_line(exc)})",
                             source=ld.source, key=ld.key) from None
        if out.ndim == 0 or out.shape[0] != b + pad:
            raise InputError(f"the model returned shape {tuple(out.shape)} for a batch of "
                             f"{b + pad}: its first axis must be the batch",
                             source=ld.source, key=ld.key)
        raw = tuple(int(s) for s in out.shape[1:])
        self.batches += 1
        if self.raw_shape is None:
            self.raw_shape = raw
        elif raw != self.raw_shape:
            raise InputError(f"the model's output shape changed between batches: "
                             f"{_shape(self.raw_shape)} in batch 1, {_shape(raw)} in batch "
                             f"{self.batches}; latents need one shape for every input",
                             source=ld.source, key=ld.key)
        z = _pool(out.float(), self.enc.pool, source=ld.source, key=ld.key)
        return z[:b].cpu().numpy().astype(np.float32, copy=False)

    def close(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None


def _shape(raw: tuple[int, ...]) -> str:
    return "B×" + "×".join(str(s) for s in raw) if raw else "B"


def _select(out: Any, which: int | str | None, *, source: str):
    import torch
    key = "encoder.output"
    if which is None:
        if isinstance(out, torch.Tensor):
            return out
        if isinstance(out, (tuple, list)):
            shapes = ", ".join(_desc(o) for o in out[:6])
            raise InputError(f"the model returns a {type(out).__name__} of {len(out)} "
                             f"({shapes}): pick one with encoder.output: INDEX",
                             source=source, key=key)
        if isinstance(out, dict):
            raise InputError(f"the model returns a dict with keys {list(out)[:20]}: pick one "
                             "with encoder.output: KEY", source=source, key=key)
        raise InputError(f"the model returns a {type(out).__name__}, expected a tensor",
                         source=source, key=key)
    if isinstance(out, dict):
        if str(which) not in out:
            raise InputError(f"output '{which}' not in the model's dict output (keys: "
                             f"{list(out)[:20]})", source=source, key=key)
        out = out[str(which)]
    elif isinstance(out, (tuple, list)):
        if not isinstance(which, int) or not -len(out) <= which < len(out):
            raise InputError(f"output {which!r} is out of range: the model returns a "
                             f"{type(out).__name__} of {len(out)}", source=source, key=key)
        out = out[which]
    elif isinstance(which, str) and hasattr(out, which):
        out = getattr(out, which)
    else:
        raise InputError(f"output {which!r} given, but the model returns a single "
                         f"{type(out).__name__}", source=source, key=key)
    if not isinstance(out, torch.Tensor):
        raise InputError(f"output {which!r} is a {type(out).__name__}, expected a tensor",
                         source=source, key=key)
    return out


def _desc(o: Any) -> str:
    shape = getattr(o, "shape", None)
    return "×".join(str(s) for s in shape) if shape is not None else type(o).__name__


def _pool(out: Any, how: str, *, source: str, key: str):
    if out.ndim == 1:
        return out[:, None]
    if out.ndim == 2:
        return out
    if how == "flatten":
        return out.reshape(out.shape[0], -1)
    if how == "tokens":
        if out.ndim != 3:
            raise InputError(f"pool: tokens needs a B×T×D output, got {out.ndim} axes "
                             "(use pool: spatial or flatten)", source=source, key=key)
        return out.mean(dim=1)
    return out.mean(dim=tuple(range(2, out.ndim)))


def _pool_note(raw: tuple[int, ...], how: str) -> str | None:
    if len(raw) <= 1:
        return None
    full = _shape(raw)
    if how == "flatten":
        return f"flattened {full} -> B×{int(np.prod(raw))}"
    if how == "tokens":
        return f"mean over axis 1 (tokens) of {full} -> B×{raw[-1]}"
    axes = ", ".join(str(a) for a in range(2, len(raw) + 1))
    return f"global average over axes {axes} of {full} -> B×{raw[0]}"
