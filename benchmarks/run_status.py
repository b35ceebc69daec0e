"""Where each long benchmark run stands: one line a run, read from its ``metrics.jsonl`` and the files beside it.

    python benchmarks/run_status.py                      # every run under benchmarks/runs/
    python benchmarks/run_status.py benchmarks/runs/ptb_texar_lm runs/set_aside/x

Per run: epochs done, the learning rate now, the last and the best validation bound (and the epoch of the best,
with how many epochs have passed since: the plateau schedule halves the rate after ``plateau_patience`` of them),
the validation KL, seconds per epoch over the last five epochs, and the state: ``training`` (a process has the run
directory on its command line and its files changed lately), ``scoring`` (a K-sample evaluation keeps an
``eval_partial_*`` file; ``scoring (stopped)`` when no process runs it), ``scored`` (``report.json`` exists) or
``stopped``. Reads files only; safe beside running jobs.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "benchmarks" / "runs"


def summarise(metrics: list[dict]) -> dict:
    """The figures of one run's epoch records (``metrics.jsonl`` lines, oldest first)."""
    if not metrics:
        return {"epochs": 0}
    last = metrics[-1]
    with_val = [m for m in metrics if "val_elbo" in m]
    summary = {"epochs": last.get("epoch", len(metrics)), "lr": last.get("lr")}
    if with_val:
        best = max(with_val, key=lambda m: m["val_elbo"])
        summary.update(val=with_val[-1]["val_elbo"], val_kl=with_val[-1].get("val_kl"), best=best["val_elbo"],
                       best_epoch=best.get("epoch"), since_best=summary["epochs"] - best.get("epoch", 0))
    times = [m["elapsed_s"] for m in metrics if "elapsed_s" in m][-6:]
    if len(times) >= 2:
        summary["s_per_epoch"] = (times[-1] - times[0]) / (len(times) - 1)
    return summary


def state(run_dir: Path, running: str, s_per_epoch: float | None) -> str:
    """A run is running if a python process names its directory (or the directory of runs it belongs to, as
    ``--runs-dir``) and its files changed within three epochs' time (ten minutes at least); it is scoring while
    an ``eval_partial_*`` file is there."""
    here = run_dir.resolve()
    dirs = [here] if here.parent == RUNS else [here, here.parent]
    names = {str(d) for d in dirs} | {str(d.relative_to(ROOT)) for d in dirs if d.is_relative_to(ROOT)}
    mentioned = any(name in line.split() for line in running.splitlines() for name in names)
    newest = max((f.stat().st_mtime for f in run_dir.iterdir() if f.is_file()), default=0.0)
    running = mentioned and time.time() - newest < max(600.0, 3 * (s_per_epoch or 0.0))
    if any(run_dir.glob("eval_partial_*")):
        return "scoring" if running else "scoring (stopped)"
    if running:
        return "training"
    return "scored" if (run_dir / "report.json").exists() else "stopped"


def running_commands() -> str:
    try:
        out = subprocess.run(["pgrep", "-af", "python"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    return "\n".join(line for line in out.splitlines() if "run_status.py" not in line)


def fmt(value, spec: str) -> str:
    width = spec.rstrip("dfgs").split(".")[0]
    return format("-", f">{width}") if value is None else format(value, spec)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", type=Path, help="run directories (default: every one under benchmarks/runs)")
    args = parser.parse_args(argv)
    dirs = args.runs or sorted(p.parent for p in RUNS.rglob("metrics.jsonl"))
    running = running_commands()
    print(f"{'run':44} {'epochs':>6} {'lr':>8} {'val':>9} {'best':>9} {'@':>4} {'since':>5} {'KL':>6} "
          f"{'s/epoch':>7}  state")
    for run_dir in dirs:
        path = run_dir / "metrics.jsonl"
        if not path.exists():
            print(f"{str(run_dir):44} no metrics.jsonl")
            continue
        metrics = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        s = summarise(metrics)
        name = str(run_dir.relative_to(RUNS)) if run_dir.resolve().is_relative_to(RUNS) else str(run_dir)
        print(f"{name:44} {s['epochs']:>6} {fmt(s.get('lr'), '8.2g')} {fmt(s.get('val'), '9.2f')} "
              f"{fmt(s.get('best'), '9.2f')} {fmt(s.get('best_epoch'), '4d')} {fmt(s.get('since_best'), '5d')} "
              f"{fmt(s.get('val_kl'), '6.2f')} {fmt(s.get('s_per_epoch'), '7.0f')}  {state(run_dir, running, s.get('s_per_epoch'))}")


if __name__ == "__main__":
    main()
