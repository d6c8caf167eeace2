"""Jobs as Ray tasks (``--engine ray``, the ``ray`` extra).

Each job is one Ray task (one CPU, a fresh worker process, never retried) that runs the
same ``latent-audit run CONFIG --out DIR`` child process a local job runs, on whichever
node Ray picks. The server's worker thread still owns the job: it polls the task's
``ObjectRef``, writes the heartbeat, and cancels with ``ray.cancel`` (the task kills its
audit; a task that does not stop within seconds is force-cancelled).

Where the run folder ends up depends on what the node can see:

- the server's job folder (same machine, or a shared file system): the audit writes
  there and its log is followed live;
- otherwise, with a remote artifact store (``--artifacts s3://...``): the task uploads the
  run folder under ``jobs/<id>/`` and the server stores it from there;
- otherwise the run folder comes back as a tar archive through Ray's object store.

The data roots must be visible at the same paths on every node (a shared mount).
"""
from __future__ import annotations

import io
import logging
import os
import shutil
import signal
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .settings import ServeSettings

__all__ = ["EXTRA_MISSING", "RayEngine", "RayJob", "check_engine", "require_ray",
           "run_job_task"]

log = logging.getLogger("audit")

EXTRA_MISSING = "--engine ray needs the 'ray' extra: pip install 'latent-audit[ray]'"
_LOG_BYTES = 256 * 1024


def require_ray():
    """The ``ray`` module, or a ``ConfigError`` naming the extra (exit 2 at server start)."""
    try:
        import ray
    except ImportError:
        raise ConfigError(EXTRA_MISSING, source="--engine", key="serve.engine") from None
    return ray


def check_engine(settings: ServeSettings) -> None:
    """Refuse at start a server whose engine cannot run here."""
    if settings.engine == "ray":
        require_ray()


# ---- on the Ray node ----------------------------------------------------------------

def _pack(folder: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(folder, arcname="run")
    return buf.getvalue()


def run_job_task(job_id: int, job_dir: str, config_text: str,
                 store_url: str | None) -> dict[str, Any]:
    """The body of a job's Ray task: run the audit, hand back where its outputs are."""
    import yaml

    from .audit_process import HOST, run_audit
    folder = Path(job_dir)
    config_file = folder / "config.yaml"
    shared = (folder.is_dir() and os.access(folder, os.W_OK) and config_file.is_file()
              and config_file.read_text(encoding="utf-8") == config_text)
    work = folder if shared else Path(tempfile.mkdtemp(prefix=f"latent-audit-job-{job_id}-"))
    try:
        if not shared:                     # this node's own folder, and its own cache
            config = yaml.safe_load(config_text)
            if config.get("cache") is not False:
                config["cache"] = str(work / "cache")
            (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False),
                                              encoding="utf-8")
        code = run_audit(work / "config.yaml", work / "run", work / "log.txt", cwd=work,
                         pid_file=work / "child.pid")
        out: dict[str, Any] = {"code": code, "host": HOST}
        if shared:
            return {**out, "where": "folder", "path": str(work / "run")}
        with open(work / "log.txt", "rb") as f:
            f.seek(max(os.path.getsize(work / "log.txt") - _LOG_BYTES, 0))
            out["log"] = f.read().decode("utf-8", "replace")
        run = work / "run"
        if not run.is_dir():
            return {**out, "where": "none"}
        if store_url is not None:
            from .store import ArtifactStore
            store, prefix = ArtifactStore(store_url), f"jobs/{job_id}/run"
            store.delete(prefix)
            for path in sorted(p for p in run.rglob("*") if p.is_file()):
                rel = path.relative_to(run).as_posix()
                if not rel.startswith("."):
                    store.put_file(f"{prefix}/{rel}", path)
            return {**out, "where": "store", "prefix": prefix}
        return {**out, "where": "tar", "tar": _pack(run)}
    finally:
        if not shared:
            shutil.rmtree(work, ignore_errors=True)


# ---- on the server ------------------------------------------------------------------

class RayEngine:
    """Submits jobs to Ray; joins ``settings.ray_address`` or starts a small local Ray
    (one CPU, no dashboard) on first use."""

    def __init__(self, state: Any) -> None:
        self.state = state
        self.settings: ServeSettings = state.settings
        self._lock = threading.Lock()
        self._remote: Any = None
        self._started = False

    def _ray(self):
        ray = require_ray()
        with self._lock:
            if self._remote is None:
                if not ray.is_initialized():
                    if self.settings.ray_address:
                        ray.init(address=self.settings.ray_address, ignore_reinit_error=True,
                                 log_to_driver=False)
                    else:
                        ray.init(num_cpus=1, include_dashboard=False,
                                 ignore_reinit_error=True, log_to_driver=False)
                    self._started = True
                self._remote = ray.remote(num_cpus=1, max_calls=1,
                                          max_retries=0)(run_job_task)
        return ray

    def launch(self, job_id: int, job_dir: Path, config_text: str) -> RayJob:
        ray = self._ray()
        store = self.state.store
        ref = self._remote.remote(job_id, str(Path(job_dir).resolve()), config_text,
                                  None if store.local else store.url)
        return RayJob(ray, ref, Path(job_dir), self.state)

    def shutdown(self) -> None:
        if self._started:
            try:
                require_ray().shutdown()
            except Exception:  # noqa: BLE001 - stopping anyway
                log.exception("jobs: ray.shutdown failed")


class RayJob:
    """One job's Ray task, seen from the server (the interface of ``AuditProcess``)."""

    def __init__(self, ray: Any, ref: Any, job_dir: Path, state: Any) -> None:
        self.ray, self.ref, self.job_dir, self.state = ray, ref, job_dir, state
        self.pid: int | None = None
        self.error: str | None = None
        self._result: dict[str, Any] | None = None

    def _find_pid(self) -> None:
        from .audit_process import HOST
        if self.pid is None:
            try:
                host, pid = (self.job_dir / "child.pid").read_text().split()
            except (OSError, ValueError):
                return
            if host == HOST and pid.isdigit():
                self.pid = int(pid)

    def poll(self) -> int | None:
        self._find_pid()
        if self._result is None:
            ready, _ = self.ray.wait([self.ref], timeout=0)
            if not ready:
                return None
            try:
                self._result = self.ray.get(self.ref)
            except self.ray.exceptions.TaskCancelledError:
                self._result = {"code": -int(signal.SIGTERM)}
            except Exception as exc:  # noqa: BLE001 - the task or its node failed
                first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[-1]
                self.error = f"the Ray task failed: {first[:300]}"
                self._result = {"code": 4}
            if self._result.get("log"):             # the node's log, now that it is done
                with open(self.job_dir / "log.txt", "a", encoding="utf-8") as f:
                    f.write(self._result["log"])
        return int(self._result["code"])

    def kill(self, grace: float = 3.0) -> None:
        """Cancel the task (it kills its audit); force it after ``grace`` seconds."""
        from .audit_process import kill_group as _kill_group, proc_cmdline as _proc_cmdline
        if self._result is None:
            try:
                self.ray.cancel(self.ref)
            except Exception:  # noqa: BLE001 - already finished
                pass
            deadline = time.monotonic() + grace + 2.0
            while time.monotonic() < deadline and not self.ray.wait([self.ref], timeout=0)[0]:
                time.sleep(0.1)
            if not self.ray.wait([self.ref], timeout=0)[0]:
                try:
                    self.ray.cancel(self.ref, force=True)
                except Exception:  # noqa: BLE001
                    pass
        self._find_pid()
        if self.pid is not None:          # a force-cancelled task leaves its audit behind
            cmd = _proc_cmdline(self.pid)
            if cmd is not None and str(self.job_dir) in cmd:
                _kill_group(self.pid, signal.SIGKILL)

    def result_folder(self) -> Path:
        """A local folder holding the run's outputs."""
        result = self._result or {}
        where = result.get("where")
        if where == "folder":
            return Path(result["path"])
        target = self.job_dir / "run"
        if where == "store":
            shutil.rmtree(target, ignore_errors=True)
            store = self.state.store
            prefix = result["prefix"]
            for key in store.keys(prefix):
                out = target / key[len(prefix) + 1:]
                out.parent.mkdir(parents=True, exist_ok=True)
                with store.open(key) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, length=1 << 20)
            return target
        if where == "tar":
            shutil.rmtree(target, ignore_errors=True)
            with tarfile.open(fileobj=io.BytesIO(result["tar"]), mode="r:gz") as tar:
                tar.extractall(self.job_dir, filter="data")
            return target
        return target

    def cleanup(self) -> None:
        result = self._result or {}
        if result.get("where") == "store":
            try:
                self.state.store.delete(result["prefix"])
            except Exception:  # noqa: BLE001 - a leftover blob, not a failed job
                log.exception("jobs: could not delete %s from the store", result["prefix"])
