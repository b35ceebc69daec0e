"""The README's default run, timed end to end: data fetch, training, evaluation and plots.

    python benchmarks/mnist_default.py

Runs ``vaekit train recipes/default.toml`` in a subprocess with an empty data cache (so the MNIST
fetch is included) and records the wall time and the test NLL it reports. The virtual-environment
set-up (``pip install``) is not included in the time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, record  # noqa: E402


def main() -> None:
    command = "python benchmarks/mnist_default.py"
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, VAEKIT_DATA=str(Path(tmp) / "cache"))
        run_dir = Path(tmp) / "run"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "vaekit", "train", "recipes/default.toml", "--out", str(run_dir)],
                       cwd=ROOT, env=env, check=True)
        wall = time.perf_counter() - start
        report = json.loads((run_dir / "report.json").read_text())
    notes = (f"K = {report['k']} importance samples on the 10k test images; {report['epochs']} epochs; "
             f"test ELBO {report['elbo']:.2f}, KL {report['kl']:.2f}, {report['active_units']} active units; "
             f"training {report['train_seconds']:.0f} s, evaluation {report['seconds']:.0f} s")
    record("mnist_default", "mnist_default_test_nll", report["nll"], "nats", command, notes)
    record("mnist_default", "mnist_default_wall_s", wall, "seconds", command,
           "vaekit train recipes/default.toml with an empty data cache: fetch + train + evaluate + plots "
           "(pip set-up excluded)")


if __name__ == "__main__":
    main()
