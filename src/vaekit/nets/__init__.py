"""Networks that return distributions: MLP and convolutional encoders/decoders."""

from .conv import ConvDecoder, ConvEncoder
from .heads import GaussianLikelihood, LatentSpec, bernoulli, diagonal_gaussian
from .mlp import MLPDecoder, MLPEncoder, mlp

__all__ = ["ConvDecoder", "ConvEncoder", "GaussianLikelihood", "LatentSpec", "MLPDecoder", "MLPEncoder", "bernoulli",
           "diagonal_gaussian", "mlp"]
