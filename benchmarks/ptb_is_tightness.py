"""How tight is a sentence VAE's importance-sampled test NLL? The K = 500 estimate from q(z|x) against K = 5000 and
against K = 500 from a per-sentence refined q, on a random subset of the test sentences.

The importance-sampled ``-log p(x)`` is an upper bound on the NLL in expectation (``L_K <= log p(x)``); how far
above the true NLL it sits depends on K and on how close the proposal is to the posterior. Two probes of that
slack, each paired sentence by sentence with the K = 500 figure the tables report:

* ``K = --k-large`` (5000) samples from the same q: what ten times the samples would still remove;
* K = 500 from q refined for each sentence by ``--refine-steps`` Adam steps on its own ELBO
  (:func:`vaekit.evaluate.refine_posterior`: what the amortized encoder leaves, Cremer et al. 2018).

Both estimate the likelihood of the *same* model, so a difference here is the estimator's slack, not a better
model; our tables keep the issue's estimator (K = 500 from q). Figures ``<run name>_is_*`` (nats per sentence;
negative: the probe found a lower NLL), with paired standard errors in the notes.

    python benchmarks/ptb_is_tightness.py --run benchmarks/runs/ptb_texar_vae_pretrained [--sentences 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, record, shown_path  # noqa: E402

from vaekit.evaluate import refine_posterior  # noqa: E402
from vaekit.feeds import sentence_batches  # noqa: E402
from vaekit.objectives import log_likelihood  # noqa: E402
from vaekit.runs import load_data, load_model  # noqa: E402

SCRIPT = "ptb_is_tightness"


def estimates(model, batches, k: int, seed: int, sample_chunk: int = 50, refine: dict | None = None
              ) -> tuple[torch.Tensor, float]:
    """Per-sentence importance-sampled log p(x) (float64, in the batches' order) and the seconds taken."""
    torch.manual_seed(seed)
    start = time.perf_counter()
    out = []
    for batch in batches:
        q = refine_posterior(model, batch, **refine) if refine else None
        with torch.no_grad():
            out.append(log_likelihood(model, batch, k=k, sample_chunk=sample_chunk, q=q).double())
    return torch.cat(out), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a trained sentence VAE's run directory")
    parser.add_argument("--sentences", type=int, default=200, help="random test sentences (seeded)")
    parser.add_argument("--k", type=int, default=500)
    parser.add_argument("--k-large", type=int, default=5000)
    parser.add_argument("--refine-steps", type=int, default=30)
    parser.add_argument("--refine-lr", type=float, default=0.05)
    parser.add_argument("--refine-samples", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    run = args.run if args.run.is_absolute() else ROOT / args.run
    if not (run / "checkpoint.pt").exists():
        parser.error(f"--run {args.run}: no checkpoint.pt there (a trained sentence VAE's run directory)")
    config, model, state = load_model(run)
    if getattr(model, "encoder", None) is None:
        parser.error(f"--run {args.run}: {config.name} has no encoder (a language model is scored exactly)")
    data = load_data(config.data)
    test = data.split("test")
    pick = torch.randperm(len(test), generator=torch.Generator().manual_seed(args.seed))[: args.sentences]
    batches = sentence_batches([test[i] for i in sorted(pick.tolist())], 64, data.vocab.bos)
    n = sum(len(b.lengths) for b in batches)

    base, base_s = estimates(model, batches, args.k, args.seed)
    large, large_s = estimates(model, batches, args.k_large, args.seed + 1)
    refine = {"steps": args.refine_steps, "lr": args.refine_lr, "samples": args.refine_samples}
    refined, refined_s = estimates(model, batches, args.k, args.seed + 2, refine=refine)

    relative = shown_path(run)
    command = (f"python benchmarks/ptb_is_tightness.py --run {relative} --sentences {args.sentences}"
               + (f" --k-large {args.k_large}" if args.k_large != 5000 else ""))
    where = (f"{n} random PTB test sentences (seed {args.seed}); model {relative} after {state['epoch']} epochs; "
             f"{args.threads} thread(s)")
    prefix = config.name
    record(SCRIPT, f"{prefix}_is_subset_nll_k{args.k}", float(-base.mean()), "nats/sentence",
           command, f"importance-sampled from q(z|x), K = {args.k}, {base_s:.0f} s; {where}")
    for name, other, seconds, what in (
            (f"k{args.k_large}", large, large_s, f"K = {args.k_large} from q(z|x)"),
            ("refined", refined, refined_s, f"K = {args.k} from q refined per sentence ({args.refine_steps} Adam "
                                            f"steps at {args.refine_lr:g}, {args.refine_samples} samples a step)")):
        difference = base - other          # NLL(other) - NLL(K = 500 from q), sentence by sentence
        stderr = float(difference.std() / n ** 0.5)
        record(SCRIPT, f"{prefix}_is_{name}_minus_k{args.k}", float(difference.mean()), "nats/sentence", command,
               f"{what} minus K = {args.k} from q, paired, standard error {stderr:.3f}; {seconds:.0f} s; {where}")


if __name__ == "__main__":
    main()
