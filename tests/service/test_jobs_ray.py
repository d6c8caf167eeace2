"""A job run as a Ray task (``serve --engine ray``, a local one-CPU Ray started by the server)."""
from __future__ import annotations

import pytest

from .test_jobs import N, job_config, make_data, submit, wait_job

pytestmark = pytest.mark.service


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_job_runs_as_a_ray_task(make_server, tmp_path):
    try:
        import ray  # noqa: F401
    except ImportError:
        pytest.skip("the 'ray' extra is not installed (pip install 'latent-audit[ray]')")
    root = make_data(tmp_path / "data")
    server = make_server(args=("--data-root", str(root), "--engine", "ray"))
    client = server.client(server.admin)
    r = submit(client, "line", job_config("on-ray"), version="ray-1")
    assert r.status_code == 201, r.text
    doc, _ = wait_job(client, r.json()["id"], timeout=240)
    assert doc["status"] == "succeeded", (doc, server.log_text()[-3000:])
    assert doc["progress"] == 1.0 and doc["audit_id"] is not None
    assert "check clusters ..." in doc["log_tail"] and "latent-audit: PASS" in doc["log_tail"]
    assert doc["worker"].count(":") == 3          # the audit's pid, reported by the task
    audit = client.get(f"/api/v1/audits/{doc['audit_id']}").json()
    assert audit["version"] == "ray-1" and audit["source"] == "job"
    assert audit["findings"]["run"]["n"] == N


def test_a_ray_node_without_the_servers_folder_hands_the_run_back(tmp_path):
    """On a node that cannot see the server's job folder, the task uploads the run folder
    to a remote artifact store (here a folder standing in for s3://) or returns it as a tar
    archive; the server gets the same files back either way."""
    import yaml

    from audit.service.job_config import validate_job_config
    from audit.service.ray_jobs import RayJob, _pack, run_job_task
    from audit.service.settings import ServeSettings
    from audit.service.store import ArtifactStore

    root = make_data(tmp_path / "data")
    config = validate_job_config(job_config("far"), ServeSettings(data_roots=[root]))
    store_url = str(tmp_path / "bucket")
    out = run_job_task(7, str(tmp_path / "not-on-this-node"), yaml.safe_dump(config),
                       store_url)
    assert out["code"] == 0 and out["where"] == "store" and "latent-audit: PASS" in out["log"]

    class State:                      # what RayJob reads of the server's state
        store = ArtifactStore(store_url)

    job_dir = tmp_path / "job"
    job_dir.mkdir()
    handle = RayJob(None, None, job_dir, State())
    handle._result = out
    run = handle.result_folder()
    names = sorted(p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file())
    assert {"findings.json", "report.html", "summary.md"} <= set(names)
    handle.cleanup()
    assert list(State.store.keys("jobs/7")) == []

    other = tmp_path / "job2"
    other.mkdir()
    handle = RayJob(None, None, other, State())
    handle._result = {"code": 0, "where": "tar", "tar": _pack(run)}
    again = handle.result_folder()
    assert sorted(p.relative_to(again).as_posix() for p in again.rglob("*")
                  if p.is_file()) == names
    assert (again / "findings.json").read_bytes() == (run / "findings.json").read_bytes()


def test_engine_ray_without_ray_is_refused_at_start(tmp_path):
    """``serve --engine ray`` where ``import ray`` fails: exit 2 naming the extra."""
    from .servers import cli, free_port

    hide = tmp_path / "no-ray"
    hide.mkdir()
    (hide / "ray.py").write_text("raise ImportError('No module named ray')\n")
    out = cli("serve", "--home", str(tmp_path / "home"), "--port", str(free_port()),
              "--engine", "ray", env={"PYTHONPATH": str(hide)}, timeout=30)
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    assert "--engine ray needs the 'ray' extra" in out.stderr
