"""Networks that return distributions: MLP and convolutional encoders/decoders."""

from .conv import ConvDecoder, ConvEncoder
from .heads import GaussianLikelihood, bernoulli, diagonal_gaussian
from .mlp import MLPDecoder, MLPEncoder, mlp

__all__ = ["ConvDecoder", "ConvEncoder", "GaussianLikelihood", "MLPDecoder", "MLPEncoder", "bernoulli",
           "diagonal_gaussian", "mlp"]
