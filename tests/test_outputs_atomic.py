"""Issue 12 item 11: --out is replaced as one unit, stale staging folders are cleaned, and
a second concurrent run into the same --out is refused (exit 2)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from audit import io as aio
from audit.errors import InputError

NAMES = ["findings.json", "summary.md", "report.html"]


def _write(out: Path, tag: str) -> None:
    with aio.atomic_outputs(out) as stage:
        for n in NAMES:
            (stage / n).write_text(tag)
        (stage / "store").mkdir()
        (stage / "store" / "manifest.json").write_text(tag)


def _state(out: Path) -> set[str]:
    """The set of tags in ``out`` (one tag = not a mix), and the file set must be whole."""
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == sorted(NAMES + ["store/manifest.json"]), files
    return {(out / f).read_text() for f in files}


def _leftovers(parent: Path, name: str) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name != name)


def test_a_run_replaces_the_folder_whole_and_leaves_nothing_beside_it(tmp_path):
    out = tmp_path / "out"
    _write(out, "old")
    with aio.atomic_outputs(out) as stage:          # the new run writes fewer files
        (stage / "findings.json").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["findings.json"]
    assert _leftovers(tmp_path, "out") == []        # no staging, old or lock file left


@pytest.mark.parametrize("step", ["body", "exchange", "rename-in", "cleanup"])
def test_a_failure_at_any_step_leaves_old_or_new_never_a_mix(tmp_path, monkeypatch, step):
    out = tmp_path / "out"
    _write(out, "old")
    real_rename = os.rename

    class Boom(BaseException):
        pass

    if step == "exchange":                           # the one-step swap fails
        monkeypatch.setattr(aio, "_exchange", lambda a, b: (_ for _ in ()).throw(Boom()))
    elif step == "rename-in":                        # fallback: fail between two renames
        monkeypatch.setattr(aio, "_exchange", lambda a, b: False)

        def rename(a, b):
            if ".staging-" in str(a):
                raise Boom()
            return real_rename(a, b)
        monkeypatch.setattr(aio.os, "rename", rename)
    elif step == "cleanup":                          # killed while removing the old folder
        monkeypatch.setattr(aio.shutil, "rmtree",
                            lambda *a, **k: (_ for _ in ()).throw(Boom()))
    with pytest.raises(Boom):
        with aio.atomic_outputs(out) as stage:
            for n in NAMES[:2]:
                (stage / n).write_text("new")
            if step == "body":
                raise Boom()
            (stage / NAMES[2]).write_text("new")
            (stage / "store").mkdir()
            (stage / "store" / "manifest.json").write_text("new")
    monkeypatch.undo()
    assert _state(out) == ({"new"} if step == "cleanup" else {"old"})
    _write(out, "next")                              # the next run cleans what is left
    assert _state(out) == {"next"}
    assert _leftovers(tmp_path, "out") == []


CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from audit.io import atomic_outputs
    out, tag = Path(sys.argv[1]), sys.argv[2]
    print("go", flush=True)
    with atomic_outputs(out) as stage:
        for i, n in enumerate(["findings.json", "summary.md", "report.html"]):
            (stage / n).write_text(tag)
            time.sleep(0.01)
        (stage / "store").mkdir()
        (stage / "store" / "manifest.json").write_text(tag)
    """)


def test_sigkill_at_any_moment_leaves_old_or_new(tmp_path):
    out = tmp_path / "out"
    _write(out, "old")
    seen = set()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for i, delay in enumerate(np.linspace(0.0, 0.08, 12)):
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(out), f"run{i}"],
                                stdout=subprocess.PIPE, env=env)
        assert proc.stdout.readline().strip() == b"go"
        time.sleep(float(delay))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        tags = _state(out)                          # never a mix of two runs
        assert len(tags) == 1, tags
        seen |= tags
    # a later run removes every staging/old folder the killed runs left, and the lock
    _write(out, "final")
    assert _state(out) == {"final"}
    assert _leftovers(tmp_path, "out") == []


def test_stale_staging_folders_are_cleaned_but_not_other_files(tmp_path):
    out = tmp_path / "out"
    _write(out, "old")
    for name in [".out.staging-abcd1234", ".out.old-x_yz9876"]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "findings.json").write_text("stale")
    keep = [".out.staging-keep", ".other.staging-abcd1234", "out.staging-abcd1234"]
    for name in keep:                               # not ours: a different name or shape
        (tmp_path / name).mkdir()
    _write(out, "new")
    assert _leftovers(tmp_path, "out") == sorted(keep)


def test_a_killed_swap_between_renames_is_put_back(tmp_path):
    out = tmp_path / "out"
    _write(out, "old")
    os.rename(out, tmp_path / ".out.old-abcd1234")   # the state a kill there leaves
    with pytest.raises(RuntimeError):
        with aio.atomic_outputs(out):
            raise RuntimeError("failed run")
    assert _state(out) == {"old"}


def test_a_folder_with_foreign_files_is_refused_untouched(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match=r"mine, key '--out': holds files latent-audit did "
                                         r"not write \(notes.txt\)"):
        _write(out, "new")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert _leftovers(tmp_path, "mine") == []


def test_a_previous_runs_per_sample_table_is_its_own_output(tmp_path):
    """per_sample.parquet (every per-sample column, issue 13) is written by a run, so a
    folder holding one is replaced like findings.json, not refused as foreign."""
    assert "per_sample.parquet" in aio.OWN_NAMES
    out = tmp_path / "mine"
    out.mkdir()
    (out / "findings.json").write_text("old")
    (out / "per_sample.parquet").write_text("old")
    _write(out, "new")                  # this run writes no table: the old one is gone
    assert (out / "findings.json").read_text() == "new"
    assert not (out / "per_sample.parquet").exists()


HOLD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from audit.io import out_lock
    with out_lock(Path(sys.argv[1])):
        print("held", flush=True)
        sys.stdin.readline()
    """)


def test_a_second_concurrent_run_into_the_same_out_exits_2(tmp_path, write_case, run_cli):
    rng = np.random.default_rng(0)
    cfg = write_case(rng.standard_normal((120, 4)).astype(np.float32))
    out = tmp_path / "out"
    assert run_cli("run", cfg, "--out", out, "-q")[0] == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, env=env)
    try:
        assert holder.stdout.readline().strip() == b"held"
        code, _, err = run_cli("run", cfg, "--out", out, "-q")
    finally:
        holder.communicate(b"\n", timeout=30)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert f"{out}, key '--out': another latent-audit run is writing to this folder" \
        in lines[0], lines[0]
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    assert run_cli("run", cfg, "--out", out, "-q")[0] == 0          # free again after
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")]
