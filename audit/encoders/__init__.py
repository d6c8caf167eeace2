"""Encoders: turning inputs into latents."""
from .vae import TrainedVAE, train_vae

__all__ = ["TrainedVAE", "train_vae"]
