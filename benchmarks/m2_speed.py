"""M2's exact sum over labels: the z-encoder's first layer on ``[x, y]``, concatenated or split.

Summing ``y`` out exactly (Kingma et al. 2014, eq. 7) runs ``q(z|x, y)`` and ``p(x|y, z)`` once per class. Written
as a network on the concatenation ``[x, y]``, the encoder's first product, ``W [x, y]`` (784 + 10 -> 500 for MNIST),
is computed C = 10 times per image. ``vaekit.models.M2.encode_z`` splits it into ``W_x x + W_y y`` and computes the x
part once per image. This script times one training step of the unlabelled bound (forward and backward, batch
100, exact enumeration, ``recipes/kingma_m2.toml``'s networks, one thread) both ways, alternated in one process,
and checks that both give the same bound and gradients.

    python benchmarks/m2_speed.py [--repeats 5] [--steps 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, record  # noqa: E402

from vaekit.config import load_recipe  # noqa: E402
from vaekit.estimators import Enumerate  # noqa: E402
from vaekit.models import M2  # noqa: E402
from vaekit.nets.heads import diagonal_gaussian  # noqa: E402
from vaekit.semi_supervised import unlabelled_bound  # noqa: E402

SCRIPT = "m2_speed"
BATCH = 100


class ConcatenatedM2(M2):
    """M2 whose ``q(z|x, y)`` runs its network on the concatenation ``[x, y]`` (the textbook form)."""

    def encode_z(self, x: torch.Tensor, y: torch.Tensor):
        shape = torch.broadcast_shapes(x.shape[:-1], y.shape[:-1])
        return diagonal_gaussian(self.z_encoder(torch.cat([x.expand(*shape, -1), y.expand(*shape, -1)], -1)))


def step_seconds(model: nn.Module, x: torch.Tensor, steps: int) -> float:
    """Mean time of ``steps`` forward + backward passes of the exact unlabelled bound."""
    estimator = Enumerate()
    start = time.perf_counter()
    for _ in range(steps):
        model.zero_grad(set_to_none=True)
        unlabelled_bound(model, x, estimator).loss.mean().backward()
    return (time.perf_counter() - start) / steps


def same_results(split: M2, concatenated: M2, x: torch.Tensor) -> bool:
    """Both forms give the same bound and gradients (float64, the same z draws)."""
    split, concatenated, x = split.double(), concatenated.double(), x.double()
    out = []
    for model in (split, concatenated):
        torch.manual_seed(0)
        terms = unlabelled_bound(model, x, Enumerate())
        grads = torch.autograd.grad(terms.loss.sum(), list(model.parameters()))
        out.append((terms.bound.detach(), grads))
    (b1, g1), (b2, g2) = out
    return torch.allclose(b1, b2) and all(torch.allclose(a, b) for a, b in zip(g1, g2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="alternations of the two forms")
    parser.add_argument("--steps", type=int, default=20, help="training steps timed per repeat and form")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = load_recipe(ROOT / "recipes" / "kingma_m2.toml").model
    torch.manual_seed(0)
    split = M2(784, classes=config.categories, latent=config.latent, hidden=config.hidden,
               activation=config.activation)
    concatenated = ConcatenatedM2(784, classes=config.categories, latent=config.latent, hidden=config.hidden,
                                  activation=config.activation)
    concatenated.load_state_dict(split.state_dict())
    x = (torch.rand(BATCH, 784) < 0.13).float()
    small = M2(20, classes=4, latent=3, hidden=(8,))
    if not same_results(small, _copy(small), (torch.rand(6, 20) < 0.5).float()):
        raise SystemExit("the split and concatenated forms disagree")
    for model in (split, concatenated):  # warm-up
        step_seconds(model, x, 3)
    times = {"split": [], "concatenated": []}
    for _ in range(args.repeats):
        times["concatenated"].append(step_seconds(concatenated, x, args.steps))
        times["split"].append(step_seconds(split, x, args.steps))
    ours, theirs = statistics.median(times["split"]), statistics.median(times["concatenated"])
    command = f"python benchmarks/m2_speed.py --repeats {args.repeats} --steps {args.steps}"
    common = (f"exact unlabelled bound of recipes/kingma_m2.toml's M2 (784 inputs, {config.hidden} softplus, "
              f"z = {config.latent}, C = {config.categories}), batch {BATCH}, forward + backward, 1 thread; medians of "
              f"{args.repeats} alternated repeats of {args.steps} steps")
    record(SCRIPT, "m2_exact_step_speedup_split_first_layer", theirs / ours, "ratio", command,
           f"{common}: {theirs * 1e3:.1f} ms concatenated [x, y] against {ours * 1e3:.1f} ms split W_x x + W_y y; "
           "same bound and gradients (checked in float64)")
    record(SCRIPT, "m2_exact_step_ms", ours * 1e3, "ms/step", command, common)


def _copy(model: M2) -> ConcatenatedM2:
    twin = ConcatenatedM2(model.data_dim, classes=model.classes, latent=model.latent_dim,
                          hidden=[model.classifier[0].out_features])
    twin.load_state_dict(model.state_dict())
    return twin


if __name__ == "__main__":
    main()
