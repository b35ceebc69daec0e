"""Latent-variable models: each is a prior, an encoder and a decoder that return distributions."""

from .ppca import PPCA
from .vae import VAE, build_model

__all__ = ["PPCA", "VAE", "build_model"]
