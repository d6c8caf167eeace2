"""Every example in the docstrings of the pure layers runs and gives what it shows.

Doctests used to run in three metric modules only (issue 13, item 8): this collects every
module of ``audit.metrics`` and ``audit.geometry`` plus the small pure helpers.
"""
from __future__ import annotations

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import audit.compare
import audit.geometry
import audit.metrics

_PACKAGES = (audit.metrics, audit.geometry, audit.compare)
_MODULES = ["audit.columns", "audit.streams", "audit.formatting", "audit.decoding"] + sorted(
    m.name for pkg in _PACKAGES
    for m in pkgutil.walk_packages(pkg.__path__, prefix=pkg.__name__ + "."))


def test_every_pure_module_is_collected():
    assert {"audit.metrics._coverage", "audit.metrics._probes", "audit.geometry.space"} \
        <= set(_MODULES)


@pytest.mark.parametrize("name", _MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    np.set_printoptions(legacy=False)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                             verbose=False)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"
