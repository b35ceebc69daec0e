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


def test_every_latent_ptb_row_is_compared_with_its_own_recipes_lm(tmp_path, monkeypatch):
    import json

    import common
    import ptb_table

    monkeypatch.setattr(common, "RESULTS", tmp_path)
    monkeypatch.setattr(ptb_table, "RESULTS", tmp_path)
    rows = {"ptb_lm_test_nll": 106.0, "ptb_vae_test_nll": 108.0, "ptb_vae_pretrained_test_nll": 105.5,
            "ptb_vae_pretrained_test_kl": 8.0, "ptb_long_lm_test_nll": 101.0, "ptb_long_vae_test_nll": 100.0,
            "ptb_large_vae_test_nll": 99.0}  # the large recipe has no LM row: no difference for it
    path = tmp_path / "ptb_table.json"
    path.write_text(json.dumps([{"metric": m, "value": v, "command": f"cmd {m}", "commit": "abc"}
                                for m, v in rows.items()]))
    ptb_table.record_differences_from_lm()
    derived = {r["metric"]: r for r in json.loads(path.read_text()) if r["metric"].endswith("_minus_lm_test_nll")}
    assert {m: r["value"] for m, r in derived.items()} == {
        "ptb_vae_minus_lm_test_nll": 2.0, "ptb_vae_pretrained_minus_lm_test_nll": -0.5,
        "ptb_long_vae_minus_lm_test_nll": -1.0}
    assert derived["ptb_long_vae_minus_lm_test_nll"]["command"] == "cmd ptb_long_vae_test_nll"
    before = path.read_text()
    ptb_table.record_differences_from_lm()  # nothing changed: nothing rewritten (dates included)
    assert path.read_text() == before


def test_paired_nll_difference_is_the_mean_and_paired_error_of_per_example_differences(tmp_path):
    import pytest
    import torch

    from vaekit.report import paired_nll_difference, per_example_nll_path

    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_dir.mkdir(), b_dir.mkdir()
    a = torch.tensor([10.0, 20.0, 30.0, 41.0])
    b = torch.tensor([11.0, 19.0, 32.0, 41.0])  # d = -1, 1, -2, 0
    torch.save(a, per_example_nll_path(a_dir, "test", 500))
    torch.save(b, per_example_nll_path(b_dir, "test", 100))
    result = paired_nll_difference(a_dir, b_dir, "test", k=500, k_b=100)
    d = torch.tensor([-1.0, 1.0, -2.0, 0.0], dtype=torch.float64)
    assert result["mean"] == pytest.approx(-0.5)
    assert result["stderr"] == pytest.approx((d.std() / 2).item())  # sd with n - 1, over sqrt(4)
    assert result["fraction_a_lower"] == 0.5 and result["n"] == 4
    assert result["mean_a"] == pytest.approx(25.25) and result["mean_b"] == pytest.approx(25.75)

    from vaekit.errors import CheckpointError
    with pytest.raises(CheckpointError, match="score the run first"):
        paired_nll_difference(a_dir, b_dir, "test", k=500)  # b was scored with K = 100 only
    torch.save(b[:3], per_example_nll_path(b_dir, "test", 500))
    with pytest.raises(CheckpointError, match="same examples"):
        paired_nll_difference(a_dir, b_dir, "test", k=500)


def test_benchmarks_md_tables_are_the_recorded_figures():
    """BENCHMARKS.md's two tables are exactly what ``write_markdown.py`` writes from benchmarks/results/*.json: no
    figure shown that no results file holds, none recorded and left out (rerun the script after recording)."""
    import write_markdown

    text = (Path(__file__).resolve().parent.parent / "BENCHMARKS.md").read_text()
    assert write_markdown.render(text) == text, "run `python benchmarks/write_markdown.py` and commit BENCHMARKS.md"


def test_ptb_table_lists_the_issues_rows_and_every_recorded_one():
    import ptb_table

    figures = {m: {"metric": m, "value": v, "commit": "abc1234"} for m, v in {
        "ptb_lm_test_nll": 106.8, "ptb_lm_test_ppl": 130.7, "ptb_vae_test_nll": 108.76, "ptb_vae_test_kl": 2.0,
        "ptb_vae_active_units": 7, "ptb_vae_minus_lm_test_nll": 1.95, "ptb_long_vae_test_nll": 103.5}.items()}
    lines = ptb_table.markdown_table(figures).splitlines()
    body = lines[2:]
    assert len(body) == 5 + 1  # the issue's five rows of the default recipe, and the one recorded long-recipe row
    assert [line.split(" | ")[1] for line in body[:5]] == [ptb_table.ROW_NAMES[n] for n in ptb_table.ISSUE_ROWS]
    assert "not run" in body[1] and "not run" in body[2] and "not run" in body[4]
    vae = body[3].split(" | ")
    assert vae[2:9] == ["**108.76**", "-", "2.0", "-", "7", "1.95", "-"]
    assert body[5].startswith("| `ptb_vae_long`") and "**103.50**" in body[5]
    assert all(line.count("|") == lines[0].count("|") for line in lines)


def test_ptb_attempts_name_every_latent_row_but_the_issues_own():
    attempts = goals.ptb_attempts("test_kl")
    assert "ptb_vae_test_kl" not in attempts
    assert {"ptb_vae_pretrained_test_kl", "ptb_long_vae_test_kl", "ptb_texar_vae_pretrained_test_kl",
            "ptb_texar_vae_freebits_test_kl", "ptb_awd_vae_freebits_test_kl"} <= set(attempts)
    assert not any("_lm_" in name for name in attempts)
