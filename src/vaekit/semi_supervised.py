"""Semi-supervised learning with the M2 model (Kingma et al. 2014, Sec. 3.1.2): objectives and labelled subsets.

For a labelled pair, the bound on ``log p(x, y)`` is (the paper's eq. 6, as a bound rather than its negative)

    L(x, y) = E_{q(z|x,y)}[log p(x|y, z)] + log p(y) - KL(q(z|x, y) || p(z)),

and for an unlabelled image ``y`` is a latent variable (eq. 7):

    U(x) = sum_y q(y|x) L(x, y) + H(q(y|x)) = E_{q(y|x)}[log p(x|y,z) - KL_z] - KL(q(y|x) || p(y)).

The expectation over ``y`` is the job of a gradient estimator from :mod:`vaekit.estimators`: exact
enumeration over the C classes (the paper's choice), Gumbel-softmax (Jang et al. 2017, Sec. 4.3) or the
score function with a baseline. ``z`` is always reparameterised.

The training loss (eq. 9) adds the classifier's cross-entropy on labelled data with weight alpha. Each step
sees a batch of labelled images beside the unlabelled one, and the loss is

    loss = mean_u[-U(x)] + w * (mean_l[-L(x, y)] + alpha * mean_l[-log q(y|x)]).

The paper sums ``L`` and ``U`` over all N points and puts ``alpha = 0.1 N`` on the labelled mean. Two weightings
(``train.ssl_weighting``):

* ``upweighted`` (vaekit's default): ``w = 1`` and ``alpha = 0.1 N / N_l`` (:func:`default_classifier_weight`), so a
  labelled example weighs ``N_u / N_l`` unlabelled ones, in ``L`` and in the cross-entropy alike;
* ``paper``: ``w = N_l / N_u``, the paper's eq. 9 divided by ``N_u`` (each labelled example weighs one unlabelled
  one; the cross-entropy weighs ``0.1 N / N_u`` ~ 0.1 on the labelled mean), as in the code released with it,
  whose steps hold one labelled image beside 500 unlabelled ones.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.distributions import kl_divergence

from .errors import CheckpointError, ConfigError
from .estimators import Enumerate
from .objectives import Terms


@dataclass
class LabelledBatch:
    """One step of semi-supervised training: unlabelled images ``(B_u, D)``, labelled ``(B_l, D)``, their
    classes ``(B_l,)`` int64, and the weight ``w`` of the labelled terms against the unlabelled mean."""

    unlabelled: torch.Tensor
    labelled: torch.Tensor
    labels: torch.Tensor
    labelled_weight: float = 1.0

    def __len__(self) -> int:
        return len(self.unlabelled)


def labelled_bound(model, x: torch.Tensor, y: torch.Tensor) -> Terms:
    """``L(x, y)`` per example for one-hot (or relaxed) ``y`` ``(..., C)``; one reparameterised ``z``."""
    q_z = model.encode_z(x, y)
    z = q_z.rsample()
    log_px = model.decode(z, y).log_prob(x)
    kl_z = kl_divergence(q_z, model.prior_z())
    log_py = (y * model.prior_y().logits).sum(-1)
    bound = log_px + log_py - kl_z
    return Terms(loss=-bound, bound=bound, log_px_z=log_px, kl=kl_z)


def unlabelled_bound(model, x: torch.Tensor, estimator) -> Terms:
    """``U(x)`` per example ``(B,)``. ``estimator`` (e.g. :class:`~vaekit.estimators.Enumerate`) takes the
    expectation of ``f(y) = log p(x|y,z) - KL(q(z|x,y) || p(z))`` over ``q(y|x)``; the KL of ``q(y|x)`` from the
    uniform prior is closed-form. ``loss`` is what to differentiate (a surrogate for a score function),
    ``kl`` is ``KL(q(y|x) || p(y))``."""
    q_y = model.encode_y(x)

    def f(y: torch.Tensor) -> torch.Tensor:
        q_z = model.encode_z(x, y)
        z = q_z.rsample()
        return model.decode(z, y).log_prob(x) - kl_divergence(q_z, model.prior_z())

    estimate = estimator(q_y, f, x)
    kl_y = kl_divergence(q_y, model.prior_y())
    bound = estimate.value - kl_y
    loss = -(estimate.surrogate - kl_y)
    if estimate.aux_loss is not None:
        loss = loss + estimate.aux_loss
    return Terms(loss=loss, bound=bound, log_px_z=estimate.value, kl=kl_y)


def semi_supervised_loss(model, batch: LabelledBatch, estimator, classifier_weight: float) -> Terms:
    """Kingma et al. (2014) eq. 9 for one step (weighted as the module docstring says): per-unlabelled-example
    terms whose batch mean is the loss (the labelled part, a scalar, is spread evenly over them). ``bound`` and
    ``kl`` are the unlabelled ones."""
    terms = unlabelled_bound(model, batch.unlabelled, estimator)
    labelled_loss = torch.zeros((), dtype=terms.loss.dtype, device=terms.loss.device)
    if len(batch.labels):
        y = F.one_hot(batch.labels, model.classes).to(batch.labelled.dtype)
        labelled = labelled_bound(model, batch.labelled, y)
        cross_entropy = F.cross_entropy(model.encode_y(batch.labelled).logits, batch.labels)
        labelled_loss = batch.labelled_weight * (labelled.loss.mean() + classifier_weight * cross_entropy)
    return Terms(loss=terms.loss + labelled_loss, bound=terms.bound, log_px_z=terms.log_px_z, kl=terms.kl)


def default_classifier_weight(n_total: int, n_labelled: int) -> float:
    """The paper's ``alpha = 0.1 N`` expressed per labelled example: ``0.1 N / N_l``."""
    return 0.1 * n_total / max(1, n_labelled)


def draw_labelled(labels: torch.Tensor, count: int, seed: int, classes: int = 10) -> torch.Tensor:
    """Indices of ``count`` labelled examples, ``count / classes`` of each class (Kingma et al.'s balanced
    draw), chosen by ``seed``: ``(count,)`` int64, sorted."""
    if count % classes:
        raise ValueError(f"{count} labelled examples cannot be split evenly over {classes} classes: "
                         f"use a multiple of {classes} (e.g. 100, 600, 1000, 3000)")
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for c in range(classes):
        members = (labels == c).nonzero().squeeze(1)
        if len(members) < count // classes:
            raise ValueError(f"class {c} has only {len(members)} training examples; {count // classes} are needed")
        chosen.append(members[torch.randperm(len(members), generator=generator)[: count // classes]])
    return torch.cat(chosen).sort().values


@torch.no_grad()
def error_rate(model, x: torch.Tensor, labels: torch.Tensor, batch_size: int = 2000) -> float:
    """Percentage of ``x`` that ``argmax_y q(y|x)`` misclassifies."""
    wrong = sum(int((model.classify(x[i:i + batch_size]) != labels[i:i + batch_size]).sum())
                for i in range(0, len(x), batch_size))
    return 100.0 * wrong / max(1, len(x))


@torch.no_grad()
def evaluate_m2(model, x: torch.Tensor, labels: torch.Tensor, batch_size: int = 500, seed: int = 0) -> dict:
    """Test classification error of ``q(y|x)`` and the unlabelled bound ``U(x)`` (label summed out exactly), on
    the model's device."""
    model.eval()
    device = next(model.parameters()).device
    x, labels = x.to(device), labels.to(device)
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        terms = [unlabelled_bound(model, x[i:i + batch_size], Enumerate()) for i in range(0, len(x), batch_size)]
    bound = torch.cat([t.bound for t in terms]).double()
    return {"n": len(x), "error_pct": error_rate(model, x, labels), "elbo": bound.mean().item(),
            "kl_y": torch.cat([t.kl for t in terms]).double().mean().item(), "seconds": time.perf_counter() - start}


class LatentFeatures:
    """M1 of Kingma et al. (2014), Sec. 3.1.1: a trained Gaussian VAE whose posterior ``q(z1|x)`` replaces the
    images for M2 (the stacked "M1+M2"). Training batches draw ``z1 ~ q(z1|x)`` afresh; evaluation uses the
    posterior mean. ``run_dir`` is an ordinary vaekit run of a Gaussian VAE on the same images.

    With ``reference`` images given, only M1's active dimensions are kept: those whose posterior mean varies
    over ``reference`` with variance above :data:`vaekit.evaluate.ACTIVE_UNIT_THRESHOLD` (0.01, i.e. a standard
    deviation above 0.1, as the code released with Kingma et al. selects them). An inactive dimension has
    ``q(z1_j|x) ~= N(0, 1)`` for every image, so a sampled feature there is pure noise to M2 and its classifier.
    """

    def __init__(self, run_dir: str, reference: torch.Tensor | None = None):
        from .evaluate import ACTIVE_UNIT_THRESHOLD, active_units
        from .models import VAE
        from .runs import load_model

        try:
            _, model, _ = load_model(run_dir)
        except CheckpointError:
            raise ConfigError(f"data.features = {run_dir!r}: no trained run there; train M1 first, e.g. "
                              f"`vaekit train recipes/kingma_m1.toml --out {run_dir}`") from None
        if not isinstance(model, VAE) or model.latent.kind != "gaussian":
            raise ConfigError(f"data.features = {run_dir!r} is not a Gaussian VAE run (M1 must have a Gaussian z)")
        for p in model.parameters():
            p.requires_grad_(False)
        self.model = model
        self.keep = None  # indices of the dimensions passed on (None: all)
        if reference is not None:
            with torch.no_grad():
                _, variances = active_units(model, reference)
            self.keep = torch.nonzero(variances > ACTIVE_UNIT_THRESHOLD).squeeze(1)
            if len(self.keep) == 0:
                raise ConfigError(f"data.features = {run_dir!r}: M1 has no active latent dimension to pass on; "
                                  "train M1 longer or set data.features_active_only = false")
        self.dim = model.latent_dim if self.keep is None else len(self.keep)

    def _select(self, z: torch.Tensor) -> torch.Tensor:
        return z if self.keep is None else z.index_select(-1, self.keep)

    @torch.no_grad()
    def sample(self, x: torch.Tensor) -> torch.Tensor:
        return self._select(self.model.encode(x).sample())

    @torch.no_grad()
    def mean(self, x: torch.Tensor, batch_size: int = 5000) -> torch.Tensor:
        return torch.cat([self._select(self.model.encode(x[i:i + batch_size]).mean)
                          for i in range(0, len(x), batch_size)])


ACTIVE_REFERENCE_IMAGES = 5000  # training images over which M1's active dimensions are counted


def latent_features(config, data=None) -> LatentFeatures:
    """The M1 of ``config.data.features``, keeping only its active dimensions when
    ``config.data.features_active_only`` (counted on the first training images, as M1 reads them: binarised with
    a fixed seed, or their grey levels under ``data.features_from = "intensities"``)."""
    from .runs import load_data

    reference = None
    if config.data.features_active_only:
        data = data if data is not None else load_data(config.data)
        reference = feature_inputs(config, data, "train")[:ACTIVE_REFERENCE_IMAGES]
    return LatentFeatures(config.data.features, reference)


def reads_intensities(config) -> bool:
    """Whether M1 encodes the images' grey levels ``x / max`` rather than binarised images
    (``data.features_from = "intensities"``): the code released with Kingma et al. (2014) feeds M1's encoder the
    grey-level images when it computes features for M2, though M1 is trained on binarised ones."""
    return bool(config.data.features) and config.data.features_from == "intensities"


def feature_inputs(config, data, split: str) -> torch.Tensor:
    """The fixed float32 images of an evaluation split as M1 (or M2 alone) reads them: binarised once with a
    fixed seed (:func:`vaekit.runs.eval_inputs`), or their grey levels when :func:`reads_intensities`."""
    from .data import to_float
    from .runs import eval_inputs

    if reads_intensities(config):
        return to_float(data.split(split)[0], data.max_value)
    return eval_inputs(config, data, split)


def m2_inputs(config, data, split: str) -> torch.Tensor:
    """What M2 sees of an evaluation split: the fixed images, or their M1 posterior means (``data.features``)."""
    x = feature_inputs(config, data, split)
    return latent_features(config, data).mean(x) if config.data.features else x
