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

from .config import RunConfig
from .errors import VaekitError
from .objectives import Terms


class Family:
    """The image VAE's answers; other families override what differs."""

    name = "vae"
    text = False            # sentences rather than pictures
    distributed = True      # trains data-parallel under torchrun
    plots = ("samples", "reconstructions", "manifold", "scatter", "curves", "traversals")

    # --- what is built -------------------------------------------------------------------------------------
    def spec(self, config: RunConfig, data) -> dict:
        from .runs import resolve_likelihood
        return {"shape": list(data.shape), "likelihood": resolve_likelihood(config, data)}

    def build(self, config: RunConfig, spec: dict) -> torch.nn.Module:
        from .models import build_model
        return build_model(config.model, tuple(spec["shape"]), spec["likelihood"])

    def feed(self, config: RunConfig, data, dist):
        from .feeds import ImageFeed
        from .runs import eval_inputs
        return ImageFeed(config, data, dist, eval_inputs(config, data, "val"))

    def estimator(self, config: RunConfig, spec: dict):
        from .estimators import build_estimator
        return build_estimator(config.train, math.prod(spec["shape"]))

    # --- objectives ----------------------------------------------------------------------------------------
    def training_terms(self, module, x, beta: float, capacity: float | None) -> Terms:
        """``module`` is the trainer's :class:`~vaekit.train.ObjectiveModule` (model, objective name, k,
        estimator, free bits, ...)."""
        from .objectives import objective
        return objective(module.name, module.model, x, k=module.k, beta=beta, estimator=module.estimator,
                         free_bits=module.free_bits, capacity=capacity, auxiliary=self._auxiliary(module.model, x))

    def _auxiliary(self, model, x):
        """An auxiliary loss as a function of z (the sentence families' bag of words), or None."""
        return None

    def validation_terms(self, model, x, objective: str) -> Terms:
        from .objectives import elbo
        return elbo(model, x)

    def tokens(self, x) -> int:
        """Tokens (words + ``</s>``) in a training batch; 0 for images."""
        return 0

    # --- what a finished run gives -------------------------------------------------------------------------
    def evaluate(self, config: RunConfig, model, data, split: str, k: int, limit: int, progress) -> dict:
        from .evaluate import evaluate
        from .runs import eval_inputs
        x = eval_inputs(config, data, split)[: limit or None]
        return evaluate(model, x, k=k, batch_size=config.eval.batch_size, sample_chunk=config.eval.sample_chunk,
                        seed=config.eval.seed, progress=progress)

    def plot(self, run_dir: Path, config: RunConfig, model, spec: dict, what: tuple[str, ...], n: int) -> list[Path]:
        from . import plots
        from .runs import eval_inputs, load_data

        shape = tuple(spec["shape"])
        written = []
        if "samples" in what:
            written.append(plots.sample_grid(model, shape, run_dir / "samples.png", n=n))
        written += _curves(run_dir, what)
        if "manifold" in what and model.latent.kind == "gaussian" and model.latent.size == 2:
            written.append(plots.manifold(model, shape, run_dir / "manifold.png"))
        if {"reconstructions", "scatter", "traversals"} & set(what):
            data = load_data(config.data)
            x = eval_inputs(config, data, "test")
            if "reconstructions" in what:
                written.append(plots.reconstructions(model, x, shape, run_dir / "reconstructions.png", n=32))
            if "traversals" in what and model.latent.kind == "gaussian":
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
        from .runs import eval_inputs, load_data
        x = eval_inputs(config, load_data(config.data), "test")
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
        from .feeds import SemiSupervisedFeed
        from .semi_supervised import m2_inputs
        return SemiSupervisedFeed(config, data, dist, m2_inputs(config, data, "val"), self._features(config))

    def _features(self, config):
        return None

    def estimator(self, config, spec):
        from .estimators import Enumerate
        return super().estimator(config, spec) or Enumerate()  # the label is summed out unless told otherwise

    def training_terms(self, module, x, beta, capacity):
        from .semi_supervised import semi_supervised_loss
        return semi_supervised_loss(module.model, x, module.estimator, module.classifier_weight)

    def validation_terms(self, model, x, objective):
        from .estimators import Enumerate
        from .semi_supervised import unlabelled_bound
        return unlabelled_bound(model, x, Enumerate())  # the bound on log p(x), label summed out

    def evaluate(self, config, model, data, split, k, limit, progress):
        from .semi_supervised import evaluate_m2, m2_inputs
        x, labels = m2_inputs(config, data, split), data.split(split)[1]
        return evaluate_m2(model, x[: limit or None], labels[: limit or None], seed=config.eval.seed)

    def plot(self, run_dir, config, model, spec, what, n):
        from . import plots
        from .runs import eval_inputs, load_data
        shape = tuple(spec["shape"])
        written = []
        if "samples" in what:  # one class per column
            written.append(plots.sample_grid(model, shape, run_dir / "samples.png", n=100))
        if "analogies" in what:
            x = eval_inputs(config, load_data(config.data), "test")[:10]
            written.append(plots.analogies(model, x, shape, run_dir / "analogies.png"))
        return written + _curves(run_dir, what)


class StackedSemiSupervised(SemiSupervised):
    """M1+M2 (Kingma et al. 2014, Sec. 3.1.3): M2 on the Gaussian codes of a trained VAE (``data.features``),
    so its 'images' are real-valued vectors of the VAE's latent size."""

    name = "m1+m2"
    plots = ("curves",)

    def spec(self, config, data):
        return {"shape": [1, 1, self._features(config).dim], "likelihood": "gaussian"}

    def _features(self, config):
        from .semi_supervised import LatentFeatures
        return LatentFeatures(config.data.features)

    def draw(self, run_dir, config, model, spec, out, n, seed):
        raise _no_pictures(run_dir, config, "sample")

    def reconstruct(self, run_dir, config, model, spec, out, n):
        raise _no_pictures(run_dir, config, "reconstruct")


class ConditionalImage(Family):
    """The CVAE (``model.arch = cvae``) and its deterministic baseline (``cvae-nn``) of Sohn et al. (2015):
    quadrant completion (``data.condition = quadrants``) or generation by class (``label``)."""

    name = "cvae"
    plots = ("samples", "completions", "curves")

    def build(self, config, spec):
        from .conditional import build_conditional_model
        return build_conditional_model(config, tuple(spec["shape"]))

    def feed(self, config, data, dist):
        from .feeds import ClassConditionFeed, QuadrantFeed
        from .runs import eval_inputs
        feed = ClassConditionFeed if config.data.condition == "label" else QuadrantFeed
        return feed(config, data, dist, eval_inputs(config, data, "val"))

    def training_terms(self, module, x, beta, capacity):
        from .conditional import conditional_objective
        return conditional_objective(module.name, module.model, x, beta, module.hybrid_alpha)

    def validation_terms(self, model, x, objective):
        from .conditional import conditional_objective
        # the baseline's exact log p(x|c); the GSNN bound for a GSNN (its q(z|x,c) never trains); else the ELBO
        return conditional_objective(objective if objective in ("mle", "gsnn") else "elbo", model, x)

    def evaluate(self, config, model, data, split, k, limit, progress):
        from .conditional import condition_batches, evaluate_conditional
        from .runs import eval_inputs
        x = eval_inputs(config, data, split)[: limit or None]
        batches = condition_batches(x, data.split(split)[1], config, config.eval.batch_size)
        # a GSNN never trains q(z|x,c): its likelihood is estimated with the prior network as the proposal
        proposal = "prior" if config.train.objective == "gsnn" else "posterior"
        return evaluate_conditional(model, batches, samples=k, seed=config.eval.seed, proposal=proposal)

    def plot(self, run_dir, config, model, spec, what, n):
        written = []
        if {"samples", "completions"} & set(what):
            written.append(self.draw(run_dir, config, model, spec, None, 0, 0))
        return written + _curves(run_dir, what)

    def draw(self, run_dir, config, model, spec, out, n, seed):
        """By class: one class per row. By quadrants: completions of test images from their given quadrants."""
        from .plots import class_samples, completions
        from .runs import eval_inputs, load_data
        shape = tuple(spec["shape"])
        if config.data.condition == "label":
            return class_samples(model, config.model.categories, shape, out or run_dir / "samples.png",
                                 per_class=n or 10, seed=seed)
        x = eval_inputs(config, load_data(config.data), "test")[: n or 8]
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
        from .runs import build_sentence_model, run_vocab
        return build_sentence_model(config.model, run_vocab(spec), len(spec.get("label_names") or ()))

    def feed(self, config, data, dist):
        from .feeds import TextFeed
        return TextFeed(config, data, dist)

    def estimator(self, config, spec):
        return None

    def _auxiliary(self, model, x):
        return _bag_of_words(model, x)

    def validation_terms(self, model, x, objective):
        from .objectives import elbo, exact_log_likelihood
        return exact_log_likelihood(model, x) if objective == "mle" else elbo(model, x)

    def tokens(self, x) -> int:
        return int(x.lengths.sum())

    def evaluate(self, config, model, data, split, k, limit, progress):
        from .evaluate import evaluate_text
        from .report import text_batches
        return evaluate_text(model, text_batches(data, split, config.eval.batch_size, limit), k=k,
                             sample_chunk=config.eval.sample_chunk, seed=config.eval.seed, progress=progress)

    def plot(self, run_dir, config, model, spec, what, n):
        return _curves(run_dir, what)  # samples are text: `vaekit sample`


class ConditionalSentence(Sentence):
    """A sentence VAE or LM conditioned on each sentence's label (a Brown genre): q(z|x,c), p(z|c), p(x|z,c)
    (``model.condition_embedding > 0``); scored by -log p(x|c)."""

    name = "sentence-cvae"

    def spec(self, config, data):
        return {**super().spec(config, data), "label_names": list(data.label_names or ())}

    def feed(self, config, data, dist):
        from .feeds import TextFeed
        return TextFeed(config, data, dist, conditional=True)

    def training_terms(self, module, x, beta, capacity):
        from .conditional import conditional_objective
        return conditional_objective(module.name, module.model, x, beta, module.hybrid_alpha,
                                     _bag_of_words(module.model, x.x))

    def validation_terms(self, model, x, objective):
        from .conditional import conditional_objective
        return conditional_objective("mle" if objective == "mle" else "elbo", model, x)

    def tokens(self, x) -> int:
        return int(x.x.lengths.sum())

    def evaluate(self, config, model, data, split, k, limit, progress):
        from .conditional import evaluate_conditional
        from .report import text_batches
        batches = text_batches(data, split, config.eval.batch_size, limit, conditional=True)
        return evaluate_conditional(model, batches, samples=k, seed=config.eval.seed)


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
