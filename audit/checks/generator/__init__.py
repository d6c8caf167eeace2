"""Generator audits: what a decoder produces across its prior (``generator:`` in the config).

One module per question, each a check of its own (``generator_fidelity``, ``generator_modes``,
``generator_holes``, ``generator_memorization``, ``generator_attributes``,
``generator_editing``, ``generator_smoothness``); every one reads ``ctx.generated`` and
skips itself when the config has no ``generator:``. Every module here is imported, so a new
generator check is one new file.
"""
import importlib
import pkgutil

# the order they run and appear in the report: what comes out, what is missing, where in
# the prior it goes wrong, copies, then attributes, edits and smoothness; any others after
_ORDER = ["fidelity", "modes", "holes", "memorization", "attributes", "editing", "smoothness"]
_found = [m.name for m in pkgutil.iter_modules(__path__)]
for _mod in [m for m in _ORDER if m in _found] + sorted(set(_found) - set(_ORDER)):
    if not _mod.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod}")
