"""vaekit: deep generative models trained with variational inference.

A model is three distributions -- prior p(z), encoder q(z|x), decoder p(x|z) -- returned by
networks as ``torch.distributions`` objects; objectives are functions of them.
"""

from .config import DataConfig, EvalConfig, ModelConfig, RunConfig, TrainConfig, load_recipe
from .errors import CheckpointError, ConfigError, DataError, TrainingDiverged, VaekitError
from .models import VAE, build_model
from .objectives import Terms, elbo, iwae_bound, kl_term, log_likelihood

__version__ = "0.1.0"

__all__ = ["CheckpointError", "ConfigError", "DataConfig", "DataError", "EvalConfig", "ModelConfig",
           "RunConfig", "Terms", "TrainConfig", "TrainingDiverged", "VAE", "VaekitError", "build_model", "elbo",
           "iwae_bound", "kl_term", "load_recipe", "log_likelihood"]
