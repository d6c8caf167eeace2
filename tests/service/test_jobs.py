"""Jobs on a real server: submit, follow, store, cancel, time out, survive a restart, and the
configs a server refuses (data outside --data-root, code without --allow-code, bad keys).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.service

N = 300
#: a job that runs until it is stopped: the demo VAE trained for a very long time (a
#: built-in dataset, so it reads no file)
SLOW = {"name": "slow", "data": {"builtin": {"name": "shapes", "n": 400}},
        "encoder": {"demo_vae": {"epochs": 100000, "hidden": 16}},
        "geometry": {"map": "pca"}}
DONE = ("succeeded", "failed", "cancelled")


def make_data(root: Path) -> Path:
    """300 points in 5-D (3 blobs) and their metadata under ``root/set``."""
    folder = root / "set"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    labels = np.arange(N) % 3
    x = rng.standard_normal((3, 5))[labels] * 6 + rng.standard_normal((N, 5))
    np.save(folder / "latents.npy", x.astype(np.float32))
    pd.DataFrame({"id": [f"s{i}" for i in range(N)],
                  "shape": np.array(["a", "b", "c"])[labels]}).to_parquet(folder / "meta.parquet")
    return root


def job_config(name: str = "job", **extra) -> dict:
    return {"name": name, "seed": 0, "attributes": ["shape"],
            "data": {"latents": "set/latents.npy", "metadata": "set/meta.parquet"},
            "geometry": {"map": "pca"},
            "gates": ["outliers.fraction <= 0.5"], **extra}


def wait_job(client, job_id: int, statuses=DONE, timeout: float = 120,
             until=None) -> tuple[dict, list[dict]]:
    """Poll a job until its status is one of ``statuses`` (and ``until(doc)``); returns the
    last document and every one seen."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = client.get(f"/api/v1/jobs/{job_id}").json()
        seen.append(doc)
        if doc["status"] in statuses and (until is None or until(doc)):
            return doc, seen
        time.sleep(0.15)
    raise AssertionError(f"job {job_id} still {seen[-1]['status']} after {timeout} s: "
                         f"{seen[-1]}")


def child_pid(doc: dict) -> int | None:
    """The audit's pid, from the job's worker (``host:server_pid:index:child_pid``)."""
    parts = doc["worker"].split(":")
    return int(parts[3]) if len(parts) > 3 and parts[3].isdigit() else None


def gone(pid: int) -> bool:
    """The process has exited (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def wait_gone(pid: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gone(pid):
            return True
        time.sleep(0.1)
    return False


def submit(client, project: str, config: dict, **body):
    return client.post(f"/api/v1/projects/{project}/jobs", json={"config": config, **body})


def test_queued_jobs_survive_a_restart_and_run_end_to_end(make_server, tmp_path):
    """Jobs queued on a server that runs none (--workers 0) run after a restart with
    workers: stored as audits with their findings, progress and log followed."""
    root = make_data(tmp_path / "data")
    server = make_server(workers=0, args=("--data-root", str(root)))
    writer = server.client(server.token("line"))
    r = submit(writer, "line", job_config(), version="1.2.0", labels={"ci": "nightly"})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created == {"id": created["id"], "status": "queued",
                       "url": f"/api/v1/jobs/{created['id']}"}
    ids = [created["id"]] + [submit(writer, "line", job_config(f"job{i}")).json()["id"]
                             for i in (1, 2)]
    r = writer.delete(f"/api/v1/jobs/{ids[2]}")               # queued: cancelled at once
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    time.sleep(0.5)                                            # --workers 0 runs nothing
    queued = writer.get("/api/v1/jobs", params={"status": "queued"}).json()["jobs"]
    assert sorted(j["id"] for j in queued) == ids[:2]

    writer.close()                          # (an open connection delays a clean stop)
    server.stop()
    server.workers = 2
    server.start()
    writer = server.client(server.token("line"))
    doc, seen = wait_job(writer, ids[0])
    other, _ = wait_job(writer, ids[1])
    assert (doc["status"], other["status"]) == ("succeeded", "succeeded"), (doc, other)
    assert doc["audit_id"] != other["audit_id"]
    assert writer.get(f"/api/v1/jobs/{ids[2]}").json()["status"] == "cancelled"

    assert doc["progress"] == 1.0 and doc["stage"] == "done" and doc["error"] == ""
    progress = [d["progress"] for d in seen]
    assert progress == sorted(progress), progress           # never goes back
    assert any(0 < p < 1 for p in progress), progress       # moves with the stages
    assert {"running", "succeeded"} <= {d["status"] for d in seen}
    for line in ("loading data", f"data: {N} × 5", "check clusters ...", "latent-audit: PASS"):
        assert line in doc["log_tail"], doc["log_tail"]
    assert doc["created"] <= doc["started"] <= doc["finished"]
    assert child_pid(doc) is not None

    audits = writer.get("/api/v1/projects/line/audits").json()["audits"]
    assert sorted(a["id"] for a in audits) == sorted([doc["audit_id"], other["audit_id"]])
    audit = next(a for a in audits if a["id"] == doc["audit_id"])
    assert (audit["n"], audit["dim"], audit["source"]) == (N, 5, "job")
    assert audit["version"] == "1.2.0" and audit["verdict"] == "pass"
    full = writer.get(f"/api/v1/audits/{doc['audit_id']}").json()
    assert full["labels"] == {"ci": "nightly"} and full["findings"]["run"]["n"] == N

    queue = writer.get("/api/v1/jobs", params={"project": "line"}).json()["jobs"]
    assert [j["id"] for j in queue] == sorted(ids, reverse=True)       # newest first
    assert writer.get("/api/v1/jobs", params={"status": "queued,running"}).json()["jobs"] == []
    assert writer.delete(f"/api/v1/jobs/{doc['id']}").status_code == 409
    folder = server.home / "cache" / "jobs" / str(doc["id"])
    assert (folder / "log.txt").is_file() and not (folder / "run").exists()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_cancel_a_running_job_kills_its_audit(make_server, tmp_path):
    server = make_server()
    client = server.client(server.admin)
    job_id = submit(client, "line", SLOW).json()["id"]
    doc, _ = wait_job(client, job_id, ("running",), until=child_pid)
    pid = child_pid(doc)
    assert not gone(pid)
    r = client.delete(f"/api/v1/jobs/{job_id}")
    assert r.status_code == 202 and r.json()["status"] == "cancelling", r.text
    t0 = time.monotonic()
    doc, _ = wait_job(client, job_id, timeout=20)
    assert doc["status"] == "cancelled" and time.monotonic() - t0 < 10, doc
    assert wait_gone(pid, 5), f"audit process {pid} still running"
    assert doc["audit_id"] is None and doc["finished"]
    r = client.delete(f"/api/v1/jobs/{job_id}")
    assert r.status_code == 409 and "already finished" in r.json()["detail"]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_job_past_its_time_limit_fails(make_server):
    server = make_server(env={"LATENT_AUDIT_SERVE_JOB_TIMEOUT_S": "2"})
    client = server.client(server.admin)
    job_id = submit(client, "line", SLOW).json()["id"]
    doc, _ = wait_job(client, job_id, timeout=60)
    assert doc["status"] == "failed" and doc["error"].startswith("timed out"), doc
    assert wait_gone(child_pid(doc), 5)


def test_a_stopped_server_requeues_its_job_and_a_killed_one_fails_it(make_server):
    server = make_server(workers=1)
    client = server.client(server.admin)
    job_id = submit(client, "line", SLOW).json()["id"]
    first = child_pid(wait_job(client, job_id, ("running",), until=child_pid)[0])

    client.close()
    server.stop()                            # SIGTERM: the audit is killed, the job queued
    assert wait_gone(first, 5)
    server.workers = 0
    server.start()
    client = server.client()
    doc = client.get(f"/api/v1/jobs/{job_id}").json()
    assert doc["status"] == "queued" and doc["stage"].startswith("queued again"), doc

    client.close()
    server.stop()
    server.workers = 1
    server.start()                           # picked up again
    client = server.client()
    second = child_pid(wait_job(client, job_id, ("running",), until=child_pid)[0])
    assert second != first and not gone(second)

    server.stop(kill=True)                   # SIGKILL: no chance to clean up
    assert not gone(second)                  # the audit leads its own session: left running
    server.workers = 0
    server.start()
    client = server.client()
    doc = client.get(f"/api/v1/jobs/{job_id}").json()
    assert doc["status"] == "failed", doc
    assert doc["error"] == ("worker died: the server stopped while the job ran (restart it "
                            "with POST /api/v1/projects/line/jobs)")
    assert wait_gone(second), f"the audit the dead server left (pid {second}) still runs"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_configs_the_server_refuses(make_server, tmp_path):
    root = make_data(tmp_path / "data")
    outside = make_data(tmp_path / "outside") / "set"
    (root / "set" / "link.npy").symlink_to(outside / "latents.npy")
    (root / "linked").symlink_to(outside)
    (root / "images").mkdir()
    (root / "images" / "a.png").symlink_to(outside / "latents.npy")
    server = make_server(workers=0, args=("--data-root", str(root)))
    writer = server.client(server.token("line"))

    def refused(config, *, status=400, body=None, client=writer, project="line"):
        r = client.post(f"/api/v1/projects/{project}/jobs",
                        json=body if body is not None else {"config": config})
        assert r.status_code == status, (config, body, r.text)
        detail = r.json()["detail"]
        assert isinstance(detail, str) and "\n" not in detail, detail
        return detail

    data = job_config()["data"]
    for latents in (str(outside / "latents.npy"), "../outside/set/latents.npy",
                    "set/link.npy", "linked/latents.npy"):
        detail = refused(job_config(data={**data, "latents": latents}))
        assert detail.startswith("data.latents:") and "outside" in detail, detail
    detail = refused(job_config(data={**data, "metadata": str(outside / "meta.parquet")}))
    assert detail.startswith("data.metadata:"), detail
    detail = refused(job_config(baseline=str(outside)))
    assert detail.startswith("baseline:"), detail
    detail = refused(job_config(data={"images": "images"},
                                encoder={"torchscript": "set/latents.npy"}))
    assert detail.startswith("data.images:") and "a link to a place outside" in detail, detail
    detail = refused(job_config(data={**data, "latents": "set/missing.npy"}))
    assert "not found" in detail, detail
    factory = {"name": "code", "data": {"builtin": {"name": "shapes", "n": 100}},
               "encoder": {"factory": "mymodels.net:build"}}
    detail = refused(factory, status=403)
    assert detail == "refused: encoder.factory runs code; start the server with --allow-code"
    far = job_config(data={"images": "set"}, encoder={
        "torchscript": "set/latents.npy", "engine": "ray", "ray": {"address": "ray://x:1"}})
    assert refused(far, status=403).startswith("refused: encoder.ray.address")
    assert "datta" in refused({**job_config(), "datta": 1})
    assert "geometry.k" in refused(job_config(geometry={"k": 0}))
    assert "gates" in refused(job_config(gates=["no.such_metric <= 1"]))
    assert "config_yaml" in refused(None, body={"config_yaml": "data: [unclosed"})
    assert "exactly one" in refused(None, body={"config": job_config(), "config_yaml": "a: 1"})
    assert "labels" in refused(None, body={"config": job_config(), "labels": [1]})

    # accepted: YAML text; cache: pointed into the job's folder when it runs
    r = writer.post("/api/v1/projects/line/jobs", json={
        "config_yaml": "name: y\ncache: /tmp/elsewhere\ndata:\n  latents: set/latents.npy\n"})
    assert r.status_code == 201, r.text
    job = writer.get(r.json()["url"]).json()
    assert job["status"] == "queued" and "cache" not in job["config"]
    assert job["config"]["data"]["latents"] == str((root / "set" / "latents.npy").resolve())

    # who may submit and cancel
    other = server.client(server.token("other"))
    anonymous = server.client()
    assert anonymous.post("/api/v1/projects/line/jobs",
                          json={"config": job_config()}).status_code == 401
    assert refused(job_config(), client=other, status=403).startswith("this token may not")
    assert anonymous.delete(job["url"]).status_code == 401
    assert other.delete(job["url"]).status_code == 403
    assert writer.delete("/api/v1/jobs/999999").status_code == 404
    assert writer.get("/api/v1/jobs", params={"status": "bogus"}).status_code == 400
    admin = server.client(server.admin)
    r = admin.post("/api/v1/projects/fresh/jobs", json={"config": job_config()})
    assert r.status_code == 201 and admin.get(r.json()["url"]).json()["project"] == "fresh"
    assert "project" in refused(job_config(), client=admin, project="bad name!")

    # a server started with --allow-code accepts encoder.factory (and has no data roots)
    for c in (writer, other, anonymous, admin):
        c.close()
    server.stop()
    coder = make_server(workers=0, args=("--allow-code",))
    client = coder.client(coder.admin)
    r = client.post("/api/v1/projects/line/jobs", json={"config": factory})
    assert r.status_code == 201 and client.get(r.json()["url"]).json()["status"] == "queued"
    detail = refused(job_config(), client=client)
    assert "the server was started without --data-root" in detail, detail


def test_the_reaper_fails_jobs_whose_heartbeat_stopped(tmp_path):
    """Several servers on one database: a job whose worker (on another host) stopped
    sending heartbeats is failed, or cancelled when a cancel was asked; a live one is
    left alone."""
    from datetime import timedelta

    from audit.service.db import Job, Project, utcnow
    from audit.service.jobs import STALE_AFTER_S, JobRunner
    from audit.service.settings import ServeSettings
    from audit.service.state import open_state

    state = open_state(ServeSettings(home=tmp_path / "home", workers=0))
    old = utcnow() - timedelta(seconds=STALE_AFTER_S + 60)
    with state.session() as s:
        project = Project(name="line")
        s.add(project)
        s.flush()
        jobs = [Job(project_id=project.id, status=status, config={}, heartbeat=beat,
                    worker="elsewhere:4242:0:4343")
                for status, beat in (("running", old), ("cancelling", old),
                                     ("running", utcnow()), ("queued", None))]
        s.add_all(jobs)
        s.flush()
        ids = [j.id for j in jobs]
    assert JobRunner(state).reap() == 2
    with state.session() as s:
        rows = {j.id: j for j in s.query(Job).all()}
    assert rows[ids[0]].status == "failed"
    assert rows[ids[0]].error.startswith("worker died: no heartbeat from elsewhere:4242")
    assert rows[ids[0]].finished is not None
    assert rows[ids[1]].status == "cancelled"
    assert [rows[i].status for i in ids[2:]] == ["running", "queued"]
    state.engine.dispose()
