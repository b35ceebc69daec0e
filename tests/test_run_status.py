"""benchmarks/run_status.py: the summary of a run's epoch records and its state from the files beside them."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import run_status  # noqa: E402


def test_summary_names_the_best_epoch_and_the_epochs_since():
    records = [{"epoch": e, "lr": 1e-3, "val_elbo": v, "val_kl": 8.0, "elapsed_s": 100.0 * e}
               for e, v in [(1, -110.0), (2, -107.5), (3, -108.0), (4, -107.9)]]
    s = run_status.summarise(records)
    assert (s["epochs"], s["best"], s["best_epoch"], s["since_best"], s["val"]) == (4, -107.5, 2, 2, -107.9)
    assert s["s_per_epoch"] == 100.0
    assert run_status.summarise([]) == {"epochs": 0}


def test_state_reads_the_files_of_a_stopped_scoring_or_scored_run(tmp_path):
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"epoch": 1}) + "\n")
    assert run_status.state(tmp_path, running="", s_per_epoch=None) == "stopped"
    assert run_status.state(tmp_path, running=f"1 python x.py --run-dir {tmp_path} --threads 1", s_per_epoch=60) \
        == "training"
    (tmp_path / "eval_partial_test_k500_nNone.pt").write_bytes(b"")
    assert run_status.state(tmp_path, running="", s_per_epoch=None) == "scoring (stopped)"
    assert run_status.state(tmp_path, running=f"1 python x.py --run-dir {tmp_path}", s_per_epoch=60) == "scoring"
    (tmp_path / "eval_partial_test_k500_nNone.pt").unlink()
    (tmp_path / "report.json").write_text("{}")
    assert run_status.state(tmp_path, running="", s_per_epoch=None) == "scored"
