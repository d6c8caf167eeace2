"""Data sources: precomputed latents and metadata, and built-in datasets with known truth."""
from .arrays import load_latent_set, read_latents, read_metadata
from .builtin import InputSet, load_builtin

__all__ = ["InputSet", "load_builtin", "load_latent_set", "read_latents", "read_metadata"]
