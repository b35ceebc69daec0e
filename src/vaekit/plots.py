"""Pictures of a trained model: samples, reconstructions, the 2-D manifold, the latent space, curves, and what
each layer of a hierarchy draws.

All functions write a PNG and return its path; matplotlib runs headless (Agg).
The manifold follows Kingma & Welling (2014, Fig. 4): a grid of ``z`` over the unit square mapped
through the inverse Gaussian CDF, each decoded to the mean of ``p(x|z)``.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402


def _tile(images: np.ndarray, shape: tuple[int, int, int], rows: int, cols: int, pad: int = 1) -> np.ndarray:
    """``(rows*cols, C*H*W)`` in [0, 1] -> one ``(rows*(H+pad), cols*(W+pad)[, C])`` mosaic."""
    c, h, w = shape
    grid = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad, c), dtype=np.float32)
    for i, image in enumerate(images[: rows * cols]):
        r, q = divmod(i, cols)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + q * (w + pad): pad + q * (w + pad) + w] = \
            image.reshape(c, h, w).transpose(1, 2, 0)
    return grid[..., 0] if c == 1 else grid


def _save_image(mosaic: np.ndarray, path: str | Path, title: str | None = None) -> Path:
    path = Path(path)
    height, width = mosaic.shape[:2]
    fig = plt.figure(figsize=(max(2.0, width / 40), max(2.0, height / 40) + (0.3 if title else 0)), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1 if not title else 0.92))
    ax.imshow(np.clip(mosaic, 0, 1), cmap="gray" if mosaic.ndim == 2 else None, vmin=0, vmax=1,
              interpolation="nearest")
    ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.savefig(path)
    plt.close(fig)
    return path


def _display(x: torch.Tensor) -> np.ndarray:
    return x.detach().clamp(0, 1).cpu().numpy()


@torch.no_grad()
def sample_grid(model, shape, path, n: int = 64, seed: int = 0) -> Path:
    """Means of p(x|z) for z ~ p(z), in a square grid."""
    side = int(np.ceil(np.sqrt(n)))
    images = model.sample(n, seed=seed)
    return _save_image(_tile(_display(images), shape, side, side), path, "samples: mean of p(x|z), z ~ p(z)")


@torch.no_grad()
def reconstructions(model, x: torch.Tensor, shape, path, n: int = 16) -> Path:
    """Pairs of rows: inputs, then the mean of p(x|z) at z = E[z|x]."""
    x = x[:n]
    cols = min(n, 16)
    rows = int(np.ceil(len(x) / cols))
    recon = model.reconstruct(x)
    pairs = []
    for r in range(rows):
        pairs += [_display(x[r * cols:(r + 1) * cols]), _display(recon[r * cols:(r + 1) * cols])]
    stacked = np.concatenate([np.pad(p, ((0, cols - len(p)), (0, 0)), constant_values=1) for p in pairs])
    return _save_image(_tile(stacked, shape, 2 * rows, cols), path, "inputs (odd rows) and reconstructions")


@torch.no_grad()
def analogies(model, x: torch.Tensor, shape, path) -> Path:
    """Kingma et al. (2014) Fig. 1 for M2: each row is a test image (left) and its style z decoded with
    every class in turn."""
    styled = model.analogies(x)                                  # (N, C, D)
    rows = torch.cat([x[:, None, :], styled], 1)                 # (N, 1 + C, D)
    return _save_image(_tile(_display(rows.flatten(0, 1)), shape, len(x), rows.shape[1]), path,
                       "test image, then its style with each class")


@torch.no_grad()
def completions(model, x: torch.Tensor, config, shape, path, samples: int = 5) -> Path:
    """Sohn et al. (2015), Fig. 3: per test image (one row), the truth, the given quadrants (the rest grey),
    then ``samples`` completions from ``p(x|z, c)``, ``z ~ p(z|c)`` (the mean, for the baseline)."""
    from .conditional import join, quadrant_mask, split

    mask = quadrant_mask(config.data.quadrants, shape[1], shape[2])
    batch = split(x, mask)
    given = join(batch.c, torch.full_like(batch.x, 0.5), mask)
    filled = join(batch.c, model.complete(batch.c, samples), mask)               # (S, N, D)
    rows = torch.cat([x[:, None], given[:, None], filled.transpose(0, 1)], 1)     # (N, 2 + S, D)
    return _save_image(_tile(_display(rows.flatten(0, 1)), shape, len(x), rows.shape[1]), path,
                       "truth, given quadrants, completions")


@torch.no_grad()
def class_samples(model, classes: int, shape, path, per_class: int = 10, seed: int = 0) -> Path:
    """Generation by class (Sohn et al. 2015 on labels): row ``k`` holds means of ``p(x|z, c=k)`` for
    ``z ~ p(z|c=k)`` (for the deterministic baseline, its one mean per class, repeated)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        images = model.complete(torch.eye(classes), per_class)                    # (S, classes, D)
    return _save_image(_tile(_display(images.transpose(0, 1).flatten(0, 1)), shape, classes, per_class), path,
                       "one class per row: means of p(x|z, c), z ~ p(z|c)")


@torch.no_grad()
def traversals(model, x: torch.Tensor, shape, path, steps: int = 9, span: float = 3.0, rows: int = 10) -> Path:
    """Latent traversals (Higgins et al. 2017, Fig. 7): start from ``z = E_q[z|x_0]`` for the first image and
    move one dimension at a time over ``[-span, span]``; one row per dimension, the ``rows`` dimensions with
    the largest mean KL over ``x`` first (for a flow posterior, the largest variance of ``E_q[z_j|x]``; collapsed
    dimensions change nothing and are left to the end)."""
    q = model.encode(x)
    base = q.mean[0]
    if hasattr(q, "base_dist"):
        kl = torch.distributions.kl_divergence(q.base_dist, model.prior().base_dist).mean(0)
        score, label = kl, "KL"
    else:  # a flow posterior has no per-dimension KL: rank by Var_x E_q[z_j] (Burda et al.'s activity)
        score, label = q.mean.var(0), "Var E[z]"
    order = score.argsort(descending=True)[:rows]
    grid = torch.linspace(-span, span, steps)
    codes = base.repeat(len(order), steps, 1)
    for r, d in enumerate(order):
        codes[r, :, d] = grid
    images = model.decode(codes).mean
    title = "traversals: rows = dims " + ", ".join(f"{int(d)} ({label} {score[d]:.1f})" for d in order[:4]) + ", ..."
    return _save_image(_tile(_display(images.flatten(0, 1)), shape, len(order), steps), path, title)


@torch.no_grad()
def layer_samples(model, shape, path, rows: int = 8, cols: int = 10, seed: int = 0) -> Path:
    """What each latent layer of a hierarchy draws (e.g. Sonderby et al. 2016, Fig. 5): row ``r`` fixes one
    ``z_2 ~ p(z_2)`` (with every layer above it) and its columns draw ``z_1 ~ p(z_1 | z_2)`` afresh, each decoded to
    the mean of ``p(x | z_1)``. What stays within a row the upper layer decides; what changes, the lowest."""
    prior = model.prior()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        upper = prior.sample((rows,))[:, None, model.sizes[0]:].expand(rows, cols, -1)   # (rows, cols, Z_2 + ...)
        z1 = model.down[0](upper[..., :model.sizes[1]]).sample()                          # (rows, cols, Z_1)
    images = model.decode(torch.cat([z1, upper], dim=-1)).mean
    return _save_image(_tile(_display(images.flatten(0, 1)), shape, rows, cols), path,
                       "rows: one z_2 ~ p(z_2); columns: z_1 ~ p(z_1 | z_2)")


@torch.no_grad()
def manifold(model, shape, path, steps: int = 20) -> Path:
    """Kingma & Welling (2014) Fig. 4: decode a grid of z = Phi^{-1}(u), u on the unit square (Z = 2)."""
    if model.latent.kind != "gaussian" or model.latent.size != 2:
        raise ValueError(f"the manifold plot needs a 2-D Gaussian latent space; this model's z is "
                         f"{model.latent.kind} of size {model.latent.size}")
    u = torch.linspace(0.5 / steps, 1 - 0.5 / steps, steps)
    z1 = torch.distributions.Normal(0.0, 1.0).icdf(u)
    grid = torch.stack(torch.meshgrid(z1.flip(0), z1, indexing="ij"), dim=-1).reshape(-1, 2)
    grid = grid[:, [1, 0]]  # x axis = z_1, y axis = z_2 (top row = large z_2)
    images = model.decode(grid).mean
    return _save_image(_tile(_display(images), shape, steps, steps), path, "learned 2-D manifold")


@torch.no_grad()
def latent_scatter(model, x: torch.Tensor, labels: torch.Tensor | None, path, batch_size: int = 1000) -> Path:
    """Posterior means E[z|x], coloured by label; projected on the first two principal axes if Z > 2."""
    means = torch.cat([model.encode(x[i:i + batch_size]).mean.flatten(1) for i in range(0, len(x), batch_size)])
    title = "E[z|x]"
    if means.shape[1] > 2:
        centred = means - means.mean(0)
        _, _, v = torch.linalg.svd(centred, full_matrices=False)
        means = centred @ v[:2].T
        title += f" projected on its first two principal axes (Z = {model.latent_dim})"
    points = means.numpy()
    fig, ax = plt.subplots(figsize=(6, 5.5), dpi=100)
    if labels is not None:
        scatter = ax.scatter(points[:, 0], points[:, 1], c=labels.numpy(), cmap="tab10", s=3, alpha=0.7)
        fig.colorbar(scatter, ax=ax, ticks=sorted(set(labels.tolist()))[:20])
    else:
        ax.scatter(points[:, 0], points[:, 1], s=3, alpha=0.7)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("z1" if model.latent_dim <= 2 else "PC 1")
    ax.set_ylabel("z2" if model.latent_dim <= 2 else "PC 2")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def training_curves(metrics_path, path) -> Path:
    """Training loss and validation -ELBO per epoch, and the KL term, from ``metrics.jsonl``."""
    records = [json.loads(line) for line in Path(metrics_path).read_text().splitlines() if line.strip()]
    if not records:
        raise ValueError(f"{metrics_path} holds no epochs yet")
    epochs = [r["epoch"] for r in records]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    left.plot(epochs, [r["train_loss"] for r in records], label="train loss")
    val = [(r["epoch"], -r["val_elbo"]) for r in records if "val_elbo" in r]
    if val:
        left.plot(*zip(*val), label="validation -ELBO")
    left.set_xlabel("epoch")
    left.set_ylabel("nats")
    left.legend()
    left.set_title("objective")
    if len(epochs) > 20:
        left.set_xscale("log")
        lows = [r["train_loss"] for r in records[len(records) // 10:]]
        left.set_ylim(min(lows) - 2, max(lows) + 5)
    right.plot(epochs, [r["train_kl"] for r in records], label="train KL")
    if val:
        right.plot([r["epoch"] for r in records if "val_kl" in r], [r["val_kl"] for r in records if "val_kl" in r],
                   label="validation KL")
    right.set_xlabel("epoch")
    right.set_ylabel("nats")
    right.legend()
    right.set_title("KL(q(z|x) || p(z))")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def estimator_variance(rows: list[dict], path, title: str = "") -> Path:
    """Bar chart of the gradient variance (log scale) per estimator, each bar labelled with its relative
    bias and the bias that sampling noise alone would show; ``rows`` are
    :class:`vaekit.diagnostics.GradientStats` dictionaries (rows of zero variance, the exact reference, are left
    out)."""
    path = Path(path)
    rows = [r for r in rows if r["variance"] > 0]
    names = [r["name"] for r in rows]
    variance = [r["variance"] for r in rows]
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(rows), 3.8), dpi=110)
    bars = ax.bar(range(len(rows)), variance, color="#4477aa")
    ax.set_yscale("log")
    ax.set_xticks(range(len(rows)), names, rotation=35, ha="right")
    ax.set_ylabel("gradient variance (trace of covariance)")
    for bar, r in zip(bars, rows):
        label = f"bias {r['bias']:.2f}\n(noise {r['bias_se']:.2f})"
        ax.annotate(label, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
