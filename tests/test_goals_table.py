"""The goals table of BENCHMARKS.md (benchmarks/goals.py): verdicts from recorded figures, Markdown cells."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import goals  # noqa: E402


def figures(**values):
    return {name: {"metric": name, "value": value} for name, value in values.items()}


def test_a_goal_met_by_an_attempt_only_says_so():
    goal = goals.Goal(4, "M2 error", "m2", "<=", 11.97, attempts=("m2_cos", "m2_other"))
    s = goals.status(goal, figures(m2=16.2, m2_cos=11.5, m2_other=13.0))
    assert (s["value"], s["met"]) == (16.2, False)
    assert s["best"] == ("m2_cos", 11.5) and s["best_met"] is True
    assert "by an attempt only" in goals.table(figures(m2=16.2, m2_cos=11.5), (goal,))


def test_higher_is_better_and_a_target_named_by_another_metric():
    speed = goals.Goal(2, "speed", "speedup", ">=", 2.0)
    assert goals.status(speed, figures(speedup=1.99))["met"] is False
    assert goals.status(speed, figures(speedup=2.0))["met"] is True
    below = goals.Goal(5, "cvae", "cvae_q1", "<", "baseline_q1")
    assert goals.status(below, figures(cvae_q1=62.4, baseline_q1=103.7))["met"] is True
    assert goals.status(below, figures(cvae_q1=62.4))["met"] is None  # no baseline recorded: no verdict


def test_unmeasured_goal_and_bars_in_cells():
    goal = goals.Goal(5, "-log p(x|c)", "absent", "<=", 1.0)
    assert goals.status(goal, {})["met"] is None
    row = [line for line in goals.table({}, (goal,)).splitlines() if "absent" in line]
    assert row and "p(x\\|c)" in row[0] and "not measured" in row[0]
    assert all(metric in goals.load_results() for metric in ("mnist_vae_burda_test_nll", "ptb_lm_test_nll"))
