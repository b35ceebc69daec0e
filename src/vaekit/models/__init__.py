"""Latent-variable models: each is a prior, an encoder and a decoder that return distributions."""

from .hierarchical import HierarchicalVAE
from .m2 import M2
from .ppca import PPCA
from .sentence_vae import SentenceBatch, SentenceVAE, SentenceVAEConfig
from .vae import VAE, build_model, glorot_, set_output_bias_to_data

__all__ = ["HierarchicalVAE", "M2", "PPCA", "SentenceBatch", "SentenceVAE", "SentenceVAEConfig", "VAE", "build_model", "glorot_",
           "set_output_bias_to_data"]
