"""One audit in a child process: ``latent-audit run CONFIG --out RUN`` in its own session.

Shared by the local workers (:mod:`.jobs`) and the Ray tasks (:mod:`.ray_jobs`): a cancel
kills the audit's whole process group, and a crashing audit never takes a worker down.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["HOST", "KILL_GRACE_S", "AuditProcess", "alive", "kill_group", "proc_cmdline",
           "run_audit"]

log = logging.getLogger("audit")

#: seconds a cancelled audit gets to exit after SIGTERM before SIGKILL
KILL_GRACE_S = 3.0
#: environment variables a job's child process does not inherit (the server's own secrets)
_PRIVATE_ENV = ("LATENT_AUDIT_SERVE_", "LATENT_AUDIT_TOKEN")
HOST = socket.gethostname().replace(":", "_")


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_PRIVATE_ENV)}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class AuditProcess:
    """``latent-audit run CONFIG --out RUN`` in a child process that leads its own session
    (so a cancel kills the audit and anything it started), output appended to ``log``."""

    def __init__(self, config: Path, run_dir: Path, log_path: Path, *, cwd: Path) -> None:
        self.run_dir = run_dir
        self.error: str | None = None
        with open(log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "audit", "run", str(config), "--out", str(run_dir)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
                env=_child_env(), start_new_session=True)
        self.pid: int | None = self.proc.pid

    def poll(self) -> int | None:
        return self.proc.poll()

    def kill(self, grace: float = KILL_GRACE_S) -> None:
        """SIGTERM to the audit's process group, SIGKILL after ``grace`` seconds."""
        if self.proc.poll() is None:
            kill_group(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        kill_group(self.proc.pid, signal.SIGKILL)      # and whatever it left running
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:               # pragma: no cover - unkillable
            log.error("job process %d did not exit after SIGKILL", self.proc.pid)

    def result_folder(self) -> Path:
        return self.run_dir

    def cleanup(self) -> None:
        pass


def run_audit(config: Path, run_dir: Path, log_path: Path, *, cwd: Path,
              pid_file: Path | None = None) -> int:
    """Run an audit to its end and return its exit code; an interrupt (a Ray cancel
    raises ``KeyboardInterrupt`` in the task) kills it first. Used inside Ray tasks."""
    proc = AuditProcess(config, run_dir, log_path, cwd=cwd)
    if pid_file is not None:
        pid_file.write_text(f"{HOST} {proc.pid}\n")
    try:
        while (code := proc.poll()) is None:
            time.sleep(0.2)
        return code
    except BaseException:
        proc.kill(grace=1.0)
        raise


def proc_cmdline(pid: int) -> str | None:
    """A process's command line on Linux; None where it cannot be read."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            "utf-8", "replace")
    except OSError:
        return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
