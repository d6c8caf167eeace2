"""latent-audit: audit the latent space of a trained model.

>>> import audit
>>> cfg = audit.load_config("configs/demo.yaml")    # doctest: +SKIP
>>> result = audit.run(cfg).result                  # doctest: +SKIP
"""
from .config import AuditConfig, config_from_dict, load_config
from .errors import AuditError, ConfigError, InputError

# the rest is imported on first use: the pipeline pulls in torch, scikit-learn and plotly,
# which `latent-audit --help` (and Ctrl-C during start-up) should not wait for
_LAZY = {"AuditResult": "findings", "CheckResult": "findings", "Finding": "findings",
         "encode": "pipeline", "run": "pipeline", "write_outputs": "pipeline",
         "write_store": "pipeline"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'audit' has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = ["AuditConfig", "AuditError", "AuditResult", "CheckResult", "ConfigError", "Finding",
           "InputError", "config_from_dict", "encode", "load_config", "run", "write_outputs",
           "write_store",
           "__version__"]
