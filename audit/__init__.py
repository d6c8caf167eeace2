"""latent-audit: audit the latent space of a trained model.

>>> import audit
>>> cfg = audit.load_config("configs/demo.yaml")    # doctest: +SKIP
>>> result = audit.run(cfg).result                  # doctest: +SKIP
"""
from .config import AuditConfig, config_from_dict, load_config
from .errors import AuditError, ConfigError, InputError
from .findings import AuditResult, CheckResult, Finding
from .pipeline import encode, run, write_outputs, write_store

__version__ = "0.1.0"

__all__ = ["AuditConfig", "AuditError", "AuditResult", "CheckResult", "ConfigError", "Finding",
           "InputError", "config_from_dict", "encode", "load_config", "run", "write_outputs",
           "write_store",
           "__version__"]
