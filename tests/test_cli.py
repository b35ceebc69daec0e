"""CLI smoke tests on a few hundred real MNIST images, end to end."""

import json

import pytest
import torch

from vaekit.cli import main

SMALL = ["--set", "data.limit=300", "--set", "data.eval_limit=100", "--set", "model.hidden=32",
         "--set", "model.latent=2", "--set", "eval.k=20", "--set", "train.batch_size=50"]

pytestmark = pytest.mark.slow


def test_train_eval_sample_plot_export(tmp_path, mnist_available, capsys):
    run = tmp_path / "run"
    assert main(["train", "recipes/default.toml", "--out", str(run), "--epochs", "2", *SMALL]) == 0
    for name in ("config.json", "metrics.jsonl", "checkpoint.pt", "report.json", "report.md", "samples.png",
                 "reconstructions.png", "latent_scatter.png", "curves.png", "manifold.png"):
        assert (run / name).exists(), name
    report = json.loads((run / "report.json").read_text())
    assert report["k"] == 20 and report["n"] == 100 and report["nll"] > 0 and report["finished"]
    assert report["nll"] <= -report["elbo"] + 1.0  # the K-sample bound is (nearly always) tighter

    assert main(["eval", str(run), "--k", "50", "--limit", "40"]) == 0
    assert "K = 50" in capsys.readouterr().out
    assert main(["sample", str(run), "--n", "16", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").stat().st_size > 0
    assert main(["reconstruct", str(run), "--n", "8", "--out", str(tmp_path / "r.png")]) == 0
    assert main(["plot", str(run), "--what", "manifold,curves"]) == 0

    assert main(["export", str(run), "--out", str(tmp_path / "exported")]) == 0
    from vaekit.export import load_exported
    from vaekit.runs import load_model
    _, exported = load_exported(tmp_path / "exported")
    _, original, _ = load_model(run)
    z = torch.randn(5, 2)
    assert torch.equal(exported.decode(z).mean, original.decode(z).mean)


def test_resume_extends_a_finished_run(tmp_path, mnist_available):
    run = tmp_path / "run"
    assert main(["train", "recipes/default.toml", "--out", str(run), "--epochs", "1", "--no-eval", *SMALL]) == 0
    assert main(["train", "--resume", str(run), "--epochs", "2", "--no-eval"]) == 0
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(l)["epoch"] for l in lines] == [1, 2]


def test_user_errors_are_one_clear_line(tmp_path, mnist_available, capsys):
    assert main(["train", "recipes/default.toml", "--set", "train.epochz=1"]) == 2
    assert "unknown key train.epochz" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "missing")]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    run = tmp_path / "run"
    main(["train", "recipes/default.toml", "--out", str(run), "--epochs", "1", "--no-eval",
          *[s.replace("model.latent=2", "model.latent=3") for s in SMALL]])
    assert main(["plot", str(run), "--what", "manifold"]) == 2
    assert "2-D latent" in capsys.readouterr().err
    assert main(["data", "verify", "imagenet"]) == 2
    assert main(["train", "recipes/default.toml", "--device", "gpu"]) == 2  # a misspelt device: the choices
    assert "choose cpu, cuda, cuda:N" in capsys.readouterr().err
    if not torch.cuda.is_available():  # a GPU asked for where there is none: the fix, not a CUDA traceback
        assert main(["eval", str(run), "--device", "cuda", "--k", "2"]) == 2
        assert "sees no GPU" in (err := capsys.readouterr().err) and "(--device cpu)" in err


def test_bfloat16_on_a_cpu_that_emulates_it_warns_in_one_line_with_the_fix(tmp_path, mnist_available, capsys,
                                                                             monkeypatch):
    from vaekit import precision
    monkeypatch.setattr(precision, "cpu_has_native_bfloat16", lambda: False)
    run = tmp_path / "run"
    assert main(["train", "recipes/default.toml", "--out", str(run), "--epochs", "1", "--no-eval",
                 "--set", "train.precision=bfloat16", *SMALL]) == 0
    warning = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "--set train.precision=float32" in warning[0]


@pytest.mark.parametrize("argv, complaint", [
    (["eval", "RUN", "--k", "0"], "--k: must be at least 1, got 0"),
    (["eval", "RUN", "--limit", "-1"], "--limit: must be at least 0, got -1"),
    (["sample", "RUN", "--n", "-3"], "--n: must be at least 1, got -3"),
    (["sample", "RUN", "--temperature", "0"], "--temperature: must be a finite number above 0"),
    (["train", "--epochs", "two"], "--epochs: expected a whole number, got 'two'"),
    (["interpolate", "RUN", "a", "b", "--steps", "1"], "--steps: must be at least 2, got 1"),
])
def test_numeric_options_out_of_range_are_refused_before_any_work(argv, complaint, capsys):
    """--k 0 used to mean "the recipe's K" (5000 for the Burda runs) and ran for minutes; now it is refused."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2 and complaint in capsys.readouterr().err


def test_compare_prints_the_paired_difference_of_two_scored_runs(tmp_path, tiny_images, capsys):
    import torch

    from vaekit.cli import main
    from vaekit.config import load_recipe
    from vaekit.report import per_example_nll_path
    from vaekit.train import train

    config = load_recipe(None, ["model.hidden=8", "model.latent=2", "train.epochs=1", "eval.k=20"])
    for name, nll in (("a", [1.0, 2.0, 4.0]), ("b", [2.0, 2.0, 3.0])):
        train(config, tmp_path / name, data=tiny_images, progress=False)
        torch.save(torch.tensor(nll), per_example_nll_path(tmp_path / name, "test", 20))  # as `vaekit eval` leaves it
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "A - B = +0.000 ± 0.577 nats" in out and "A lower on 33.3%" in out and "n = 3" in out
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--k", "500"]) == 2
    assert "score the run first" in capsys.readouterr().err
    assert main(["compare", str(tmp_path), str(tmp_path / "b")]) == 2
    assert "not a run directory" in capsys.readouterr().err
