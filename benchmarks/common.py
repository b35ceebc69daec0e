"""Shared by the benchmark scripts: recording figures in benchmarks/results/<script>.json, timing vaekit's trainer."""

from __future__ import annotations

import datetime
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def _git_commit() -> str:
    if os.environ.get("VAEKIT_COMMIT"):  # set by whoever copied the tree elsewhere (a borrowed GPU machine, whose
        return os.environ["VAEKIT_COMMIT"]  # copy of .git may be older than the files sent with it)
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.strip()
        code = ["src", "recipes", ":(glob)benchmarks/*.py"]  # what a figure depends on (not results or runs)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--", *code], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


STARTED_AT_COMMIT = _git_commit()  # read when a script starts: the code it runs, not the HEAD when it ends


def commit() -> str:
    """The commit this benchmark process started on, ``+dirty`` if src/, recipes/ or a benchmark script had
    uncommitted changes (the figure then cannot be rerun from the commit alone)."""
    return STARTED_AT_COMMIT


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f"; GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{cpu}; {os.cpu_count()} cores; torch {torch.__version__}; {torch.get_num_threads()} threads{gpu}"


def shown_path(path: Path) -> str:
    """``path`` as a figure's command or notes show it: relative to the repository root when inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def record(script: str, metric: str, value: float, unit: str, command: str, notes: str = "") -> dict:
    """Append (or replace, by metric name) one figure in benchmarks/results/<script>.json."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{script}.json"
    records = json.loads(path.read_text()) if path.exists() else []
    entry = {"metric": metric, "value": value, "unit": unit, "command": command, "commit": commit(),
             "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
             "machine": machine(), "notes": notes}
    records = [r for r in records if r["metric"] != metric] + [entry]
    path.write_text(json.dumps(records, indent=2) + "\n")
    print(f"{metric} = {value:.4g} {unit}   ({notes})" if notes else f"{metric} = {value:.4g} {unit}", file=sys.stderr)
    return entry


def in_fresh_process(fn, *args):
    """``fn(*args)`` in a newly spawned Python process: for timings that a whole-process setting made earlier in
    this process (``malloc`` options, thread pools) would skew. ``fn`` must be defined at module level."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def train_or_resume(config, run_dir: Path):
    """Train ``config`` in ``run_dir``, resuming exactly from its checkpoint when there is one; exit with status 130
    when the run was interrupted (SIGTERM / Ctrl-C: its checkpoint is written, the same command continues it).
    Returns the trainer's result."""
    from vaekit.checkpoint import CHECKPOINT_NAME
    from vaekit.train import train
    result = train(config, run_dir, resume=(run_dir / CHECKPOINT_NAME).exists(), progress=False)
    if result.interrupted:
        sys.exit(130)
    return result


def vaekit_run(config, data) -> list[dict]:
    """The ``metrics.jsonl`` lines (one per epoch) of a run of vaekit's trainer in a temporary directory: what the
    speed benchmarks time (each line has the epoch's ``examples_per_s`` and, for text, ``tokens_per_s``)."""
    from vaekit.train import train
    with tempfile.TemporaryDirectory() as tmp:
        train(config, Path(tmp) / "run", data=data, progress=False)
        return [json.loads(line) for line in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()]
