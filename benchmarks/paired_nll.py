"""Two runs scored on the same test examples, compared example by example.

    python benchmarks/paired_nll.py benchmarks/runs/ptb_long_vae benchmarks/runs/ptb_long_lm \\
        --metric ptb_long_vae_minus_lm_paired_test_nll

Reads the per-example NLLs that scoring leaves in each run (``nll_<split>_k<K>.pt``, written by
``vaekit eval`` / the benchmark scripts) and records the mean difference A - B with its paired standard error
(``<metric>``, ``<metric>_stderr``) and the fraction of examples on which A is lower (``<metric>_frac_lower``).
Two models that agree on which sentences are hard differ by far less than their own standard errors suggest;
the paired error says whether a difference of a few tenths of a nat is real.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import record  # noqa: E402

from vaekit.errors import VaekitError  # noqa: E402
from vaekit.report import paired_nll_difference  # noqa: E402

SCRIPT = "paired_nll"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_a")
    parser.add_argument("run_b")
    parser.add_argument("--metric", required=True, help="name of the recorded difference (A - B, nats)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--k", type=int, default=500, help="the K run A was scored with")
    parser.add_argument("--k-b", type=int, default=0, help="the K run B was scored with (default: --k)")
    args = parser.parse_args()

    try:
        result = paired_nll_difference(args.run_a, args.run_b, args.split, args.k, args.k_b or None)
    except VaekitError as error:
        sys.exit(f"error: {error}")
    command = (f"python benchmarks/paired_nll.py {args.run_a} {args.run_b} --metric {args.metric}"
               + (f" --split {args.split}" if args.split != "test" else "") + (f" --k {args.k}" if args.k != 500 else "")
               + (f" --k-b {args.k_b}" if args.k_b else ""))
    what = (f"{args.run_a} (mean NLL {result['mean_a']:.3f}) minus {args.run_b} ({result['mean_b']:.3f}), "
            f"{result['n']} {args.split} examples paired")
    record(SCRIPT, args.metric, result["mean"], "nats", command,
           f"{what}; paired standard error {result['stderr']:.3f}; A lower on {100 * result['fraction_a_lower']:.1f}%")
    record(SCRIPT, f"{args.metric}_stderr", result["stderr"], "nats", command, f"{what}; sd(d) / sqrt(n)")
    record(SCRIPT, f"{args.metric}_frac_lower", result["fraction_a_lower"], "fraction", command,
           f"{what}; fraction of examples with NLL_A < NLL_B")


if __name__ == "__main__":
    main()
