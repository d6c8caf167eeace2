"""What a newcomer reads first: `--help` names every check, `checks` prints YAML."""
from __future__ import annotations

import re

import yaml

from audit.checks import available_checks, build_checks


def test_help_lists_every_check(run_cli):
    code, out, _ = run_cli("--help")
    assert code == 0
    names = list(available_checks())
    generator = [n for n in names if n.startswith("generator_")]
    assert len(names) == 14 and len(generator) == 7
    for name in names:
        assert re.search(rf"^\s+{name}\s", out, re.M), name
    assert "Seven checks of the data" in out and "Seven checks of a generator" in out


def test_checks_prints_yaml_a_user_would_write(run_cli):
    code, out, _ = run_cli("checks")
    assert code == 0
    values = [ln.split("  # ")[0] for ln in out.splitlines()]
    assert not any("Settings(" in v or "=" in v for v in values)      # no Python reprs
    doc = yaml.safe_load(out)
    assert list(doc["checks"]) == list(available_checks())
    built = build_checks(doc["checks"])            # it is valid config, at the defaults
    assert all(c.settings == type(c.settings)() for c in built)
    # every setting, nested ones included, is described on its line
    for line in out.splitlines():
        if line.startswith("    ") and not line.strip().startswith("#"):
            assert "  # " in line, f"undescribed setting: {line}"
    assert "    leakage:  # " in out and "      cv: 3  # " in out
    for name in available_checks():
        assert f"\n  # {name} (" in out
