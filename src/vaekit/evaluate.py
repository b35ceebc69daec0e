"""Honest evaluation: importance-sampled NLL, ELBO, KL and active units on a fixed split.

* NLL: ``-log p(x)`` estimated with K importance samples from q(z|x) (Burda et al. 2016, Sec. 5:
  K = 5000 on MNIST), in nats per example.
* ELBO and its terms ``E_q[log p(x|z)]`` and ``KL(q(z|x) || p(z))`` (one sample of z per example).
* Active units (Burda et al. 2016, Sec. 5.2): dimension u is active when
  ``A_u = Cov_x(E_{q(u|x)}[u]) > 0.01``.
* Mutual information ``I(x; z)`` under q (He et al. 2019), on the first 2000 examples.
* Sentences (:func:`evaluate_text`): the same NLL per sentence (K = 500 by default) and perplexity
  ``exp(sum NLL / tokens)`` over words plus ``</s>`` (the token count is reported); a language model
  without z is scored exactly; reconstruction accuracy is the teacher-forced next-token accuracy given
  ``z = E_q[z|x]``.

The test set is binarised once with a fixed seed (see :mod:`vaekit.data.batching`) and the
importance samples are drawn from a seeded generator, so two evaluations of one checkpoint agree.
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

import torch

from .checkpoint import save_atomic
from .devices import rng_state, set_rng_state, to_device
from .objectives import elbo, log_likelihood

ACTIVE_UNIT_THRESHOLD = 0.01
MI_SENTENCES = 5000  # evaluate_text: MI over all sentences up to this many, else a seeded random subset


@torch.no_grad()
def active_units(model, x: torch.Tensor, batch_size: int = 1000,
                 threshold: float = ACTIVE_UNIT_THRESHOLD) -> tuple[int, torch.Tensor]:
    """Count latent dimensions whose posterior mean varies across ``x`` by more than ``threshold``.

    Returns the count and the per-dimension variances ``A_u`` (shape ``(Z,)``).
    """
    means = torch.cat([model.encode(x[i:i + batch_size]).mean.flatten(1) for i in range(0, len(x), batch_size)])
    variances = means.double().var(dim=0, unbiased=True)
    return int((variances > threshold).sum()), variances.float()


@torch.no_grad()
def mutual_information(q_loc: torch.Tensor, q_scale: torch.Tensor, generator: torch.Generator | None = None
                       ) -> float:
    """``I(x; z)`` under ``q(x, z) = p_data(x) q(z|x)`` for diagonal-Gaussian posteriors, as He et al. (2019):

    ``I = E_x E_{q(z|x)}[log q(z|x)] - E_{q(z)}[log q(z)]`` with the aggregate posterior ``q(z)``
    approximated by the mixture of the N posteriors given (``q_loc``, ``q_scale``: ``(N, Z)``), one
    ``z`` drawn per posterior. The first term is ``-H(q(z|x))`` in closed form. At most ``log N``.
    """
    n, dim = q_loc.shape
    neg_entropy = (-0.5 * dim * (1 + torch.log(torch.tensor(2 * torch.pi, dtype=q_loc.dtype)))
                   - q_scale.log().sum(-1)).mean()
    z = q_loc + q_scale * torch.randn(q_loc.shape, generator=generator, dtype=q_loc.dtype,
                                      device=q_loc.device)   # (N, Z)
    components = torch.distributions.Normal(q_loc[None], q_scale[None])
    log_aggregate = []
    for start in range(0, n, 64):  # log q(z_i | x_j) for a block of i and all j: (64, N), in bounded memory
        block = components.log_prob(z[start:start + 64, None]).sum(-1)
        log_aggregate.append(torch.logsumexp(block, dim=1))
    log_n = torch.log(torch.tensor(float(n), dtype=q_loc.dtype))
    return float(neg_entropy - (torch.cat(log_aggregate) - log_n).mean())


def refine_posterior(model, x, steps: int = 30, lr: float = 0.05, samples: int = 4):
    """Each example's diagonal-Gaussian ``q(z|x)`` refined by gradient ascent on its own ELBO, starting from the
    encoder's output (stochastic VI from the amortized start: Hjelm et al. 2016, Krishnan et al. 2018, Kim et al.
    2018); the model's weights are untouched and get no gradient.

    The loc and log-scale, each ``(B, Z)``, take ``steps`` Adam steps (rate ``lr``) on the mean over ``samples``
    reparameterised draws of ``log p(x|z) + log p(z) - log q(z|x)``. What is left between the amortized q and the
    best diagonal Gaussian for each x (the amortization gap, Cremer et al. 2018) shrinks, so importance sampling
    from the result (``log_likelihood(..., q=refined)``) gives a tighter estimate of the *same* model's log p(x).
    Returns ``Independent(Normal(loc, scale), 1)`` with batch shape ``(B,)``. Runs under autograd whatever the
    caller's grad mode; the model should be in eval mode (no dropout) as for any evaluation.
    """
    from torch.distributions import Independent, Normal

    with torch.no_grad():
        q = model.encode(x)
    base = getattr(q, "base_dist", None)
    if not isinstance(base, Normal):
        raise ValueError(f"refine_posterior needs a diagonal-Gaussian q(z|x) (Independent(Normal)); this model's "
                         f"encoder returns {type(q).__name__}")
    loc = base.loc.detach().clone().requires_grad_()
    log_scale = base.scale.log().detach().clone().requires_grad_()
    optimizer = torch.optim.Adam([loc, log_scale], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            proposal = Independent(Normal(loc, log_scale.exp()), 1)
            z = proposal.rsample((samples,))
            bound = model.decode(z).log_prob(x) + model.prior().log_prob(z) - proposal.log_prob(z)  # (S, B)
            loc.grad, log_scale.grad = torch.autograd.grad(-bound.mean(0).sum(), [loc, log_scale])
            optimizer.step()
    return Independent(Normal(loc.detach(), log_scale.detach().exp()), 1)


@torch.no_grad()
def evaluate(model, x: torch.Tensor, k: int = 5000, batch_size: int = 100, sample_chunk: int = 500,
             seed: int = 0, progress: bool | None = None) -> dict:
    """Evaluate ``model`` on ``x`` of shape ``(N, D)``; returns a dict of plain numbers.

    ``nll`` is the mean importance-sampled ``-log p(x)`` (nats) with ``k`` samples; ``nll_per_example``
    is kept as a list for analysis. Memory is ``O(batch_size * sample_chunk * D)``. Runs on the model's
    device (``x`` is moved there).
    """
    model.eval()
    x = x.to(next(model.parameters()).device)
    if progress is None:
        progress = sys.stderr.isatty()
    state = torch.get_rng_state()
    torch.manual_seed(seed)
    start = time.perf_counter()
    log_px, bounds, recon, kls = [], [], [], []
    batches = range(0, len(x), batch_size)
    if progress:
        from tqdm.auto import tqdm
        batches = tqdm(batches, desc=f"log p(x), K={k}", leave=False, dynamic_ncols=True)
    for i in batches:
        xb = x[i:i + batch_size]
        log_px.append(log_likelihood(model, xb, k=k, sample_chunk=sample_chunk))
        terms = elbo(model, xb)
        bounds.append(terms.bound)
        recon.append(terms.log_px_z)
        kls.append(terms.kl)
    units, variances = active_units(model, x)
    by_layer = None  # a hierarchy's count layer by layer (Burda et al. 2016, Table 1: e.g. "16+5")
    if getattr(model, "hierarchical", False):
        by_layer = [int((v > ACTIVE_UNIT_THRESHOLD).sum()) for v in variances.split(model.sizes)]
    mi = None
    q = model.encode(x[:2000])
    if isinstance(getattr(q, "base_dist", None), torch.distributions.Normal):  # (not a flow: no closed form)
        mi = mutual_information(q.base_dist.loc.double(), q.base_dist.scale.double())
    torch.set_rng_state(state)
    log_px_all = torch.cat(log_px).double()
    return {
        "n": len(x),
        "k": k,
        "nll": -log_px_all.mean().item(),
        "nll_stderr": (log_px_all.std() / len(x) ** 0.5).item() if len(x) > 1 else 0.0,
        "elbo": torch.cat(bounds).double().mean().item(),
        "log_px_z": torch.cat(recon).double().mean().item(),
        "kl": torch.cat(kls).double().mean().item(),
        "active_units": units,
        **({"active_units_by_layer": by_layer} if by_layer else {}),
        "mutual_information": mi,
        "latent_dim": int(variances.numel()),
        "seconds": time.perf_counter() - start,
        "nll_per_example": (-log_px_all).tolist(),
    }


@torch.no_grad()
def evaluate_text(model, batches, k: int = 500, sample_chunk: int = 50, seed: int = 0,
                  progress: bool | None = None, partial: str | Path | None = None,
                  save_every_s: float = 60.0) -> dict:
    """Evaluate a sentence model on ``batches`` (:class:`vaekit.models.SentenceBatch`); plain numbers.

    ``nll`` is nats per sentence (importance-sampled with ``k`` samples for a VAE, exact for a language
    model), ``ppl = exp(sum NLL / tokens)`` with ``tokens`` = words + ``</s>``. For a VAE also the ELBO,
    KL, mutual information (all sentences up to 5000), active units and reconstruction accuracy.

    ``partial`` makes a long scoring resumable (PTB at K = 500 takes about an hour on one core): every
    ``save_every_s`` seconds, at a batch boundary, what has been scored and the random state are written there
    atomically; a later call with the same model, batches, K, chunking and seed continues from that batch and
    returns exactly the figures of an uninterrupted run (then deletes the file). A partial file of anything else,
    or a damaged one, is ignored and scoring starts over.
    """
    model.eval()
    if progress is None:
        progress = sys.stderr.isatty()
    batches = list(batches)
    latent = getattr(model, "encoder", None) is not None
    device = next(model.parameters()).device  # each batch is moved there; what is kept comes back to the CPU
    state = torch.get_rng_state()
    torch.manual_seed(seed)
    start = time.perf_counter()
    acc = {"log_px": [], "bounds": [], "recon": [], "kls": [], "locs": [], "scales": [], "tokens": 0, "correct": 0,
           "next_batch": 0, "seconds": 0.0}
    fingerprint = _evaluation_fingerprint(model, batches, k, sample_chunk, seed) if partial is not None else None
    if partial is not None:
        acc = _resume_partial(Path(partial), fingerprint) or acc
        set_rng_state(acc.pop("cuda_rng", None), device)
        if acc["next_batch"]:
            print(f"continuing the stopped evaluation in {partial} at batch {acc['next_batch'] + 1} of {len(batches)}",
                  file=sys.stderr)
    last_save = time.perf_counter()
    iterator = range(acc["next_batch"], len(batches))
    if progress:
        from tqdm.auto import tqdm
        iterator = tqdm(iterator, desc=f"log p(x), K={k}" if latent else "log p(x)", leave=False, dynamic_ncols=True,
                        total=len(batches), initial=acc["next_batch"])
    for index in iterator:
        batch = to_device(batches[index], device)
        acc["tokens"] += int(batch.lengths.sum())
        if not latent:  # one decoder pass gives the exact log p(x) and the next-token hits
            sentence_log_px, hits = _decode_scores(model, None, batch)
            acc["log_px"].append(sentence_log_px.cpu())
            acc["correct"] += hits
        else:
            acc["log_px"].append(log_likelihood(model, batch, k=k, sample_chunk=sample_chunk).cpu())
            terms = elbo(model, batch)
            acc["bounds"].append(terms.bound.cpu())
            acc["recon"].append(terms.log_px_z.cpu())
            acc["kls"].append(terms.kl.cpu())
            q = model.encode(batch)
            acc["locs"].append(q.base_dist.loc.cpu())
            acc["scales"].append(q.base_dist.scale.cpu())
            acc["correct"] += _decode_scores(model, q.base_dist.loc, batch)[1]
        acc["next_batch"] = index + 1
        if partial is not None and time.perf_counter() - last_save >= save_every_s and index + 1 < len(batches):
            seconds = acc["seconds"] + time.perf_counter() - start
            save_atomic({**acc, "seconds": seconds, "fingerprint": fingerprint, "rng": torch.get_rng_state(),
                         **({"cuda_rng": rng_state(device)} if device.type == "cuda" else {})}, partial)
            last_save = time.perf_counter()
    log_px, bounds, recon, kls, locs, scales = (acc[key] for key in ("log_px", "bounds", "recon", "kls", "locs",
                                                                     "scales"))
    tokens, correct = acc["tokens"], acc["correct"]
    torch.set_rng_state(state)
    log_px_all = torch.cat(log_px).double()
    n = len(log_px_all)
    result = {
        "n": n, "k": k if latent else None, "tokens": tokens,
        "nll": -log_px_all.mean().item(),
        "nll_stderr": (log_px_all.std() / n ** 0.5).item() if n > 1 else 0.0,
        "ppl": float(torch.exp(-log_px_all.sum() / tokens)),
        "reconstruction_accuracy": correct / tokens,
        "seconds": 0.0,
        "nll_per_example": (-log_px_all).tolist(),
    }
    if latent:
        loc, scale = torch.cat(locs), torch.cat(scales)
        variances = loc.double().var(dim=0, unbiased=True)
        # MI over every sentence (batches are ordered by length, so a leading slice would favour short ones)
        pick = torch.randperm(len(loc), generator=torch.Generator().manual_seed(seed))[:MI_SENTENCES]
        result.update({
            "elbo": torch.cat(bounds).double().mean().item(),
            "log_px_z": torch.cat(recon).double().mean().item(),
            "kl": torch.cat(kls).double().mean().item(),
            "active_units": int((variances > ACTIVE_UNIT_THRESHOLD).sum()),
            "latent_dim": int(loc.shape[1]),
            "mutual_information": mutual_information(loc[pick].double(), scale[pick].double(),
                                                     torch.Generator().manual_seed(seed)),
        })
    result["seconds"] = acc["seconds"] + time.perf_counter() - start
    if partial is not None and Path(partial).exists():
        Path(partial).unlink()
    return result


def _evaluation_fingerprint(model, batches, k: int, sample_chunk: int, seed: int) -> str:
    """What a partial evaluation must share with this one to be continued: the weights, the sentences, the
    estimator's settings (a SHA-256 over their bytes)."""
    digest = hashlib.sha256(repr((k, sample_chunk, seed, len(batches))).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    for batch in batches:
        digest.update(batch.tokens.numpy().tobytes())
    return digest.hexdigest()


def _resume_partial(path: Path, fingerprint: str) -> dict | None:
    """The saved state of an interrupted evaluation with this fingerprint (its random state restored), or None."""
    if not path.exists():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # damaged: start over (the file is replaced at the next save)
        return None
    if not isinstance(saved, dict) or saved.get("fingerprint") != fingerprint:
        return None
    torch.set_rng_state(saved.pop("rng"))
    saved.pop("fingerprint")
    return saved


def _decode_scores(model, z, batch) -> tuple[torch.Tensor, int]:
    """One teacher-forced decoder pass given ``z``: ``log p(x|z)`` per sentence ``(B,)`` and the number of
    real tokens whose argmax prediction is right."""
    logits = model.real_token_logits(z, batch, aligned=True)   # (N real tokens, V' >= V; -inf beyond V)
    targets = batch.tokens[batch.mask]
    token_log_px = -torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    per_sentence = logits.new_zeros(batch.mask.shape).masked_scatter(batch.mask, token_log_px).sum(1)
    return per_sentence, int((logits.argmax(-1) == targets).sum())
