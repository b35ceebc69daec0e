"""Model families: the one place that knows what differs between the kinds of model vaekit trains.

A run's config names one family (:func:`family_of`); the trainer, the evaluator, the plotter, the CLI and
the exporter ask it, instead of branching on ``model.arch`` themselves. A family answers:

``spec(config, data)``
    what a checkpoint (and an export) must record to rebuild the model without the data: the data
    ``shape`` and ``likelihood``, and for sentence models the ``vocab`` (and the ``label_names`` of a
    label-conditional one). The trainer stores these keys at the top of the checkpoint.
``build(config, spec)``
    the model, from a spec or from a checkpoint (which holds the same keys).
``feed(config, data, dist)``
    training and validation batches (:mod:`vaekit.feeds`).
``estimator(config, spec)``
    the gradient estimator of a discrete latent variable (:mod:`vaekit.estimators`), or None.
``training_terms(module, x, beta, capacity)`` / ``validation_terms(model, x, objective)``
    per-example :class:`~vaekit.objectives.Terms` of a training or validation batch.
``evaluate(config, model, data, split, k, limit, progress)``
    the figures of ``vaekit eval`` (a dict that becomes ``report.json``).
``plot(run_dir, config, model, spec, what, n)``
    the pictures of ``vaekit plot``.
``draw(...)`` / ``reconstruct(...)``
    the pictures of ``vaekit sample`` / ``vaekit reconstruct`` for image families (sentence families print
    sentences through :mod:`vaekit.generate` instead: ``family.text`` says which).

The families: :class:`ImageVAE` (Gaussian, categorical or Bernoulli latents on images; Kingma & Welling 2014,
Jang et al. 2017), :class:`SemiSupervised` (M2, Kingma et al. 2014) and :class:`StackedSemiSupervised` (M1+M2),
:class:`ConditionalImage` (CVAE and its deterministic baseline, Sohn et al. 2015), :class:`Sentence` (sentence
VAE and LSTM LM, Bowman et al. 2016) and :class:`ConditionalSentence` (both conditioned on a label).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from . import conditional, estimators, evaluate, feeds, models, objectives, runs, semi_supervised
from .config import RunConfig
from .errors import VaekitError
from .flows import start_near_identity
from .objectives import Terms


SPEC_KEYS = ("shape", "likelihood", "vocab", "label_names")  # what a spec (and a checkpoint, an export) may hold


class Family:
    """The image VAE's answers; other families override what differs."""

    name = "vae"
    text = False            # sentences rather than pictures
    distributed = True      # trains data-parallel under torchrun
    plots = ("samples", "reconstructions", "manifold", "scatter", "curves", "traversals", "layers")

    # --- what is built -------------------------------------------------------------------------------------
    def spec(self, config: RunConfig, data) -> dict:
        return {"shape": list(data.shape), "likelihood": runs.resolve_likelihood(config, data)}

    def build(self, config: RunConfig, spec: dict) -> torch.nn.Module:
        return models.build_model(config.model, tuple(spec["shape"]), spec["likelihood"])

    def initialise(self, model: torch.nn.Module, config: RunConfig, data) -> None:
        """A fresh run's initial weights beyond the networks' own: ``model.init`` (every family's Linear layers)
        and ``model.output_bias`` (from the training data). A resumed run loads its weights and its random state
        instead, so it is unaffected."""
        if config.model.init == "glorot":
            models.glorot_(model)
            if config.model.flow:  # glorot_ redrew the encoder's flow outputs: start the flow near identity again
                start_near_identity(model.encoder, 2 * config.model.latent)
        if config.model.output_bias == "data":
            pixels = data.train.flatten(1)  # the mean image without a float copy of the whole set
            models.set_output_bias_to_data(model, pixels.sum(0, dtype=torch.float64) / (len(pixels) * data.max_value))

    def feed(self, config: RunConfig, data, dist):
        return feeds.ImageFeed(config, data, dist, runs.eval_inputs(config, data, "val"))

    def estimator(self, config: RunConfig, spec: dict):
        return estimators.build_estimator(config.train, math.prod(spec["shape"]))

    # --- objectives ----------------------------------------------------------------------------------------
    def training_terms(self, module, x, beta: float, capacity: float | None) -> Terms:
        """``module`` is the trainer's :class:`~vaekit.train.ObjectiveModule` (model, objective name, k,
        estimator, free bits, ...)."""
        return objectives.objective(module.name, module.model, x, k=module.k, beta=beta, estimator=module.estimator,
                         free_bits=module.free_bits, capacity=capacity, auxiliary=self._auxiliary(module.model, x))

    def _auxiliary(self, model, x):
        """An auxiliary loss as a function of z (the sentence families' bag of words), or None."""
        return None

    def validation_terms(self, model, x, objective: str) -> Terms:
        return objectives.elbo(model, x)

    def tokens(self, x) -> int:
        """Tokens (words + ``</s>``) in a training batch; 0 for images."""
        return 0

    # --- what a finished run gives -------------------------------------------------------------------------
    def evaluate(self, config: RunConfig, model, data, split: str, k: int, limit: int, progress,
                 partial: Path | None = None) -> dict:
        """The family's figures on ``split``; ``partial`` is where a long evaluation may keep what it has scored
        so that repeating it continues (used by the sentence family, whose K = 500 scoring takes an hour)."""
        x = runs.eval_inputs(config, data, split)[: limit or None]
        return evaluate.evaluate(model, x, k=k, batch_size=config.eval.batch_size,
                                 sample_chunk=config.eval.sample_chunk, seed=config.eval.seed, progress=progress)

    def plot(self, run_dir: Path, config: RunConfig, model, spec: dict, what: tuple[str, ...], n: int) -> list[Path]:
        from . import plots

        shape = tuple(spec["shape"])
        written = []
        if "samples" in what:
            written.append(plots.sample_grid(model, shape, run_dir / "samples.png", n=n))
        written += _curves(run_dir, what)
        flat = not getattr(model, "hierarchical", False)  # upper layers of a hierarchy never reach x directly
        if "manifold" in what and model.latent.kind == "gaussian" and model.latent.size == 2 and flat:
            written.append(plots.manifold(model, shape, run_dir / "manifold.png"))
        if "layers" in what and not flat:
            written.append(plots.layer_samples(model, shape, run_dir / "layer_samples.png"))
        if {"reconstructions", "scatter", "traversals"} & set(what):
            data = runs.load_data(config.data)
            x = runs.eval_inputs(config, data, "test")
            if "reconstructions" in what:
                written.append(plots.reconstructions(model, x, shape, run_dir / "reconstructions.png", n=32))
            if "traversals" in what and model.latent.kind == "gaussian" and flat:
                written.append(plots.traversals(model, x[:1000], shape, run_dir / "traversals.png"))
            if "scatter" in what:
                m = min(len(x), 5000)
                labels = None if data.test_labels is None else data.test_labels[:m]
                written.append(plots.latent_scatter(model, x[:m], labels, run_dir / "latent_scatter.png"))
        return written

    def draw(self, run_dir: Path, config: RunConfig, model, spec: dict, out: Path | None, n: int, seed: int) -> Path:
        """``vaekit sample``: a grid of ``n`` images from the prior."""
        from .plots import sample_grid
        return sample_grid(model, tuple(spec["shape"]), out or run_dir / "samples.png", n=n or 64, seed=seed)

    def reconstruct(self, run_dir: Path, config: RunConfig, model, spec: dict, out: Path | None, n: int) -> Path:
        """``vaekit reconstruct``: test images beside their reconstructions."""
        from .plots import reconstructions
        x = runs.eval_inputs(config, runs.load_data(config.data), "test")
        return reconstructions(model, x, tuple(spec["shape"]), out or run_dir / "reconstructions.png", n=n or 32)


class ImageVAE(Family):
    """A VAE on images with a Gaussian, categorical or Bernoulli latent (``model.arch = mlp | conv``)."""


class SemiSupervised(Family):
    """M2 (Kingma et al. 2014, Sec. 3.1.2): the class is a latent variable of unlabelled images, observed for
    the few labelled ones; validation reports the classifier's error beside the bound."""

    name = "m2"
    distributed = False
    plots = ("samples", "analogies", "curves")

    def feed(self, config, data, dist):
        features = self._features(config, data)  # M1+M2: the trained M1, loaded once
        val_x = semi_supervised.feature_inputs(config, data, "val")
        return feeds.SemiSupervisedFeed(config, data, dist, val_x if features is None else features.mean(val_x),
                                        features)

    def _features(self, config, data=None):
        return None

    def estimator(self, config, spec):
        # the label is summed out unless the config names another estimator
        return super().estimator(config, spec) or estimators.Enumerate()

    def training_terms(self, module, x, beta, capacity):
        return semi_supervised.semi_supervised_loss(module.model, x, module.estimator, module.classifier_weight)

    def validation_terms(self, model, x, objective):
        # the bound on log p(x), the label summed out
        return semi_supervised.unlabelled_bound(model, x, estimators.Enumerate())

    def evaluate(self, config, model, data, split, k, limit, progress, partial=None):
        x, labels = semi_supervised.m2_inputs(config, data, split), data.split(split)[1]
        return semi_supervised.evaluate_m2(model, x[: limit or None], labels[: limit or None], seed=config.eval.seed)

    def plot(self, run_dir, config, model, spec, what, n):
        from . import plots
        shape = tuple(spec["shape"])
        written = []
        if "samples" in what:  # one class per column
            written.append(plots.sample_grid(model, shape, run_dir / "samples.png", n=100))
        if "analogies" in what:
            x = runs.eval_inputs(config, runs.load_data(config.data), "test")[:10]
            written.append(plots.analogies(model, x, shape, run_dir / "analogies.png"))
        return written + _curves(run_dir, what)


class StackedSemiSupervised(SemiSupervised):
    """M1+M2 (Kingma et al. 2014, Sec. 3.1.3): M2 on the Gaussian codes of a trained VAE (``data.features``),
    so its 'images' are real-valued vectors of the VAE's latent size."""

    name = "m1+m2"
    plots = ("curves",)

    def spec(self, config, data):
        return {"shape": [1, 1, self._features(config, data).dim], "likelihood": "gaussian"}

    def _features(self, config, data=None):
        return semi_supervised.latent_features(config, data)

    def draw(self, run_dir, config, model, spec, out, n, seed):
        raise _no_pictures(run_dir, config, "sample")

    def reconstruct(self, run_dir, config, model, spec, out, n):
        raise _no_pictures(run_dir, config, "reconstruct")


class _Conditional:
    """The objectives of the conditional families (Sohn et al. 2015), whose batches are
    :class:`~vaekit.conditional.ConditionalBatch` es; ``_auxiliary`` is the family's (bag of words for sentences)."""

    def training_terms(self, module, x, beta, capacity):
        return conditional.conditional_objective(module.name, module.model, x, beta, module.hybrid_alpha,
                                                 self._auxiliary(module.model, x))

    def validation_terms(self, model, x, objective):
        # the baseline's exact log p(x|c); the GSNN bound for a GSNN (its q(z|x,c) never trains); else the ELBO
        return conditional.conditional_objective(objective if objective in ("mle", "gsnn") else "elbo", model, x)


class ConditionalImage(_Conditional, Family):
    """The CVAE (``model.arch = cvae``) and its deterministic baseline (``cvae-nn``) of Sohn et al. (2015):
    quadrant completion (``data.condition = quadrants``) or generation by class (``label``)."""

    name = "cvae"
    plots = ("samples", "completions", "curves")

    def build(self, config, spec):
        return conditional.build_conditional_model(config, tuple(spec["shape"]))

    def feed(self, config, data, dist):
        feed = feeds.ClassConditionFeed if config.data.condition == "label" else feeds.QuadrantFeed
        return feed(config, data, dist, runs.eval_inputs(config, data, "val"))

    def evaluate(self, config, model, data, split, k, limit, progress, partial=None):
        x = runs.eval_inputs(config, data, split)[: limit or None]
        batches = conditional.condition_batches(x, data.split(split)[1], config, config.eval.batch_size)
        # a GSNN never trains q(z|x,c): its likelihood is estimated with the prior network as the proposal
        proposal = "prior" if config.train.objective == "gsnn" else "posterior"
        return conditional.evaluate_conditional(model, batches, samples=k, seed=config.eval.seed, proposal=proposal)

    def plot(self, run_dir, config, model, spec, what, n):
        written = []
        if {"samples", "completions"} & set(what):
            written.append(self.draw(run_dir, config, model, spec, None, 0, 0))
        return written + _curves(run_dir, what)

    def draw(self, run_dir, config, model, spec, out, n, seed):
        """By class: one class per row. By quadrants: completions of test images from their given quadrants."""
        from .plots import class_samples, completions
        shape = tuple(spec["shape"])
        if config.data.condition == "label":
            return class_samples(model, config.model.categories, shape, out or run_dir / "samples.png",
                                 per_class=n or 10, seed=seed)
        x = runs.eval_inputs(config, runs.load_data(config.data), "test")[: n or 8]
        return completions(model, x, config, shape, out or run_dir / "completions.png")

    def reconstruct(self, run_dir, config, model, spec, out, n):
        raise VaekitError(f"{run_dir} is a conditional model: it completes images from their given quadrants "
                          f"or draws them by class rather than reconstructing them; see `vaekit sample {run_dir}`")


class Sentence(Family):
    """The sentence VAE (``model.arch = lstm``) and its LSTM language model (``lstm-lm``), Bowman et al. (2016)."""

    name = "sentence"
    text = True
    distributed = False
    plots = ("curves",)

    def spec(self, config, data):
        return {"shape": [len(data.vocab)], "likelihood": "categorical", "vocab": data.vocab.to_list()}

    def build(self, config, spec):
        return runs.build_sentence_model(config.model, runs.run_vocab(spec), len(spec.get("label_names") or ()))

    def feed(self, config, data, dist):
        return feeds.TextFeed(config, data, dist)

    def estimator(self, config, spec):
        return None

    def _auxiliary(self, model, x):
        return _bag_of_words(model, x)

    def validation_terms(self, model, x, objective):
        return objectives.exact_log_likelihood(model, x) if objective == "mle" else objectives.elbo(model, x)

    def tokens(self, x) -> int:
        return int(x.lengths.sum())

    def evaluate(self, config, model, data, split, k, limit, progress, partial=None):
        batches = feeds.text_batches(data, split, config.eval.batch_size, limit)
        return evaluate.evaluate_text(model, batches, k=k, sample_chunk=config.eval.sample_chunk,
                                      seed=config.eval.seed, progress=progress, partial=partial)

    def plot(self, run_dir, config, model, spec, what, n):
        return _curves(run_dir, what)  # samples are text: `vaekit sample`


class ConditionalSentence(_Conditional, Sentence):
    """A sentence VAE or LM conditioned on each sentence's label (a Brown genre): q(z|x,c), p(z|c), p(x|z,c)
    (``model.condition_embedding > 0``); scored by -log p(x|c)."""

    name = "sentence-cvae"

    def spec(self, config, data):
        return {**super().spec(config, data), "label_names": list(data.label_names or ())}

    def feed(self, config, data, dist):
        return feeds.TextFeed(config, data, dist, conditional=True)

    def _auxiliary(self, model, x):
        return _bag_of_words(model, x.x)  # the sentences of the ConditionalBatch

    def tokens(self, x) -> int:
        return int(x.x.lengths.sum())

    def evaluate(self, config, model, data, split, k, limit, progress, partial=None):
        batches = feeds.text_batches(data, split, config.eval.batch_size, limit, conditional=True)
        return conditional.evaluate_conditional(model, batches, samples=k, seed=config.eval.seed)


FAMILIES = {f.name: f for f in (ImageVAE(), SemiSupervised(), StackedSemiSupervised(), ConditionalImage(),
                                Sentence(), ConditionalSentence())}


def family_of(config: RunConfig) -> Family:
    """The family of the model ``config`` describes."""
    if config.data.is_text:
        return FAMILIES["sentence-cvae" if config.model.condition_embedding else "sentence"]
    if config.model.arch in ("cvae", "cvae-nn"):
        return FAMILIES["cvae"]
    if config.model.arch == "m2":
        return FAMILIES["m1+m2" if config.data.features else "m2"]
    return FAMILIES["vae"]


def _curves(run_dir: Path, what) -> list[Path]:
    from .plots import training_curves
    curves = run_dir / "metrics.jsonl"
    return [training_curves(curves, run_dir / "curves.png")] if "curves" in what and curves.exists() else []


def _bag_of_words(model, sentences):
    """The bag-of-words auxiliary loss of Zhao et al. (2017) as a function of z, when the model has one."""
    if getattr(model, "bow", None) is None:
        return None
    return lambda z: model.bag_of_words_nll(z, sentences)


def _no_pictures(run_dir, config, command: str) -> VaekitError:
    return VaekitError(f"{run_dir} models the latent codes of {config.data.features} (M1+M2), not images: "
                       f"`vaekit {command}` has no pictures to draw for it; `vaekit eval` scores it")
