"""Run configuration: frozen dataclasses with a comment on every default.

A recipe (``recipes/*.toml``) fills these with sections ``[data]``, ``[model]``, ``[train]`` and
``[eval]``; command-line overrides ``section.key=value`` are applied on top. The resolved config
is saved as plain data in every run directory and checkpoint.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .devices import check_device_name


@dataclass(frozen=True)
class DataConfig:
    name: str = "mnist"              # built-in data set: mnist | fashion-mnist (images) | ptb | brown (text)
    path: str = ""                   # or your own data: IDX directory, .npy/.npz file, image folder, or a
                                     # .txt file of sentences (one per line, UTF-8)
    binarize: str = "dynamic"        # dynamic (resample every draw, Burda et al.) | none (use intensities)
    validation: int = 10000          # images held out of the training set for validation
    limit: int = 0                   # use only the first N training images (0 = all); for smoke tests
    eval_limit: int = 0              # use only the first N validation/test images (0 = all)
    split_seed: int = 0              # seed of the train/validation split
    min_count: int = 1               # text: words seen fewer times in training become <unk>
    max_vocab: int = 0               # text: keep at most this many words, specials included (0 = all)
    max_length: int = 0              # text: truncate sentences to this many words (0 = keep; counted)
    labelled: int = 0                # semi-supervised (model.arch = m2): labelled training images, the same
                                     # number of each class (e.g. 100); the rest are used without labels
    label_seed: int = 0              # which labelled images are drawn (report a spread over several seeds)
    condition: str = "quadrants"     # cvae / cvae-nn: what c is: quadrants (the given quadrants, below) | label
                                     # (the image's class, one-hot, model.categories classes: generation by digit)
    quadrants: int = 0               # cvae / cvae-nn: MNIST quadrant completion with 1, 2 or 3 quadrants given
                                     # (Sohn et al. 2015; 1 = bottom-left, 2 = left half, 3 = all but top-right)
    features: str = ""               # m2: a trained Gaussian VAE run (M1) whose q(z1|x) replaces the images
                                     # (the stacked M1+M2 of Kingma et al. 2014)
    features_active_only: bool = False  # ... passing on only M1's active dimensions (posterior-mean sd > 0.1)
    features_from: str = "binarized"  # ... M1 encoding binarized images (as it was trained) | intensities (the grey
                                     # levels, as the code released with Kingma et al. 2014 computes its features)

    @property
    def is_text(self) -> bool:
        """Sentences (ptb, brown, or a .txt file) rather than images."""
        return self.name in TEXT_DATASETS if not self.path else self.path.endswith((".txt", ".text"))


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "mlp"                # mlp | conv (images); m2 (semi-supervised, Kingma et al. 2014);
                                     # cvae (Sohn et al. 2015) | cvae-nn (its deterministic baseline);
                                     # lstm (sentence VAE) | lstm-lm (its LM baseline)
    hidden: tuple[int, ...] = (400,)  # hidden layer sizes of the encoder; the decoder mirrors them (conv: the
                                     # one linear layer after the convolutions, default 256)
    conv_channels: tuple[int, ...] = (32, 64)  # conv: channels of the stride-2 4x4 convolutions, each halving the
                                     # sides ((32, 32, 64, 64): the 64x64 disentanglement architecture)
    latent: int = 20                 # dimension of z (number of latent variables if discrete)
    latent_type: str = "gaussian"    # gaussian | categorical (one-hot, `categories` values) | bernoulli
    categories: int = 10             # values of each categorical latent variable
    flow: int = 0                    # planar-flow layers after q(z|x)'s diagonal Gaussian (Rezende & Mohamed 2015;
                                     # image VAEs, mlp or conv); 0 = none
    hierarchy: tuple[int, ...] = ()  # mlp: more Gaussian latent layers above z (= z_1, `latent` units), each drawn
                                     # given the one below in q and the one above in p (Burda et al. 2016's two-
                                     # layer models: latent = 100, hierarchy = [50]); () = one layer
    hierarchy_hidden: tuple[int, ...] = (100, 100)  # hidden layers between two latent layers (mirrored in p)
    activation: str = "relu"         # relu | tanh | elu | gelu | softplus | leaky_relu
    likelihood: str = "auto"         # bernoulli | gaussian | auto (bernoulli for binary/binarised data)
    init: str = "default"            # default (torch's) | glorot: every Linear layer's weights (any arch) uniform with
                                     # bound sqrt(6 / (n_in + n_out)), biases zero (Glorot & Bengio 2010)
    output_bias: str = "default"     # default | data: a Bernoulli MLP decoder's output biases start at the
                                     # logit of each pixel's mean over the training images (Burda et al. 2016)
    # sentence models (arch = lstm | lstm-lm; Bowman et al. 2016, Sec. 3): hidden[0] is the LSTM width
    embedding: int = 353             # word-embedding size (Bowman et al.: 353)
    bidirectional: bool = False      # bidirectional LSTM encoder
    z_to_initial_state: bool = True  # decoder (h0, c0) = tanh(W z)
    z_every_input: bool = False      # concatenate z to every decoder input
    inputless: bool = False          # the decoder sees no words, only <s> and <unk> (the paper's variant)
    tie_embeddings: bool = False     # output layer shares the embedding matrix
    dropout: float = 0.0             # dropout on embeddings and LSTM outputs (Zaremba et al. 2014); 0 = off
    weight_drop: float = 0.0         # DropConnect on the decoder LSTM's hidden-to-hidden weights while training
                                     # (Merity et al. 2018's weight-dropped LSTM); 0 = off
    learn_prior: bool = False        # discrete z: learn the prior's logits (a sigmoid belief net's top biases)
    prior_network: bool = True       # cvae, conditional lstm: a learned prior p(z|c) (False: N(0, I))
    bag_of_words: bool = False       # lstm: auxiliary bag-of-words loss from z (Zhao et al. 2017) against collapse
    condition_embedding: int = 0     # lstm | lstm-lm on labelled text (brown): condition on each sentence's
                                     # label (genre) through an embedding of this size (0 = unconditional)


@dataclass(frozen=True)
class TrainConfig:
    objective: str = "elbo"          # elbo | iwae | mle (exact log-likelihood of a model without z: lstm-lm)
                                     # | wake-sleep | rws (reweighted wake-sleep with k samples; Helmholtz machines)
    k: int = 1                       # samples per example (IWAE's k; k > 1 with elbo averages k samples)
    beta: float = 1.0                # weight on KL (beta-VAE; 1 = the ELBO), times the annealing below
    kl_schedule: str = "none"        # KL annealing: none | linear | logistic | cyclical (schedules.kl_weight)
    kl_warmup: int = 10000           # linear: steps from weight kl_start to 1
    kl_start: float = 0.0            # linear: the weight at step 0
    kl_logistic_k: float = 0.0025    # logistic: 1 / (1 + exp(-k (step - x0))) (Bowman et al. 2016)
    kl_logistic_x0: int = 2500
    kl_cycles: int = 4               # cyclical (Fu et al. 2019): cycles over the whole run ...
    kl_cycle_ratio: float = 0.5      # ... rising over this fraction of each cycle
    free_bits: float = 0.0           # nats per latent dimension free of KL penalty (Kingma et al. 2016); 0 = off
    capacity_max: float = 0.0        # controlled capacity (Burgess et al. 2018): loss = -E[log p] + beta |KL - C|
    capacity_steps: int = 100000     # with C rising linearly from 0 to capacity_max over these steps; 0 = off
    word_dropout: float = 0.0        # text: replace decoder input words by <unk> with this rate (Bowman et al.)
    estimator: str = "auto"          # auto (pathwise if q can rsample, else score) | pathwise | score |
                                     # gumbel | st-gumbel | exact (enumerate small discrete latents) |
                                     # dreg (objective iwae: doubly reparameterised encoder gradient,
                                     # Tucker et al. 2019);
                                     # for m2 it is the estimator over the label y (auto = exact)
    baseline: str = "none"           # score-function baseline: none | moving-average | nvil |
                                     # loo (leave-one-out over train.k >= 2 draws per example)
    temperature: float = 1.0         # Gumbel-softmax temperature at step 0 ...
    temperature_min: float = 0.5     # ... annealed as max(temperature_min, temperature * exp(-rate * t))
    temperature_rate: float = 0.0    # (Jang et al. 2017), t updated every `temperature_every` steps
    temperature_every: int = 1000
    hybrid_alpha: float = 0.5        # cvae, objective = hybrid: alpha * ELBO + (1 - alpha) * GSNN (Sohn et al. eq. 9)
    classifier_weight: float = 0.0   # m2: alpha on the labelled cross-entropy (0 = the paper's 0.1 N, per
                                     # labelled example 0.1 N / N_labelled; Kingma et al. 2014, eq. 9)
    labelled_batch: int = 100        # m2: labelled images beside each batch of unlabelled ones
    ssl_weighting: str = "upweighted"  # m2: upweighted (a labelled example weighs N_u / N_l unlabelled ones) |
                                     # paper (each weighs one, Kingma et al. eq. 9; see vaekit.semi_supervised)
    epochs: int = 10                 # passes over the training set
    batch_size: int = 128            # examples per step
    optimizer: str = "adam"          # adam | sgd (plain SGD, as the LSTM text-VAE code of He et al. 2019 and
                                     # Li et al. 2019 trains: lr 1.0, clipped, halved on a validation plateau)
    momentum: float = 0.0            # sgd: momentum (0 = plain SGD)
    lr: float = 1e-3                 # the learning rate (the peak, under a schedule)
    lr_schedule: str = "constant"    # constant | cosine | burda (stages of 3^i epochs, lr * 10^(-i/7)) |
                                     # plateau (times plateau_factor after plateau_patience validations without
                                     # a better validation bound (log p(x|z) - beta KL with train.beta), from the
                                     # best weights; vaekit.schedules.Plateau, vaekit.train.plateau_criterion)
    plateau_patience: int = 2        # plateau: validations without a new best before the rate decays
    plateau_factor: float = 0.5      # plateau: the decay factor
    plateau_decays: int = 5          # plateau: the decay that stops training (on the best weights)
    warmup_steps: int = 0            # linear learning-rate warm-up
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8           # Burda et al. used 1e-4
    grad_clip: float = 0.0           # clip the global gradient norm (0 = off)
    init_from: str = ""              # a finished run whose weights start this one (same architecture), e.g. an
                                     # autoencoder (beta = 0) whose encoder a VAE keeps (Li et al. 2019) ...
    init_reset: tuple[str, ...] = () # ... except these submodules (names as in the state dict, e.g.
                                     # decoder,to_state,output), which keep this run's own fresh initialisation
    seed: int = 0                    # seeds the parameters, data order, binarisation and noise
    threads: int = 0                 # torch threads (0 = leave torch's default)
    retain_memory: bool = True       # keep freed memory in the heap (glibc malloc, whole process): large per-step
                                     # tensors reuse mapped pages instead of page-faulting (vaekit.allocator)
    precision: str = "float32"       # float32 | bfloat16: mixed precision, the training step's matrix products
                                     # in bfloat16 under torch.autocast (fast on CPUs with AMX / AVX512-BF16 and
                                     # on GPUs), parameters, distributions and losses in float32; evaluation is
                                     # always float32
    device: str = "cpu"              # cpu | cuda | cuda:N | auto (cuda when torch sees a GPU): where the model and
                                     # each batch live (the feeds stay on the CPU; vaekit.devices)
    max_steps: int = 0               # stop after this many optimiser steps in total (0 = no limit)
    log_every: int = 100             # steps between progress-bar updates of the running loss
    val_every: int = 1               # epochs between validation-ELBO evaluations
    checkpoint_every: int = 1        # epochs between checkpoints (always at the end and on interrupt)


@dataclass(frozen=True)
class EvalConfig:
    k: int = 5000                    # importance samples for log p(x) (Burda et al. use 5000)
    split: str = "test"              # split evaluated at the end of training
    batch_size: int = 100            # examples per evaluation chunk
    sample_chunk: int = 500          # importance samples per chunk (memory ~ batch*chunk*D floats)
    seed: int = 0                    # seeds the importance samples
    plots: bool = True               # write sample grid, reconstructions, scatter, curves after training
    device: str = ""                 # where evaluation computes: cpu | cuda | cuda:N | auto; "" = train.device


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    name: str = "run"                # a label for reports

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        unknown = set(data) - set(SECTIONS) - {"name"}
        if unknown:
            hint = _did_you_mean(sorted(unknown), [*SECTIONS, "name"])
            raise ConfigError(f"unknown config section(s) {sorted(unknown)}; {hint}known: {', '.join(SECTIONS)}, name")
        sections = {key: _build(section_cls, data[key], key)
                    for key, section_cls in SECTIONS.items() if key in data}
        config = cls(**sections, name=str(data.get("name", "run")))
        config.validate()
        return config

    def validate(self) -> None:
        """Raise ConfigError for a value outside its allowed set or range."""
        for where, allowed in CHOICES.items():
            section, field = where.split(".")
            value = getattr(getattr(self, section), field)
            if value not in allowed:
                raise ConfigError(f"{where} = {value!r}: choose one of {', '.join(allowed)}")
        check_device_name("train.device", self.train.device)
        if self.eval.device:
            check_device_name("eval.device", self.eval.device)
        for where, value in (("model.latent", self.model.latent), ("train.k", self.train.k),
                             ("train.epochs", self.train.epochs), ("train.batch_size", self.train.batch_size),
                             ("eval.k", self.eval.k), ("eval.batch_size", self.eval.batch_size),
                             ("eval.sample_chunk", self.eval.sample_chunk)):
            if value < 1:
                raise ConfigError(f"{where} = {value}: must be at least 1")
        if self.train.lr <= 0:
            raise ConfigError(f"train.lr = {self.train.lr}: must be positive")
        if not 0 <= self.train.momentum < 1:
            raise ConfigError(f"train.momentum = {self.train.momentum}: must lie in [0, 1)")
        if self.train.lr_schedule == "plateau":
            t = self.train
            if t.val_every < 1:
                raise ConfigError("train.lr_schedule = 'plateau' decays on the validation bound: set "
                                  "train.val_every to at least 1 (validations between decays count in it)")
            if not 0 < t.plateau_factor < 1 or t.plateau_patience < 1 or t.plateau_decays < 1:
                raise ConfigError(f"plateau schedule: train.plateau_factor = {t.plateau_factor} must lie in (0, 1), "
                                  f"train.plateau_patience = {t.plateau_patience} be at least 1 and "
                                  f"train.plateau_decays = {t.plateau_decays} at least 1")
        m2 = self.model.arch == "m2"
        if m2:
            if self.data.labelled < 1 or self.data.is_text:
                raise ConfigError("model.arch = 'm2' is semi-supervised on labelled images: set data.labelled "
                                  "(e.g. 100) and an image data set with labels (mnist, fashion-mnist)")
            if self.train.objective != "elbo" or self.train.estimator == "pathwise":
                raise ConfigError("m2 trains with train.objective = 'elbo'; train.estimator chooses how the label y "
                                  "is summed out: auto (= exact), exact, gumbel, st-gumbel or score")
            if self.model.latent_type != "gaussian":
                raise ConfigError("m2 has a Gaussian z beside the discrete label: set model.latent_type = 'gaussian'")
        elif self.data.labelled or self.data.features or self.data.features_active_only:
            raise ConfigError("data.labelled and data.features are for semi-supervised training: set "
                              "model.arch = 'm2'")
        if self.data.features_from != "binarized" and not self.data.features:
            raise ConfigError(f"data.features_from = {self.data.features_from!r} says what M1 encodes: set "
                              "data.features to the M1 run")
        if self.data.features_active_only and not self.data.features:
            raise ConfigError("data.features_active_only selects dimensions of M1's codes: set data.features "
                              "to the M1 run")
        if self.data.features and self.model.likelihood == "bernoulli":
            raise ConfigError("M2 on M1 features models real-valued codes: set model.likelihood = 'gaussian' "
                              "(or auto)")
        if self.train.labelled_batch < 1 or self.train.classifier_weight < 0:
            raise ConfigError("train.labelled_batch must be at least 1 and train.classifier_weight at least 0")
        if (self.model.latent_type == "gaussian" and not m2
                and self.train.estimator in ("gumbel", "st-gumbel", "exact")):
            raise ConfigError(f"train.estimator = {self.train.estimator!r} needs a discrete latent: set "
                              "model.latent_type = 'categorical' or 'bernoulli'")
        if self.model.output_bias == "data" and (self.model.arch != "mlp" or self.data.is_text
                                                  or self.model.likelihood == "gaussian"):
            raise ConfigError("model.output_bias = 'data' sets a Bernoulli MLP decoder's output biases: use it with "
                              "model.arch = 'mlp' on binary or binarised images")
        if self.train.baseline == "loo" and (self.train.k < 2 or self.train.objective != "elbo"
                                             or self.train.estimator not in ("auto", "score")):
            raise ConfigError("train.baseline = 'loo' (leave-one-out) is a score-function baseline over several "
                              "draws per example: set train.objective = 'elbo', train.estimator = 'score' and "
                              "train.k >= 2 (e.g. 4)")
        if self.model.flow < 0:
            raise ConfigError(f"model.flow = {self.model.flow}: the number of planar layers is 0 (none) or more")
        if self.model.flow and (self.model.arch not in ("mlp", "conv") or self.model.latent_type != "gaussian"
                                or self.train.free_bits):
            raise ConfigError("model.flow (planar layers on q(z|x)) is for image VAEs with a Gaussian z: use "
                              "model.arch = mlp or conv, model.latent_type = 'gaussian' and no train.free_bits "
                              "(free bits needs a per-dimension closed-form KL, which a flow has not)")
        if self.model.hierarchy and (self.model.arch != "mlp" or self.model.latent_type == "categorical"
                                     or self.model.flow or self.train.free_bits):
            raise ConfigError("model.hierarchy (latent layers above z) is for the MLP image model with Gaussian or "
                              "binary (bernoulli) layers: use model.arch = 'mlp', no model.flow and no "
                              "train.free_bits (free bits needs a per-dimension closed-form KL, which a stack of "
                              "layers has not)")
        binary_stack = self.model.latent_type == "bernoulli"
        stack_estimators = {"elbo": ("score",) if self.train.baseline == "none" else ("auto", "score"),
                            "iwae": ("auto",), "wake-sleep": ("auto",), "rws": ("auto",)}
        if self.model.hierarchy and binary_stack and (self.train.estimator not in stack_estimators.get(
                self.train.objective, ()) or self.train.capacity_max):
            raise ConfigError("model.hierarchy with binary layers (a deep sigmoid belief net) trains with "
                              "train.objective = 'wake-sleep', 'rws', 'iwae' (VIMCO's gradient, train.k >= 2) or "
                              "'elbo' with train.estimator = 'score' (NVIL with train.baseline = 'nvil'): binary "
                              "layers have no pathwise or relaxed gradient, and no train.capacity_max (the KL between "
                              f"two chains has no closed form); not objective {self.train.objective!r} with estimator "
                              f"{self.train.estimator!r}")
        if self.model.hierarchy and not binary_stack and self.train.objective not in ("elbo", "iwae"):
            raise ConfigError("model.hierarchy with Gaussian layers trains with train.objective = elbo or iwae, not "
                              f"{self.train.objective!r}")
        if not self.model.conv_channels or min(self.model.conv_channels) < 1:
            raise ConfigError(f"model.conv_channels = {list(self.model.conv_channels)}: one or more channel counts, "
                              "each at least 1 (e.g. [32, 64])")
        if min(self.model.hierarchy, default=1) < 1 or min(self.model.hierarchy_hidden, default=1) < 1:
            raise ConfigError(f"model.hierarchy = {list(self.model.hierarchy)} and model.hierarchy_hidden = "
                              f"{list(self.model.hierarchy_hidden)} are layer sizes: each at least 1")
        if self.train.estimator == "dreg" and (self.train.objective != "iwae" or self.model.arch not in ("mlp", "conv")
                                               or self.model.latent_type != "gaussian" or self.model.flow):
            raise ConfigError("train.estimator = 'dreg' (doubly reparameterised gradients, Tucker et al. 2019) is the "
                              "IWAE bound's gradient for a Gaussian q(z|x) (one layer or a hierarchy): set "
                              "train.objective = 'iwae' (with train.k > 1), model.arch = mlp or conv, "
                              "model.latent_type = 'gaussian', and no model.flow")
        if self.model.latent_type != "gaussian" and self.train.estimator == "pathwise":
            raise ConfigError("discrete latents have no pathwise gradient: use train.estimator = score, gumbel, "
                              "st-gumbel or exact")
        text_arch = self.model.arch in TEXT_ARCHS
        if text_arch != self.data.is_text:
            raise ConfigError(f"model.arch = {self.model.arch!r} does not fit the data "
                              f"({self.data.path or self.data.name}): use mlp or conv for images, lstm or "
                              "lstm-lm for text (data.name = ptb | brown, or data.path = a .txt file)")
        conditional = self.model.arch in ("cvae", "cvae-nn")
        if (self.model.arch in ("lstm-lm", "cvae-nn")) != (self.train.objective == "mle"):
            raise ConfigError("models without a latent variable (model.arch = 'lstm-lm' or 'cvae-nn') train with "
                              "train.objective = 'mle', and only they do; latent-variable models use elbo or iwae")
        if self.data.condition not in ("quadrants", "label"):
            raise ConfigError(f"data.condition = {self.data.condition!r}: choose quadrants or label")
        by_quadrants = conditional and self.data.condition == "quadrants"
        if by_quadrants != (self.data.quadrants != 0):
            raise ConfigError("quadrant completion pairs model.arch = 'cvae' or 'cvae-nn' with data.quadrants = "
                              "1, 2 or 3 (the number of quadrants given); to condition on the class instead, set "
                              "data.condition = 'label' and leave data.quadrants at 0")
        if by_quadrants and self.data.quadrants not in (1, 2, 3):
            raise ConfigError(f"data.quadrants = {self.data.quadrants}: choose 1, 2 or 3")
        if self.train.objective in ("gsnn", "hybrid") and self.model.arch != "cvae":
            raise ConfigError(f"train.objective = {self.train.objective!r} is a CVAE objective (Sohn et al. 2015): "
                              "set model.arch = 'cvae'")
        if self.model.arch == "cvae" and self.train.objective not in ("elbo", "gsnn", "hybrid"):
            raise ConfigError("model.arch = 'cvae' trains with train.objective = elbo, gsnn or hybrid")
        if not 0 <= self.train.hybrid_alpha <= 1:
            raise ConfigError(f"train.hybrid_alpha = {self.train.hybrid_alpha}: must be in [0, 1]")
        if not 0 <= self.train.word_dropout <= 1:
            raise ConfigError(f"train.word_dropout = {self.train.word_dropout}: must be a probability in [0, 1]")
        if self.train.word_dropout and not text_arch:
            raise ConfigError("train.word_dropout applies to sentence models (model.arch = lstm | lstm-lm)")
        if not 0 <= self.model.dropout < 1:
            raise ConfigError(f"model.dropout = {self.model.dropout}: must be in [0, 1)")
        if self.model.dropout and not text_arch:
            raise ConfigError("model.dropout applies to sentence models (model.arch = lstm | lstm-lm)")
        if not 0 <= self.model.weight_drop < 1:
            raise ConfigError(f"model.weight_drop = {self.model.weight_drop}: must be in [0, 1) (Merity et al. use 0.5)")
        if self.model.weight_drop and not text_arch:
            raise ConfigError("model.weight_drop applies to the LSTM decoder of sentence models (model.arch = lstm | "
                              "lstm-lm)")
        if text_arch and self.model.latent_type != "gaussian":
            raise ConfigError("sentence models have a Gaussian z: set model.latent_type = 'gaussian'")
        if self.train.capacity_max < 0 or (self.train.capacity_max and (self.train.objective != "elbo"
                                                                         or self.train.free_bits)):
            raise ConfigError("train.capacity_max (Burgess et al. 2018) applies to the ELBO without free bits, "
                              "and must be at least 0")
        if self.train.objective in ("wake-sleep", "rws") and (
                self.train.estimator != "auto" or self.train.beta != 1.0 or self.train.kl_schedule != "none"
                or self.train.free_bits or text_arch or m2):
            raise ConfigError(f"train.objective = {self.train.objective!r} has its own updates for p and q: leave "
                              "train.estimator = 'auto', beta = 1, no KL schedule or free bits (image VAEs only)")
        if self.model.bag_of_words and (self.model.arch != "lstm" or self.train.objective != "elbo"):
            raise ConfigError("model.bag_of_words is an auxiliary loss of the sentence VAE's ELBO (model.arch = "
                              "'lstm', train.objective = 'elbo')")
        if self.model.condition_embedding and (not text_arch or self.train.free_bits
                                               or self.train.objective not in ("elbo", "mle")):
            raise ConfigError("model.condition_embedding conditions a sentence model (model.arch = lstm | lstm-lm) "
                              "on its labels; it trains with train.objective = elbo (mle for lstm-lm) and without "
                              "free bits: set train.free_bits = 0")
        if self.model.learn_prior and self.model.latent_type == "gaussian":
            raise ConfigError("model.learn_prior is for discrete latents (categorical or bernoulli)")
        if self.train.objective == "iwae" and (self.train.beta != 1.0 or self.train.kl_schedule != "none"
                                               or self.train.free_bits):
            raise ConfigError("train.beta, kl_schedule and free_bits apply to the ELBO only; the IWAE bound "
                              "has no separate KL term")


CHOICES = {
    "data.binarize": ("dynamic", "none"),
    "data.features_from": ("binarized", "intensities"),
    "model.arch": ("mlp", "conv", "m2", "cvae", "cvae-nn", "lstm", "lstm-lm"),
    "model.activation": ("relu", "tanh", "elu", "gelu", "softplus", "leaky_relu"),
    "model.likelihood": ("auto", "bernoulli", "gaussian"),
    "model.latent_type": ("gaussian", "categorical", "bernoulli"),
    "train.estimator": ("auto", "pathwise", "score", "gumbel", "st-gumbel", "exact", "dreg"),
    "train.baseline": ("none", "moving-average", "nvil", "loo"),
    "train.ssl_weighting": ("upweighted", "paper"),
    "model.init": ("default", "glorot"),
    "model.output_bias": ("default", "data"),
    "train.kl_schedule": ("none", "linear", "logistic", "cyclical"),
    "train.objective": ("elbo", "iwae", "mle", "wake-sleep", "rws", "gsnn", "hybrid"),
    "train.lr_schedule": ("constant", "cosine", "burda", "plateau"),
    "train.optimizer": ("adam", "sgd"),
    "train.precision": ("float32", "bfloat16"),
    "eval.split": ("test", "val", "train"),
}


TEXT_ARCHS = ("lstm", "lstm-lm")
TEXT_DATASETS = ("ptb", "brown")


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "eval": EvalConfig}


def _did_you_mean(names: list[str], known, prefix: str = "") -> str:
    """``"did you mean train.epochs? "`` for the known names closest to misspelt ``names``; ``""`` if none is close."""
    close = [prefix + m for name in names for m in difflib.get_close_matches(name, known, n=1)]
    return f"did you mean {', '.join(close)}? " if close else ""


def _build(section_cls, values: dict[str, Any], section: str):
    if not isinstance(values, dict):
        raise ConfigError(f"[{section}] must be a table of keys, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(section_cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            hint = _did_you_mean([key], fields, f"{section}.")
            raise ConfigError(f"unknown key {section}.{key}; {hint}known keys of [{section}]: {', '.join(fields)}")
        kwargs[key] = _coerce(value, getattr(section_cls(), key), f"{section}.{key}",
                              str if str(fields[key].type).startswith("tuple[str") else int)
    return section_cls(**kwargs)


def _coerce(value: Any, default: Any, where: str, element: type = int) -> Any:
    """Convert ``value`` to the type of ``default`` (strings from the command line included); ``element`` is the
    item type of a tuple whose default is empty."""
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            return bool(value)
        if isinstance(default, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, tuple):
            if isinstance(value, str):
                value = (json.loads(value) if value.strip().startswith("[")
                         else [v.strip() for v in value.split(",") if v.strip()])
            if not isinstance(value, (list, tuple)):
                value = [value]
            kind = type(default[0]) if default else element
            return tuple(kind(v) for v in value)
        return str(value)
    except (TypeError, ValueError, json.JSONDecodeError):
        raise ConfigError(f"{where}: cannot use {value!r} where {type(default).__name__} is expected "
                          f"(default {default!r})") from None


def load_recipe(path: str | Path | None, overrides: list[str] | tuple[str, ...] = (),
                base: dict[str, Any] | None = None) -> RunConfig:
    """Read a TOML recipe (or start from ``base``, a saved config dict, or the defaults) and apply
    ``section.key=value`` overrides."""
    data: dict[str, Any] = copy.deepcopy(base) if base else {}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"recipe {path} not found; the built-in recipes are in recipes/")
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from None
        data.setdefault("name", path.stem)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value, e.g. train.epochs=5")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        if len(parts) == 1 and parts[0] == "name":
            data["name"] = value
            continue
        if len(parts) != 2:
            raise ConfigError(f"override key {key!r} must be section.key, e.g. train.lr")
        data.setdefault(parts[0], {})[parts[1]] = value.strip()
    return RunConfig.from_dict(data)


def diff(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """Human-readable differences between two nested config dicts: ``['model.latent: 20 != 50']``."""
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, "<missing>"), b.get(key, "<missing>")
        if isinstance(va, dict) and isinstance(vb, dict):
            out += diff(va, vb, f"{prefix}{key}.")
        elif _norm(va) != _norm(vb):
            out.append(f"{prefix}{key}: {va!r} != {vb!r}")
    return out


def _norm(value):
    return list(value) if isinstance(value, (list, tuple)) else value
