"""Mean-field CAVI and EM on the Bayesian Gaussian mixture of Blei et al. (2017, Sec. 3), against exact answers.

    python benchmarks/cavi_gmm.py

Figures (``benchmarks/results/cavi_gmm.json``): for K = 2 and K = 3 well separated clusters, the gap between exact
log p(x) (all K^n assignments enumerated) and the converged ELBO, minus log K! (mean-field q sits in one of the K!
label-swapped modes of the posterior and is exact inside it, so the difference should be ~0); the largest
difference between the CAVI and EM means at n = 40, 400 and 4000 (CAVI becomes EM as q(mu) shrinks); the sweeps
CAVI needs. The picture ``docs/images/cavi_gmm.png``: five clusters in 2-D, CAVI's q(mu_k) (2-sd circles) and
EM's means, and the ELBO per sweep, for the best of 10 random initialisations (CAVI finds local optima: the
figures say how many of the 10 reach the best ELBO).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, record  # noqa: E402

from vaekit import cavi  # noqa: E402

SCRIPT = "cavi_gmm"
COMMAND = "python benchmarks/cavi_gmm.py"
SIGMA2 = 10.0


def clusters(n: int, centres, seed: int, spread: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    centres = torch.as_tensor(centres, dtype=torch.float64)
    return centres[torch.arange(n) % len(centres)] + spread * torch.randn(n, centres.shape[1], generator=g,
                                                                          dtype=torch.float64)


def gap_figures() -> None:
    for k, centres, n in ((2, [[-20.0], [20.0]], 12), (3, [[-30.0, 0.0], [30.0, 0.0], [0.0, 30.0]], 9)):
        x = clusters(n, centres, seed=k, spread=0.5)
        q = cavi.cavi(x, k, SIGMA2)
        exact = float(cavi.log_evidence(x, k, SIGMA2))
        gap = exact - float(cavi.elbo(x, q, SIGMA2))
        record(SCRIPT, f"cavi_gmm_k{k}_gap_minus_log_k_factorial", gap - math.log(math.factorial(k)), "nats", COMMAND,
               f"K = {k}, n = {n} points in {x.shape[1]}-D, sigma^2 = {SIGMA2}; exact log p(x) = {exact:.4f} by "
               f"enumerating {k}^{n} assignments; ELBO after {len(q.trace)} sweeps; gap {gap:.6f} vs log {k}! = "
               f"{math.log(math.factorial(k)):.6f}")


def cavi_versus_em() -> None:
    for n in (40, 400, 4000):
        x = clusters(n, [[-2.0, 0.0], [2.0, 0.5]], seed=6)
        variational, point = cavi.cavi(x, 2, SIGMA2, seed=1), cavi.em(x, 2, SIGMA2, seed=1)
        record(SCRIPT, f"cavi_gmm_em_mean_difference_n{n}", float((variational.m - point.m).abs().max()), "units",
               COMMAND, f"largest |m_k - mu_k| between CAVI's q(mu) means and EM's MAP means, 2 clusters 4 apart "
               f"in 2-D, n = {n}; largest CAVI variance s_k^2 = {float(variational.s2.max()):.2e}")


def picture() -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    centres = [[-6.0, -4.0], [-5.0, 5.0], [0.0, 0.0], [6.0, 5.0], [5.0, -5.0]]
    x = clusters(500, centres, seed=0)
    # CAVI finds a local optimum: restart from 10 initialisations and keep the highest ELBO (Blei et al., Sec. 3)
    fits = [cavi.cavi(x, 5, SIGMA2, seed=seed) for seed in range(10)]
    best_seed = max(range(len(fits)), key=lambda seed: fits[seed].trace[-1])
    q = fits[best_seed]
    reached = sum(fit.trace[-1] > q.trace[-1] - 1e-6 for fit in fits)
    point = cavi.em(x, 5, SIGMA2, seed=best_seed)
    record(SCRIPT, "cavi_gmm_restarts_reaching_best_k5", reached, "of 10", COMMAND,
           f"K = 5, n = 500 in 2-D: initialisations (means at 5 random data points) whose converged ELBO is the "
           f"best found ({q.trace[-1]:.3f}); the others stop in local optima (worst {min(f.trace[-1] for f in fits):.3f})")
    record(SCRIPT, "cavi_gmm_sweeps_to_converge_k5", len(q.trace), "sweeps", COMMAND,
           f"K = 5, n = 500 in 2-D, the best of 10 restarts, until a sweep raises the ELBO by < 1e-10")
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.5))
    left.scatter(x[:, 0], x[:, 1], c=q.phi.argmax(1), s=6, cmap="tab10", alpha=0.6)
    for k in range(5):
        radius = 2 * math.sqrt(float(q.s2[k]))
        left.add_patch(plt.Circle(q.m[k].tolist(), radius, fill=False, color="black"))
    left.scatter(q.m[:, 0], q.m[:, 1], marker="+", s=80, color="black", label="CAVI: E_q[mu_k] (2-sd circle)")
    left.scatter(point.m[:, 0], point.m[:, 1], marker="x", s=40, color="red", label="EM: MAP mu_k")
    left.set_title("Bayesian GMM, K = 5 (best of 10 restarts)")
    left.legend(loc="lower left", fontsize=8)
    for fit in fits:
        right.plot(range(1, len(fit.trace) + 1), fit.trace, color="C0" if fit is q else "grey",
                   lw=2 if fit is q else 0.8)
    right.set_xlabel("CAVI sweep")
    right.set_ylabel("ELBO (nats)")
    right.set_title("ELBO per sweep, 10 initialisations (best in blue)")
    fig.tight_layout()
    out = ROOT / "docs" / "images" / "cavi_gmm.png"
    fig.savefig(out, dpi=90)
    print(f"wrote {out}", file=sys.stderr)


def main() -> None:
    gap_figures()
    cavi_versus_em()
    picture()


if __name__ == "__main__":
    main()
