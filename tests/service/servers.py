"""Real servers for the service tests: uvicorn in a child process, SQLite or PostgreSQL.

``LiveServer`` is one ``latent-audit serve`` on 127.0.0.1 and a free port, with its own
home; ``PostgresCluster`` is a throwaway PostgreSQL started from Debian's binaries
(``initdb``/``pg_ctl``, as the ``postgres`` user when the tests run as root).
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``latent-audit ARGS`` in a child process (output captured)."""
    return subprocess.run([sys.executable, "-m", "audit", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, **(env or {})})


class LiveServer:
    """``latent-audit serve`` in a child process. ``admin`` is an admin token."""

    def __init__(self, home: Path, *, database: str | None = None, workers: int = 1,
                 args: tuple[str, ...] = (), env: dict | None = None) -> None:
        self.home = Path(home)
        self.database = database
        self.workers = workers
        self.args = tuple(args)
        self.env = env or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = self.home.parent / f"{self.home.name}-server.log"
        base = ["--home", str(self.home)] + (["--database", database] if database else [])
        out = cli("serve", "token", "create", "--admin", *base, env=self.env)
        assert out.returncode == 0, out.stderr
        self.admin = out.stdout.strip().splitlines()[-1]

    def token(self, project: str) -> str:
        base = ["--home", str(self.home)] + (["--database", self.database]
                                             if self.database else [])
        out = cli("serve", "token", "create", "--project", project, *base, env=self.env)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip().splitlines()[-1]

    def start(self, timeout: float = 60) -> "LiveServer":
        cmd = [sys.executable, "-m", "audit", "serve", "--home", str(self.home),
               "--host", "127.0.0.1", "--port", str(self.port),
               "--workers", str(self.workers), *self.args]
        if self.database:
            cmd += ["--database", self.database]
        self._logf = open(self.log, "ab")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self._logf, stderr=subprocess.STDOUT,
                                     env={**os.environ, **self.env}, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}:\n"
                                   + self.log.read_text(errors="replace")[-4000:])
            try:
                if httpx.get(self.url + "/api/v1/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not answer /api/v1/health:\n"
                           + self.log.read_text(errors="replace")[-4000:])

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server (SIGTERM, or SIGKILL of its whole process group with ``kill``)."""
        if self.proc is None:
            return
        import signal
        if self.proc.poll() is None:
            if kill:
                os.killpg(self.proc.pid, signal.SIGKILL)
            else:
                self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        self.proc = None
        self._logf.close()

    def restart(self) -> "LiveServer":
        self.stop()
        return self.start()

    def client(self, token: str | None = None, timeout: float = 120) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


class PostgresCluster:
    """A PostgreSQL server of our own in ``folder`` on a free local port (trust auth)."""

    user = "latentaudit"

    def __init__(self, folder: Path | None = None) -> None:
        import tempfile
        self.bin = _pg_bin()
        # not under pytest's tmp (mode 700, root's): the 'postgres' user must reach it
        self.folder = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="latent-audit-pg-"))
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0

    @staticmethod
    def available() -> str | None:
        """None when a cluster can be started here, else why not."""
        if _pg_bin() is None:
            return ("PostgreSQL is not installed (Debian: apt-get install postgresql; "
                    "`make test` and .ci/run install it)")
        if os.geteuid() == 0 and shutil.which("runuser") is None:
            return "running as root without runuser: cannot start PostgreSQL as 'postgres'"
        return None

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")

    def start(self) -> "PostgresCluster":
        self.folder.mkdir(parents=True, exist_ok=True)
        data = self.folder / "data"
        if self.as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(data), "-A", "trust", "-U", self.user,
                  "--no-sync", "-E", "UTF8")
        self._run(str(self.bin / "pg_ctl"), "-D", str(data), "-w", "-t", "60",
                  "-l", str(self.folder / "postgres.log"),
                  "-o", f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                        "-c fsync=off -c max_connections=200", "start")
        return self

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m",
                      "immediate", "stop")
        except RuntimeError:
            pass
        shutil.rmtree(self.folder, ignore_errors=True)

    def new_database(self) -> str:
        """A fresh, empty database; returns its URL."""
        import psycopg
        name = "la_" + uuid.uuid4().hex[:12]
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={self.user} "
                             "dbname=postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{name}"
