"""Disentanglement metrics on data with known generative factors (dSprites and the like).

Every metric takes the same three callables, so it works on any data set with ground-truth factors:

    sample_factors(n, rng) -> (n, K) int   factor classes drawn uniformly
    render(factors)        -> x            observations of those factors
    encode(x)              -> (n, Z)       the representation (for a VAE, the posterior means)

* :func:`betavae_score` -- Higgins et al. (2017), Sec. 3: fix one factor in L pairs of samples, average
  the absolute differences of their codes, and let a linear classifier name the fixed factor; the score
  is its held-out accuracy (chance = 1/K).
* :func:`factorvae_score` -- Kim & Mnih (2018), Sec. 4: codes are divided by their standard deviation over
  the data; in a batch with one factor fixed, the latent dimension of least variance votes for it; the
  score is the accuracy of the majority-vote classifier (dimension -> factor) on held-out votes.
* :func:`mutual_information_gap` -- Chen et al. (2018), Sec. 5: with codes discretised into bins, the gap
  between the two largest ``I(z_j; v_k)`` per factor, divided by ``H(v_k)``, averaged over factors.

Defaults follow Locatello et al. (2019) where affordable on a CPU (batch 64; 20 bins for MIG); the number
of training and evaluation points is a parameter (their 10,000 / 5,000 cost ~1M images per score).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

Sampler = Callable[[int, np.random.Generator], np.ndarray]
Renderer = Callable[[np.ndarray], object]
Encoder = Callable[[object], np.ndarray]


def _codes(encode: Encoder, render: Renderer, factors: np.ndarray) -> np.ndarray:
    return np.asarray(encode(render(factors)), dtype=np.float64)


def _fixed_factor_batch(sample_factors: Sampler, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` factor draws sharing the value of factor ``k`` (itself drawn uniformly)."""
    factors = sample_factors(n, rng)
    factors[:, k] = sample_factors(1, rng)[0, k]
    return factors


def _logistic_regression(x: np.ndarray, y: np.ndarray, classes: int, steps: int = 500) -> Callable:
    """A multinomial linear classifier fitted by L-BFGS (features standardised); returns ``predict(x)``."""
    mean, std = x.mean(0), x.std(0) + 1e-8
    xt = torch.tensor((x - mean) / std, dtype=torch.float64)
    yt = torch.tensor(y)
    layer = torch.nn.Linear(x.shape[1], classes).double()
    opt = torch.optim.LBFGS(layer.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(layer(xt), yt) + 1e-4 * layer.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return lambda z: layer(torch.tensor((z - mean) / std, dtype=torch.float64)).argmax(1).numpy()


def betavae_score(encode: Encoder, sample_factors: Sampler, render: Renderer, n_factors: int,
                  n_train: int = 1000, n_eval: int = 500, batch: int = 64, seed: int = 0) -> float:
    """Higgins et al. (2017): accuracy of a linear classifier predicting the fixed factor from
    ``mean_l |z(x_l) - z(x'_l)|`` over ``batch`` pairs that share it."""
    rng = np.random.default_rng(seed)

    def points(n):
        features, targets = [], []
        for _ in range(n):
            k = int(rng.integers(n_factors))
            a = _fixed_factor_batch(sample_factors, k, batch, rng)
            b = sample_factors(batch, rng)
            b[:, k] = a[:, k]
            features.append(np.abs(_codes(encode, render, a) - _codes(encode, render, b)).mean(0))
            targets.append(k)
        return np.stack(features), np.array(targets)

    x_train, y_train = points(n_train)
    x_eval, y_eval = points(n_eval)
    predict = _logistic_regression(x_train, y_train, n_factors)
    return float((predict(x_eval) == y_eval).mean())


def factorvae_score(encode: Encoder, sample_factors: Sampler, render: Renderer, n_factors: int,
                    n_train: int = 1000, n_eval: int = 500, batch: int = 64, n_global: int = 10000,
                    prune: float = 0.05, seed: int = 0) -> float:
    """Kim & Mnih (2018): accuracy of the majority-vote classifier from the least-variable (normalised)
    latent dimension to the fixed factor. Dimensions whose variance over the data is below ``prune``
    (collapsed units) take no part; with none left the score is 0."""
    rng = np.random.default_rng(seed)
    codes = _codes(encode, render, sample_factors(n_global, rng))
    scale = codes.std(0)
    active = scale ** 2 >= prune
    if not active.any():
        return 0.0

    def votes(n):
        out = np.zeros((n, 2), dtype=np.int64)
        for i in range(n):
            k = int(rng.integers(n_factors))
            z = _codes(encode, render, _fixed_factor_batch(sample_factors, k, batch, rng))[:, active] / scale[active]
            out[i] = (np.argmin(z.var(0, ddof=1)), k)
        return out

    train, evaluation = votes(n_train), votes(n_eval)
    table = np.zeros((int(active.sum()), n_factors), dtype=np.int64)
    np.add.at(table, (train[:, 0], train[:, 1]), 1)
    vote = table.argmax(1)
    return float((vote[evaluation[:, 0]] == evaluation[:, 1]).mean())


def _discrete_mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    """``I(a; b)`` in nats for two integer sequences, from their joint histogram."""
    joint = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(joint, (a, b), 1.0)
    joint /= joint.sum()
    pa, pb = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])).sum())


def mutual_information_gap(encode: Encoder, sample_factors: Sampler, render: Renderer, n: int = 10000,
                           bins: int = 20, seed: int = 0) -> float:
    """Chen et al. (2018): ``mean_k (I(z_(1); v_k) - I(z_(2); v_k)) / H(v_k)``, with ``z_(1), z_(2)`` the two
    latent dimensions most informative about factor ``v_k``; each code dimension is cut into ``bins``
    equal-width bins over its range. Factors with a single value are skipped."""
    rng = np.random.default_rng(seed)
    factors = sample_factors(n, rng)
    codes = _codes(encode, render, factors)
    binned = np.stack([np.digitize(c, np.histogram_bin_edges(c, bins)[1:-1]) for c in codes.T], axis=1)
    gaps = []
    for k in range(factors.shape[1]):
        v = factors[:, k]
        entropy = _discrete_mutual_information(v, v)
        if entropy <= 0:
            continue
        mi = sorted((_discrete_mutual_information(binned[:, j], v) for j in range(codes.shape[1])), reverse=True)
        gaps.append((mi[0] - (mi[1] if len(mi) > 1 else 0.0)) / entropy)
    return float(np.mean(gaps)) if gaps else 0.0
