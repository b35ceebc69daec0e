"""Burda et al. (2016) Table 1 on MNIST: train (or resume) a recipe, then score it with K = 5000.

    python benchmarks/mnist_burda.py recipes/burda_vae_paper.toml   --metric mnist_vae_burda_test_nll
    python benchmarks/mnist_burda.py recipes/burda_iwae5_paper.toml --metric mnist_iwae5_burda_test_nll
    python benchmarks/mnist_burda.py recipes/burda_vae.toml    --metric mnist_vae_burda_compressed_test_nll
    python benchmarks/mnist_burda.py recipes/burda_iwae5.toml  --metric mnist_iwae5_burda_compressed_test_nll
    python benchmarks/mnist_burda.py recipes/burda_iwae50.toml --metric mnist_iwae50_burda_test_nll --precision bfloat16

The issue's figures (``mnist_vae_burda_test_nll``, ``mnist_iwae5_burda_test_nll``) are the paper's protocol (all 60k
training images, 3280 epochs, ~11 h each on one core); the ``burda_vae`` / ``burda_iwae5`` recipes compress it into
1200 epochs (``*_compressed_*``). The run lives in ``benchmarks/runs/<recipe name>/`` (checkpoint, metrics.jsonl, report, plots) and
is committed, so a run that outlives a session continues in the next one exactly where it stopped
(``--no-train`` scores the checkpoint as it stands, finished or not; the notes say which).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, record, train_or_resume  # noqa: E402

from vaekit import checkpoint  # noqa: E402
from vaekit.config import load_recipe  # noqa: E402
from vaekit.report import evaluate_run, plot_run, training_status  # noqa: E402

PAPER = {"burda_vae": 86.76, "burda_vae_paper": 86.76, "burda_vae_2layer": 85.33,  # Burda et al. 2016, Table 1
         "burda_iwae5": 85.54, "burda_iwae5_paper": 85.54, "burda_iwae50": 84.78}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe")
    parser.add_argument("--metric", required=True)
    parser.add_argument("--run-dir", help="default benchmarks/runs/<recipe name>")
    parser.add_argument("--no-train", action="store_true", help="only evaluate the checkpoint as it is")
    parser.add_argument("--k", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=0, help="torch threads for training (0: the recipe's)")
    parser.add_argument("--precision", choices=("float32", "bfloat16"), default="",
                        help="train.precision for the epochs trained by this command (default: the recipe's; a run "
                             "may switch on resume, e.g. IWAE k = 50, whose 1000-row products run ~4x faster in "
                             "bfloat16 on a CPU with AMX)")
    parser.add_argument("--device", default="", help="train.device for the epochs trained and for the scoring (cpu, "
                        "cuda, cuda:N, auto; default: the recipe's); K = 5000 on a GPU takes seconds, not minutes")
    args = parser.parse_args()

    config = load_recipe(args.recipe, ([f"train.threads={args.threads}"] if args.threads else [])
                         + ([f"train.precision={args.precision}"] if args.precision else [])
                         + ([f"train.device={args.device}"] if args.device else []))
    run_dir = Path(args.run_dir or ROOT / "benchmarks" / "runs" / config.name)
    if not args.no_train:
        train_or_resume(config, run_dir)
    import torch
    torch.set_num_threads(max(1, torch.get_num_threads()))
    trained = checkpoint.load(run_dir)["config"]["train"]  # as (last) trained, not as evaluated
    report = evaluate_run(run_dir, k=args.k, split="test", device=args.device or None)
    plot_run(run_dir)
    paper = PAPER.get(config.name)
    status = training_status(report)
    notes = (f"{report['epochs']} of {config.train.epochs} epochs ({status}), {report['steps']} steps, "
             f"{report['train_seconds'] / 3600:.2f} h of training (last stretch in {trained.get('precision', 'float32')}); test ELBO {report['elbo']:.2f}, "
             f"KL {report['kl']:.2f}, {report['active_units']} active units of {report['latent_dim']}"
             + (f" ({' + '.join(map(str, report['active_units_by_layer']))} by layer)"
                if report.get("active_units_by_layer") else "") + "; "
             f"K = {args.k}, evaluation {report['seconds']:.0f} s"
             + (f" on {report['device']}" if report["device"] != "cpu" else "")
             + (f"; paper {paper} nats (Burda et al. 2016, Table 1)" if paper else ""))
    command = (f"python benchmarks/mnist_burda.py {args.recipe} --metric {args.metric}"
               + (f" --run-dir {args.run_dir}" if args.run_dir else "")
               + (f" --k {args.k}" if args.k != 5000 else "")
               + (f" --precision {args.precision}" if args.precision else "") + (" --no-train" if args.no_train else "")
               + (f" --device {args.device}" if args.device else ""))
    record("mnist_burda", args.metric, report["nll"], "nats", command, notes)
    record("mnist_burda", f"{args.metric.removesuffix('_test_nll')}_train_hours", report["train_seconds"] / 3600,
           "hours", command, f"wall time of {report['epochs']} epochs, {trained['threads'] or 'default'} training thread(s)")


if __name__ == "__main__":
    main()
