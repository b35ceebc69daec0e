"""Conditional models (Sohn et al. 2015): objectives, the quadrant-completion task, and evaluation.

Objectives for a :class:`~vaekit.models.cvae.CVAE`, per example (Sohn et al., Sec. 4):

    ELBO    L_CVAE(x|c) = E_{q(z|x,c)}[log p(x|z, c)] - KL(q(z|x, c) || p(z|c))   (eq. 4)
    GSNN    L_GSNN(x|c) = E_{p(z|c)}[log p(x|z, c)]                                (eq. 8, one sample)
    hybrid  alpha * L_CVAE + (1 - alpha) * L_GSNN                                  (eq. 9)

The KL between two Gaussians (recognition and prior network) is closed-form. The figure of merit is the
conditional log-likelihood ``log p(x|c)``, estimated by importance sampling with ``q(z|x, c)`` as the
proposal (Sohn et al. use S = 100; :func:`conditional_log_likelihood`); for the deterministic baseline it
is exact.

MNIST quadrant completion (Sohn et al., Sec. 5.1): ``c`` holds the pixels of the given quadrants and ``x``
those of the others. Given quadrants follow the Pyro CVAE example: 1 = bottom-left, 2 = the left half,
3 = every quadrant but the top-right.

Generation by class (``data.condition = "label"``): ``c`` is the one-hot class of the image (its digit)
and ``x`` the whole image, so that ``p(z|c)`` and ``p(x|z, c)`` draw digits of a chosen class.

Sentences conditioned on a label (a Brown corpus genre) use the same objectives and estimator with
``x`` a :class:`~vaekit.models.sentence_vae.SentenceBatch` and ``c`` the label ids; the label-conditional
language model plays the deterministic baseline (``predict(c)``), and :func:`evaluate_conditional` also
reports perplexity over the sentences' tokens.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch.distributions import kl_divergence

from .devices import to_device
from .models.cvae import CVAE, ConditionalNN
from .objectives import Terms

QUADRANTS = {1: ("bottom-left",), 2: ("top-left", "bottom-left"), 3: ("top-left", "bottom-left", "bottom-right")}


@dataclass
class ConditionalBatch:
    """Targets ``x`` ``(B, Dx)`` and conditions ``c`` ``(B, Dc)``; or sentences ``x`` (a ``SentenceBatch``) and
    their label ids ``c`` ``(B,)``."""

    x: torch.Tensor
    c: torch.Tensor

    def __len__(self) -> int:
        return len(self.x)


def quadrant_mask(given: int, height: int = 28, width: int = 28) -> torch.Tensor:
    """``(H * W,)`` bool, True on the pixels of the ``given`` (1, 2 or 3) observed quadrants."""
    if given not in QUADRANTS:
        raise ValueError(f"{given} given quadrants: choose 1, 2 or 3")
    mask = torch.zeros(height, width, dtype=torch.bool)
    h, w = height // 2, width // 2
    corners = {"top-left": (0, 0), "top-right": (0, w), "bottom-left": (h, 0), "bottom-right": (h, w)}
    for name in QUADRANTS[given]:
        r, c = corners[name]
        mask[r:r + h, c:c + w] = True
    return mask.flatten()


def split(images: torch.Tensor, mask: torch.Tensor) -> ConditionalBatch:
    """Images ``(B, H*W)`` -> targets (the pixels outside ``mask``) and conditions (the pixels inside)."""
    return ConditionalBatch(x=images[:, ~mask], c=images[:, mask])


def join(c: torch.Tensor, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`split`: ``(..., H*W)`` images from conditions and targets."""
    out = c.new_zeros(*torch.broadcast_shapes(c.shape[:-1], x.shape[:-1]), mask.numel())
    out[..., mask] = c.expand(*out.shape[:-1], -1)
    out[..., ~mask] = x
    return out


def has_latent(model) -> bool:
    """True for a model with a code z (CVAE, conditional sentence VAE); False for a deterministic baseline
    (:class:`ConditionalNN`, the conditional language model), whose ``log p(x|c)`` is exact."""
    return getattr(model, "has_latent", hasattr(model, "encode"))


def conditional_elbo(model, batch: ConditionalBatch, beta: float = 1.0, auxiliary=None) -> Terms:
    """Sohn et al. eq. 4, one reparameterised ``z ~ q(z|x, c)``; ``auxiliary(z)`` (e.g. the bag-of-words loss of
    Zhao et al. 2017), if given, is added to the loss, not to the bound."""
    q = model.encode(batch.x, batch.c)
    z = q.rsample()
    log_px = model.decode(z, batch.c).log_prob(batch.x)
    kl = kl_divergence(q, model.prior(batch.c))
    bound = log_px - kl
    loss = -(log_px - beta * kl)
    if auxiliary is not None:
        loss = loss + auxiliary(z)
    return Terms(loss=loss, bound=bound, log_px_z=log_px, kl=kl)


def gsnn_bound(model, batch: ConditionalBatch) -> Terms:
    """Sohn et al. eq. 8: ``log p(x|z, c)`` at one ``z ~ p(z|c)`` (reparameterised through the prior network)."""
    z = model.prior(batch.c).rsample()
    log_px = model.decode(z, batch.c).log_prob(batch.x)
    return Terms(loss=-log_px, bound=log_px, log_px_z=log_px, kl=torch.zeros_like(log_px))


def hybrid(model, batch: ConditionalBatch, alpha: float) -> Terms:
    """Sohn et al. eq. 9: ``alpha * L_CVAE + (1 - alpha) * L_GSNN``; ``bound`` is the ELBO."""
    cvae, gsnn = conditional_elbo(model, batch), gsnn_bound(model, batch)
    return Terms(loss=alpha * cvae.loss + (1 - alpha) * gsnn.loss, bound=cvae.bound, log_px_z=cvae.log_px_z,
                 kl=cvae.kl)


def baseline_log_likelihood(model, batch: ConditionalBatch) -> Terms:
    """The deterministic baseline's exact ``log p(x|c)``."""
    log_px = model.predict(batch.c).log_prob(batch.x)
    return Terms(loss=-log_px, bound=log_px.detach(), log_px_z=log_px.detach(), kl=torch.zeros_like(log_px))


def conditional_objective(name: str, model, batch: ConditionalBatch, beta: float = 1.0, alpha: float = 0.5,
                          auxiliary=None) -> Terms:
    """Dispatch: ``mle`` (the baseline), ``elbo`` (CVAE), ``gsnn`` or ``hybrid``."""
    if name == "mle":
        return baseline_log_likelihood(model, batch)
    if name == "elbo":
        return conditional_elbo(model, batch, beta, auxiliary)
    if name == "gsnn":
        return gsnn_bound(model, batch)
    if name == "hybrid":
        return hybrid(model, batch, alpha)
    raise ValueError(f"unknown conditional objective {name!r}: choose elbo, gsnn, hybrid or mle")


@torch.no_grad()
def conditional_log_likelihood(model, batch: ConditionalBatch, samples: int = 100, chunk: int = 100,
                               proposal: str = "posterior") -> torch.Tensor:
    """``log p(x|c) ~= logsumexp_s [log p(x|z_s, c) + log p(z_s|c) - log r(z_s)] - log S``, ``z_s ~ r``, with the
    proposal ``r = q(z|x, c)`` (``proposal = "posterior"``) or ``r = p(z|c)`` (``"prior"``: the plain Monte Carlo
    average of ``p(x|z_s, c)``, for a model trained as a GSNN, whose recognition network never trained); exact
    for the deterministic baseline. Returns ``(B,)``."""
    if not has_latent(model):
        return model.predict(batch.c).log_prob(batch.x)
    if proposal not in ("posterior", "prior"):
        raise ValueError(f"proposal = {proposal!r}: choose posterior or prior")
    prior = model.prior(batch.c)
    q = model.encode(batch.x, batch.c) if proposal == "posterior" else prior
    parts, left = [], samples
    while left > 0:
        s = min(chunk, left)
        z = q.sample((s,))
        log_px = model.decode(z, batch.c).log_prob(batch.x)
        log_w = log_px if proposal == "prior" else log_px + prior.log_prob(z) - q.log_prob(z)
        parts.append(torch.logsumexp(log_w, 0))
        left -= s
    return torch.logsumexp(torch.stack(parts), 0) - math.log(samples)


@torch.no_grad()
def evaluate_conditional(model, batches, samples: int = 100, seed: int = 0, proposal: str = "posterior") -> dict:
    """Mean negative conditional log-likelihood (importance-sampled with ``proposal``, see
    :func:`conditional_log_likelihood`), the ELBO and KL (latent models); for sentences also the token count
    (words + ``</s>``) and the perplexity ``exp(sum NLL / tokens)``. Runs on the model's device."""
    model.eval()
    start = time.perf_counter()
    latent = has_latent(model)
    nll, elbo, kl = [], [], []
    tokens = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        device = next(model.parameters()).device
        for batch in batches:
            batch = to_device(batch, device)
            nll.append(-conditional_log_likelihood(model, batch, samples, proposal=proposal))
            tokens += int(batch.x.lengths.sum()) if hasattr(batch.x, "lengths") else 0
            if latent:
                terms = conditional_elbo(model, batch)
                elbo.append(terms.bound)
                kl.append(terms.kl)
    values = torch.cat(nll).double()
    result = {"n": len(values), "k": samples if latent else None, "proposal": proposal if latent else None,
              "ncll": values.mean().item(),
              "ncll_stderr": (values.std() / len(values) ** 0.5).item() if len(values) > 1 else 0.0,
              "elbo": torch.cat(elbo).double().mean().item() if elbo else None,
              "kl": torch.cat(kl).double().mean().item() if kl else None,
              "seconds": time.perf_counter() - start}
    if tokens:
        result.update(tokens=tokens, ppl=math.exp(values.sum().item() / tokens))
    return result


def label_condition(labels: torch.Tensor, classes: int) -> torch.Tensor:
    """One-hot conditions ``(B, classes)`` of class ids ``(B,)``."""
    return torch.nn.functional.one_hot(labels.long(), classes).float()


def build_conditional_model(config, shape: tuple[int, int, int]):
    """The CVAE (``model.arch = cvae``) or its deterministic baseline (``cvae-nn``) for quadrant completion
    of ``shape`` images with ``config.data.quadrants`` given, or for generation by class
    (``data.condition = label``: c is one of ``model.categories`` classes, x the whole image)."""
    if config.data.condition == "label":
        c_dim, x_dim = config.model.categories, math.prod(shape)
    else:
        mask = quadrant_mask(config.data.quadrants, shape[1], shape[2])
        if shape[0] != 1:
            raise ValueError("quadrant completion is defined for greyscale images")
        c_dim, x_dim = int(mask.sum()), int((~mask).sum())
    m = config.model
    if m.arch == "cvae-nn":
        return ConditionalNN(x_dim, c_dim, m.hidden, m.activation)
    return CVAE(x_dim, c_dim, m.latent, m.hidden, m.activation, prior_network=m.prior_network)


def condition_batches(images: torch.Tensor, labels: torch.Tensor | None, config, batch_size: int
                      ) -> list[ConditionalBatch]:
    """Fixed evaluation batches of ``images`` ``(N, H*W)``: split for ``config.data.quadrants``, or paired with
    their one-hot ``labels`` when ``config.data.condition = label``."""
    if config.data.condition == "label":
        c = label_condition(labels[: len(images)], config.model.categories)
        return [ConditionalBatch(images[i:i + batch_size], c[i:i + batch_size])
                for i in range(0, len(images), batch_size)]
    return quadrant_batches(images, config, batch_size)


def quadrant_batches(images: torch.Tensor, config, batch_size: int) -> list[ConditionalBatch]:
    """Fixed evaluation batches of ``images`` ``(N, H*W)`` split for ``config.data.quadrants``."""
    side = int(round(images.shape[1] ** 0.5))
    mask = quadrant_mask(config.data.quadrants, side, side)
    return [split(images[i:i + batch_size], mask) for i in range(0, len(images), batch_size)]
