"""vaekit on a GPU (``train.device = cuda``): training speed against the same reference loops as the CPU
benchmarks, run on the GPU the way their public code runs there, and the importance-sampled NLL of a committed
checkpoint scored on the GPU beside its CPU figure.

* MNIST (as ``mnist_speed.py``): the 784-400-20 VAE, batch 128, Adam 1e-3, float32. The reference is the
  pytorch/examples loop with its CUDA settings: a ``DataLoader`` over the float images (``shuffle=True``,
  ``num_workers=1``, ``pin_memory=True``) and ``data.to(device)`` per batch. vaekit runs its real trainer
  (``recipes/pytorch_examples.toml`` with ``train.device=cuda``), alternated with the reference in this process.
* PTB (as ``ptb_speed.py``): the sentence VAE of ``recipes/ptb_vae.toml`` on the first ``--sentences``
  training sentences; the reference (padded random batches, logits at every position) moved to the GPU.
* Evaluation: ``benchmarks/runs/burda_vae_paper`` (Burda et al.'s VAE after 3280 epochs, committed with its
  CPU scoring, K = 5000, and its per-example NLLs) scored again on the GPU: the paired difference GPU - CPU
  (different importance samples, so a small random difference around 0) and the time against the CPU's.

    python benchmarks/gpu_speed.py [--epochs 3] [--repeats 3] [--sentences 3200]

Needs a CUDA GPU; a machine without one is told so and nothing is recorded.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, record, vaekit_run  # noqa: E402
from mnist_speed import BATCH, reference_epoch  # noqa: E402
from ptb_speed import reference_tokens_per_s, speed_config  # noqa: E402

from vaekit.config import load_recipe  # noqa: E402
from vaekit.devices import describe  # noqa: E402
from vaekit.report import evaluate_run, paired_nll_difference  # noqa: E402
from vaekit.runs import load_data  # noqa: E402

SCRIPT = "gpu_speed"
CHECKPOINT = ROOT / "benchmarks" / "runs" / "burda_vae_paper"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_profile(device: torch.device, steps: int = 50) -> dict[str, float]:
    """Where an eager step's time goes on a GPU (the same step as :func:`step_ms`): kernels launched per step, the
    GPU's busy time per step (sum of kernel times under torch.profiler) and the step's wall time without the
    profiler."""
    from torch.profiler import ProfilerActivity, profile

    wall = step_ms(device, False)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        step_ms(device, False, steps=steps, warmup=0)
    kernels = [e for e in prof.key_averages() if e.device_type.name == "CUDA"]
    busy_ms = sum(e.self_device_time_total for e in kernels) / 1e3
    # (the profiled call also builds a model: its few set-up kernels are counted over the steps, a slight overcount)
    return {"wall_ms": wall, "kernels": sum(e.count for e in kernels) / steps, "busy_ms": busy_ms / steps}


def step_ms(device: torch.device, compiled: bool, steps: int = 300, warmup: int = 50) -> float:
    """Milliseconds per training step of the 784-400-20 VAE (ELBO, fused Adam, one read of the loss per step) on
    batches already binarised on ``device``, eager or with the objective under ``torch.compile(mode=
    "reduce-overhead")`` (CUDA graphs of its forward and backward; the optimizer stays eager). A probe of what
    compiling would buy the trainer, which does not compile (yet)."""
    from vaekit.models import build_model
    from vaekit.objectives import objective
    from vaekit.train import make_optimizer

    config = load_recipe(ROOT / "recipes" / "pytorch_examples.toml")
    torch.manual_seed(0)
    model = build_model(config.model, (1, 28, 28), "bernoulli").to(device)
    optimizer = make_optimizer(model, config)
    batches = [(torch.rand(BATCH, 784, device=device) < 0.2).float() for _ in range(8)]

    def loss_of(x):
        return objective("elbo", model, x).loss.mean()

    step_loss = torch.compile(loss_of, mode="reduce-overhead") if compiled else loss_of
    start = 0.0
    for i in range(warmup + steps):
        if i == warmup:
            synchronize(device)
            start = time.perf_counter()
        loss = step_loss(batches[i % len(batches)])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss.item()
    synchronize(device)
    return (time.perf_counter() - start) / steps * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3, help="vaekit's MNIST epochs per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sentences", type=int, default=3200)
    parser.add_argument("--reference-seconds", type=float, default=30.0)
    parser.add_argument("--skip", nargs="*", default=[], choices=["mnist", "ptb", "eval", "compile", "profile"])
    parser.add_argument("--eval-k", type=int, default=0, help="importance samples of the GPU scoring (default: "
                        "the K of the committed CPU scoring)")
    parser.add_argument("--device", default="cuda", help="cuda (what it is for); cpu only to try the script out")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_speed.py measures vaekit on a GPU, and torch sees none here: nothing recorded")
    device = torch.device(args.device)
    gpu = describe(device)
    command = (f"python benchmarks/gpu_speed.py --epochs {args.epochs} --repeats {args.repeats} "
               f"--sentences {args.sentences}")

    if "mnist" not in args.skip:
        data = load_data(load_recipe(None).data)
        x = data.train.float().div_(255)
        recipe = ROOT / "recipes" / "pytorch_examples.toml"
        base = [f"train.epochs={args.epochs}", "train.val_every=0", f"train.checkpoint_every={args.epochs}",
                f"train.device={args.device}"]
        ref, ours, ours_bf16 = [], [], []
        for r in range(args.repeats):
            ref.append(reference_epoch(x, args.reference_seconds, device))
            ours += [line["examples_per_s"] for line in vaekit_run(load_recipe(recipe, base), data)]
            ours_bf16 += [line["examples_per_s"] for line in
                          vaekit_run(load_recipe(recipe, base + ["train.precision=bfloat16"]), data)]
            print(f"repeat {r + 1}: reference {ref[-1]:.0f} ex/s, vaekit {ours[-args.epochs:]}, "
                  f"bf16 {ours_bf16[-args.epochs:]}", file=sys.stderr)
        ref_speed, our_speed, bf16_speed = (statistics.median(v) for v in (ref, ours, ours_bf16))
        common = f"784-400-20 ReLU VAE, batch {BATCH}, {gpu}"
        record(SCRIPT, "mnist_gpu_train_speedup_vs_reference", our_speed / ref_speed, "ratio", command,
               f"{common}, fp32: vaekit trainer (train.device=cuda) {our_speed:.0f} ex/s vs the pytorch/examples "
               f"loop on the GPU (DataLoader, num_workers=1, pin_memory) {ref_speed:.0f} ex/s; medians of "
               f"{len(ours)} vaekit epochs and {len(ref)} reference runs, alternated in one process")
        record(SCRIPT, "mnist_gpu_train_examples_per_s", our_speed, "examples/s", command, f"{common}, fp32")
        record(SCRIPT, "mnist_gpu_train_examples_per_s_bf16", bf16_speed, "examples/s", command,
               f"{common}, train.precision=bfloat16 (autocast)")
        record(SCRIPT, "mnist_gpu_reference_examples_per_s", ref_speed, "examples/s", command, f"{common}, fp32")

    if "ptb" not in args.skip:
        config = speed_config(args.sentences, "float32", 0, extra=(f"train.device={args.device}",), epochs=args.epochs)
        data = load_data(config.data)
        ref, ours = [], []
        for r in range(args.repeats):
            ref.append(reference_tokens_per_s(data.train, len(data.vocab), data.vocab.bos, config,
                                              args.reference_seconds, device=device))
            lines = vaekit_run(config, data)
            ours.append(len(lines) / sum(1 / line["tokens_per_s"] for line in lines))  # every epoch: same tokens
            print(f"repeat {r + 1}: reference {ref[-1]:.0f} tokens/s, vaekit {ours[-1]:.0f} tokens/s", file=sys.stderr)
        ref_speed, our_speed = statistics.median(ref), statistics.median(ours)
        m = config.model
        common = (f"LSTM sentence VAE, embedding {m.embedding}, hidden {m.hidden[0]}, z {m.latent}, vocabulary "
                  f"{len(data.vocab)}, batch {config.train.batch_size}, fp32, first {args.sentences} PTB training "
                  f"sentences, {gpu}")
        record(SCRIPT, "ptb_gpu_train_speedup_vs_reference", our_speed / ref_speed, "ratio", command,
               f"{common}: vaekit trainer {our_speed:.0f} vs the padded-batch reference on the GPU {ref_speed:.0f} "
               f"real tokens/s (medians of {args.repeats} alternated runs)")
        record(SCRIPT, "ptb_gpu_train_tokens_per_s", our_speed, "tokens/s", command, common)
        record(SCRIPT, "ptb_gpu_reference_tokens_per_s", ref_speed, "tokens/s", command, common)

    if "compile" not in args.skip:
        eager, compiled = step_ms(device, False), step_ms(device, True)
        notes = (f"784-400-20 VAE, batch {BATCH}, fp32, {gpu}: {eager:.3f} ms per step eager vs {compiled:.3f} ms with "
                 "the objective under torch.compile(mode='reduce-overhead'); batches pre-binarised on the device, "
                 "300 timed steps after 50 warm-up steps (compilation excluded)")
        record(SCRIPT, "mnist_gpu_step_ms_eager", eager, "ms/step", command, notes)
        record(SCRIPT, "mnist_gpu_step_ms_compiled", compiled, "ms/step", command, notes)
        record(SCRIPT, "mnist_gpu_compile_speedup", eager / compiled, "ratio", command, notes)

    if "profile" not in args.skip and device.type == "cuda":
        prof = step_profile(device)
        notes = (f"784-400-20 VAE, batch {BATCH}, fp32, eager, {gpu}: {prof['kernels']:.0f} kernels per step keep the GPU "
                 f"busy {prof['busy_ms']:.3f} ms of a {prof['wall_ms']:.3f} ms step (torch.profiler kernel times over 50 "
                 "steps; the wall time without the profiler): the rest is the CPU launching them")
        record(SCRIPT, "mnist_gpu_step_kernels", prof["kernels"], "kernels/step", command, notes)
        record(SCRIPT, "mnist_gpu_step_busy_fraction", prof["busy_ms"] / prof["wall_ms"], "0..1", command, notes)

    if "eval" not in args.skip:
        cpu_report = json.loads((CHECKPOINT / "report.json").read_text())
        k = args.eval_k or cpu_report["k"]
        with tempfile.TemporaryDirectory() as tmp:  # a copy, so that the committed CPU scoring stays as it is
            copy = Path(tmp) / CHECKPOINT.name
            shutil.copytree(CHECKPOINT, copy, ignore=shutil.ignore_patterns("tensorboard", "*.png", "nll_*"))
            gpu_report = evaluate_run(copy, k=k, split="test", device=args.device)
            paired = paired_nll_difference(copy, CHECKPOINT, split="test", k=k, k_b=cpu_report["k"])
        notes = (f"{CHECKPOINT.name} (Burda et al.'s VAE after 3280 epochs), K = {k}, 10,000 test images, {gpu}: "
                 f"{gpu_report['nll']:.3f} on the GPU vs {cpu_report['nll']:.3f} on the CPU (the committed report); "
                 f"evaluation {gpu_report['seconds']:.1f} s on the GPU vs {cpu_report['seconds']:.0f} s on one "
                 "shared CPU core")
        record(SCRIPT, "mnist_vae_burda_paper_test_nll_gpu", gpu_report["nll"], "nats", command, notes)
        record(SCRIPT, "mnist_vae_burda_paper_gpu_minus_cpu_paired_test_nll", paired["mean"], "nats", command,
               f"per-image NLL on the GPU minus the committed CPU scoring (other importance samples): paired "
               f"standard error {paired['stderr']:.4f}, GPU lower on {100 * paired['fraction_a_lower']:.1f}% of "
               f"{paired['n']} images")
        record(SCRIPT, "mnist_gpu_eval_k5000_seconds", gpu_report["seconds"], "s", command, notes)
        record(SCRIPT, "mnist_eval_k5000_gpu_speedup_vs_cpu", cpu_report["seconds"] / gpu_report["seconds"], "ratio",
               command, notes)

if __name__ == "__main__":
    main()
