"""Data sources: precomputed latents and metadata, latent stores, inputs for an encoder
(image folders, tables, texts), and built-in datasets with known truth."""
from .arrays import load_latent_set, read_latents, read_metadata
from .builtin import InputSet, load_builtin
from .inputs import open_inputs
from .metadata import align_metadata
from .store import load_store_set, read_store, write_store

__all__ = ["InputSet", "align_metadata", "load_builtin", "load_latent_set", "load_store_set",
           "open_inputs", "read_latents", "read_metadata", "read_store", "write_store"]
