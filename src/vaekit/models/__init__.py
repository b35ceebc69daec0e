"""Latent-variable models: each is a prior, an encoder and a decoder that return distributions."""

from .vae import VAE, build_model

__all__ = ["VAE", "build_model"]
