"""Server settings: defaults, the precedence flags > environment > serve: YAML, and errors
that name the key and where it came from."""
from __future__ import annotations

from pathlib import Path

import pytest

from audit.errors import ConfigError
from audit.service.settings import ServeSettings, resolve_settings


def test_defaults_are_zero_setup(tmp_path):
    s = resolve_settings({"home": tmp_path}, env={})
    assert s.port == 8765 and s.host == "127.0.0.1" and s.workers == 1
    assert s.database_url == f"sqlite:///{(tmp_path / 'latent-audit.db').resolve()}"
    assert s.artifacts_url == str((tmp_path / "artifacts").resolve())
    assert s.reads_open and not s.allow_code and s.engine == "local"
    assert s.max_upload_bytes == 2048 * 1024 * 1024


def test_precedence_flags_over_env_over_yaml(tmp_path):
    cfg = tmp_path / "team.yaml"
    cfg.write_text("serve:\n  port: 9000\n  workers: 3\n  database: sqlite:///y.db\n"
                   "  data_roots: [/data/a]\n")
    env = {"LATENT_AUDIT_SERVE_WORKERS": "5", "LATENT_AUDIT_SERVE_DATA_ROOTS": "/d1:/d2"}
    s = resolve_settings({"port": 9100, "workers": None, "data_roots": ()}, config=cfg,
                         env=env)
    assert s.port == 9100                        # flag
    assert s.workers == 5                        # env over yaml; an unset flag is no flag
    assert s.database == "sqlite:///y.db"        # yaml
    assert s.data_roots == [Path("/d1"), Path("/d2")]


def test_reads_close_off_loopback():
    assert ServeSettings(host="0.0.0.0").reads_open is False
    assert ServeSettings(host="0.0.0.0", public_read=True).reads_open is True
    assert ServeSettings(host="::1").reads_open is True


@pytest.mark.parametrize("where", ["yaml", "env", "flag"])
def test_a_bad_value_names_key_and_origin(tmp_path, where):
    cfg = tmp_path / "s.yaml"
    cfg.write_text("serve:\n  workers: many\n" if where == "yaml" else "serve: {}\n")
    env = {"LATENT_AUDIT_SERVE_WORKERS": "many"} if where == "env" else {}
    flags = {"workers": -3} if where == "flag" else {}
    with pytest.raises(ConfigError) as err:
        resolve_settings(flags, config=cfg, env=env)
    msg = str(err.value)
    assert "serve.workers" in msg
    assert {"yaml": str(cfg), "env": "LATENT_AUDIT_SERVE_WORKERS", "flag": "--workers"}[where] \
        in msg


def test_unknown_yaml_key_and_unreadable_file(tmp_path):
    cfg = tmp_path / "s.yaml"
    cfg.write_text("serve:\n  prot: 1\n")
    with pytest.raises(ConfigError, match=r"serve\.prot"):
        resolve_settings({}, config=cfg, env={})
    cfg.write_text("serve: [1, 2]\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        resolve_settings({}, config=cfg, env={})
    with pytest.raises(ConfigError, match="unreadable"):
        resolve_settings({}, config=tmp_path / "missing.yaml", env={})
