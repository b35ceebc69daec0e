"""Training speed on MNIST: vaekit's trainer against a pytorch/examples-style reference loop.

Both train the same 784-400-20 ReLU VAE (BCE + analytic KL), batch 128, Adam(lr=1e-3), float32, with
torch's default thread count, in this one process, alternating (reference, vaekit, reference, ...)
so that machine drift hits both alike. The reference is written the way the pytorch/examples VAE
is: a ``DataLoader`` over a ``TensorDataset`` with ``shuffle=True``, ``sigmoid`` + ``F.binary_cross_entropy``
with ``reduction='sum'``, default Adam. vaekit runs its real trainer (:func:`vaekit.train.train`)
with the ``pytorch_examples`` recipe, which also resamples the binarisation of every batch (work the
reference does not do).

The matmul ceiling is the time of exactly the GEMMs of one training step (forward, and both
backward GEMMs of each layer but the first), run back to back on preallocated tensors. The peak is
the best float32 GEMM rate of this machine (square 2048 matrices). The fraction of peak is the
step's GEMM FLOPs per second of training divided by that peak. ``mnist_step_ms_gemm_in_step`` is the time the
same GEMMs take inside real training steps (torch.profiler self time of ``aten::mm`` and ``aten::addmm``).

    python benchmarks/mnist_speed.py [--epochs 3] [--repeats 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import record, vaekit_run  # noqa: E402

from vaekit.config import load_recipe  # noqa: E402
from vaekit.runs import load_data  # noqa: E402

SCRIPT = "mnist_speed"
BATCH = 128
LAYERS = [(784, 400), (400, 40), (20, 400), (400, 784)]  # (in, out) of the four Linear layers


class ReferenceVAE(nn.Module):
    """The pytorch/examples VAE, written as that example writes it."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def forward(self, x):
        h1 = F.relu(self.fc1(x.view(-1, 784)))
        mu, logvar = self.fc21(h1), self.fc22(h1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


def reference_epoch(x: torch.Tensor, seconds: float, device: torch.device = torch.device("cpu")) -> float:
    """Examples/s of the reference loop over (at most) one epoch or ``seconds``, on ``device``; on a GPU with the
    example's CUDA settings (``num_workers=1``, ``pin_memory``, ``data.to(device)``, the per-batch loss read)."""
    gpu = device.type == "cuda"
    torch.manual_seed(0)
    model = ReferenceVAE().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(x, torch.zeros(len(x))), batch_size=BATCH, shuffle=True,
                        **({"num_workers": 1, "pin_memory": True} if gpu else {}))
    model.train()
    seen, start = 0, time.perf_counter()
    for data, _ in loader:
        data = data.to(device)
        optimizer.zero_grad()
        recon, mu, logvar = model(data)
        bce = F.binary_cross_entropy(recon, data.view(-1, 784), reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        loss = bce + kld
        loss.backward()
        optimizer.step()
        if gpu:
            loss.item()  # the example's train_loss += loss.item(), which on a GPU waits for the step
        seen += len(data)
        if time.perf_counter() - start > seconds:
            break
    if gpu:
        torch.cuda.synchronize(device)
    return seen / (time.perf_counter() - start)


def vaekit_epochs(epochs: int, data) -> list[float]:
    """Examples/s of each epoch's batch loop of vaekit's trainer (validation excluded)."""
    config = load_recipe(Path(__file__).resolve().parent.parent / "recipes" / "pytorch_examples.toml",
                         [f"train.epochs={epochs}", "train.val_every=0", f"train.checkpoint_every={epochs}",
                          # malloc as the reference has it (this process runs both; no effect at these sizes)
                          "train.retain_memory=false"])
    return [line["examples_per_s"] for line in vaekit_run(config, data)]


def step_gemm_flops(batch: int) -> float:
    """FLOPs of the GEMMs of one training step: forward + grad-input (not layer 1) + grad-weight."""
    total = 0
    for i, (n_in, n_out) in enumerate(LAYERS):
        gemm = 2 * batch * n_in * n_out
        total += gemm * (2 if i == 0 else 3)
    return float(total)


def gemm_only_step_seconds(batch: int, reps: int = 300) -> float:
    """Time of the step's GEMMs alone, back to back on preallocated tensors."""
    shapes = []
    for i, (n_in, n_out) in enumerate(LAYERS):
        a, w, g = torch.randn(batch, n_in), torch.randn(n_out, n_in), torch.randn(batch, n_out)
        shapes.append((a, w, g, i > 0))

    def step():
        for a, w, g, grad_input in shapes:
            torch.mm(a, w.t())
            torch.mm(g.t(), a)
            if grad_input:
                torch.mm(g, w)

    for _ in range(20):
        step()
    times = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(reps):
            step()
        times.append((time.perf_counter() - start) / reps)
    return min(times)


def peak_gemm_flops(n: int = 2048) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best


def step_breakdown(data, steps: int = 300) -> dict[str, float]:
    """Milliseconds per step of each phase of vaekit's step, timed phase by phase on the real model."""
    from vaekit.data import binarize
    from vaekit.models import build_model
    from vaekit.objectives import objective
    from vaekit.train import make_optimizer

    config = load_recipe(Path(__file__).resolve().parent.parent / "recipes" / "pytorch_examples.toml")
    torch.manual_seed(0)
    model = build_model(config.model, data.shape, "bernoulli")
    optimizer = make_optimizer(model, config)
    generator = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(data.train), generator=generator)
    totals = {"data": 0.0, "forward": 0.0, "backward": 0.0, "optimizer": 0.0}
    def one_step(i: int) -> tuple[float, ...]:
        t0 = time.perf_counter()
        idx = perm[(i % 390) * BATCH:(i % 390 + 1) * BATCH]
        x = binarize(data.train[idx], data.max_value, generator)
        t1 = time.perf_counter()
        loss = objective("elbo", model, x).loss.mean()
        loss.item()
        t2 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t3 = time.perf_counter()
        optimizer.step()
        t4 = time.perf_counter()
        return t1 - t0, t2 - t1, t3 - t2, t4 - t3

    for i in range(steps + 20):
        phases = one_step(i)
        if i >= 20:
            for key, value in zip(totals, phases):
                totals[key] += value
    breakdown = {key: value / steps * 1e3 for key, value in totals.items()}
    # The same GEMMs inside real steps (operands and gradient buffers as the step leaves them in memory), to set
    # beside the back-to-back time on hot preallocated tensors.
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for i in range(100):
            one_step(i)
    gemm_us = sum(e.self_cpu_time_total for e in prof.key_averages() if e.key in ("aten::mm", "aten::addmm"))
    breakdown["gemm_in_step"] = gemm_us / 100 / 1e3
    return breakdown


def binarize_speedup(reps: int = 500) -> float:
    """Time of torch.bernoulli on float intensities over vaekit's uniform-threshold binarisation."""
    from vaekit.data import binarize

    x = (torch.rand(BATCH, 784) * 255).to(torch.uint8)
    g = torch.Generator().manual_seed(0)

    def timed(fn):
        for _ in range(20):
            fn()
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        return time.perf_counter() - start

    ours = timed(lambda: binarize(x, 255, g))
    theirs = timed(lambda: torch.bernoulli(x.float().div_(255), generator=g))
    return theirs / ours


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3, help="vaekit epochs per repeat")
    parser.add_argument("--repeats", type=int, default=2, help="alternations of reference and vaekit")
    parser.add_argument("--reference-seconds", type=float, default=20.0)
    args = parser.parse_args()
    command = f"python benchmarks/mnist_speed.py --epochs {args.epochs} --repeats {args.repeats}"

    data = load_data(load_recipe(None).data)
    x_float = data.train.float().div_(255)
    ref, ours = [], []
    for r in range(args.repeats):
        ref.append(reference_epoch(x_float, args.reference_seconds))
        ours += vaekit_epochs(args.epochs, data)
        print(f"repeat {r + 1}: reference {ref[-1]:.0f} ex/s, vaekit {ours[-args.epochs:]}", file=sys.stderr)
    ref_speed, our_speed = statistics.median(ref), statistics.median(ours)
    per_repeat = [statistics.median(ours[r * args.epochs:(r + 1) * args.epochs]) / ref[r] for r in range(args.repeats)]
    phases = step_breakdown(data)

    gemm_s = gemm_only_step_seconds(BATCH)
    ceiling = BATCH / gemm_s
    peak = peak_gemm_flops()
    achieved = step_gemm_flops(BATCH) * our_speed / BATCH
    threads = torch.get_num_threads()
    common = f"784-400-20 ReLU VAE, batch {BATCH}, fp32, {threads} torch threads"
    record(SCRIPT, "mnist_train_speedup_vs_reference", our_speed / ref_speed, "ratio", command,
           f"{common}; vaekit trainer {our_speed:.0f} ex/s vs DataLoader reference {ref_speed:.0f} ex/s "
           f"(medians of {len(ours)} vaekit epochs and {len(ref)} reference runs, alternated in one process); "
           f"ratio per alternation {', '.join(f'{x:.2f}' for x in per_repeat)} (a machine whose speed changes "
           "while the benchmark runs shows here)")
    record(SCRIPT, "mnist_train_examples_per_s", our_speed, "examples/s", command, common)
    record(SCRIPT, "mnist_reference_examples_per_s", ref_speed, "examples/s", command, common)
    record(SCRIPT, "mnist_train_gemm_ceiling_examples_per_s", ceiling, "examples/s", command,
           f"the step's GEMMs alone take {gemm_s * 1e3:.3f} ms per batch of {BATCH}")
    record(SCRIPT, "mnist_train_fraction_of_gemm_ceiling", our_speed / ceiling, "0..1", command,
           "training examples/s over the examples/s the step's GEMMs alone allow")
    gemm_in_step = phases.pop("gemm_in_step")
    total = sum(phases.values())
    record(SCRIPT, "mnist_step_ms_gemm_in_step", gemm_in_step, "ms/step", command,
           f"self time of aten::mm and aten::addmm in 100 real training steps under torch.profiler, against "
           f"{gemm_s * 1e3:.2f} ms for the same GEMMs back to back on hot preallocated tensors")
    for phase, ms in phases.items():
        record(SCRIPT, f"mnist_step_ms_{phase}", ms, "ms/step", command,
               f"{100 * ms / total:.0f}% of a {total:.2f} ms step timed phase by phase (batch {BATCH}); "
               f"the step's GEMMs alone take {gemm_s * 1e3:.2f} ms")
    record(SCRIPT, "mnist_binarize_speedup_vs_torch_bernoulli", binarize_speedup(), "ratio", command,
           f"binarising a batch of {BATCH} MNIST images: torch.bernoulli time over vaekit's 1[u * 255 < x]")
    record(SCRIPT, "mnist_train_fraction_of_peak", achieved / peak, "0..1", command,
           f"step GEMM FLOP rate {achieved / 1e9:.1f} GFLOP/s over peak fp32 GEMM {peak / 1e9:.1f} GFLOP/s "
           "(2048^2 matmul)")


if __name__ == "__main__":
    main()
