"""Generator audits: what a decoder produces across its prior (``generator:`` in the config).

One module per question, each a check of its own (``generator_fidelity``, ``generator_modes``,
``generator_holes``, ``generator_memorization``, ``generator_attributes``,
``generator_editing``, ``generator_smoothness``); every one reads ``ctx.generated`` and
skips itself when the config has no ``generator:``. Every module here is imported, so a new
generator check is one new file.
"""
import importlib
import pkgutil

for _mod in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if not _mod.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod}")
