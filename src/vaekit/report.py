"""What a finished run leaves behind: ``report.json`` / ``report.md`` and its plots.

These functions work on a run directory, so the CLI, benchmarks and notebooks share them.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .evaluate import evaluate, evaluate_text
from .runs import eval_inputs, load_data, load_model, write_json

PLOTS = ("samples", "reconstructions", "manifold", "scatter", "curves", "traversals")


def evaluate_run(run_dir: str | Path, k: int | None = None, split: str | None = None, limit: int = 0,
                 progress: bool | None = None, write: bool = True) -> dict:
    """Evaluate a run's checkpoint on a split; write ``report.json`` and ``report.md`` when ``write``."""
    run_dir = Path(run_dir)
    config, model, state = load_model(run_dir)
    data = load_data(config.data)
    split = split or config.eval.split
    k = k or config.eval.k
    if config.data.is_text and config.model.condition_embedding:  # label-conditional: -log p(x|c)
        from .conditional import evaluate_conditional

        batches = text_batches(data, split, config.eval.batch_size, limit, conditional=True)
        result = evaluate_conditional(model, batches, samples=k, seed=config.eval.seed)
        result["nll_per_example"] = []
    elif config.data.is_text:
        batches = text_batches(data, split, config.eval.batch_size, limit)
        result = evaluate_text(model, batches, k=k, sample_chunk=config.eval.sample_chunk, seed=config.eval.seed,
                               progress=progress)
    elif config.model.arch in ("cvae", "cvae-nn"):
        from .conditional import condition_batches, evaluate_conditional

        x = eval_inputs(config, data, split)[: limit or None]
        batches = condition_batches(x, data.split(split)[1], config, config.eval.batch_size)
        # a GSNN never trains q(z|x,c): its likelihood is estimated with the prior network as the proposal
        proposal = "prior" if config.train.objective == "gsnn" else "posterior"
        result = evaluate_conditional(model, batches, samples=k, seed=config.eval.seed, proposal=proposal)
        result["nll_per_example"] = []
    elif config.model.arch == "m2":
        from .semi_supervised import evaluate_m2, m2_inputs

        x, labels = m2_inputs(config, data, split), data.split(split)[1]
        result = evaluate_m2(model, x[: limit or None], labels[: limit or None], seed=config.eval.seed)
        result["nll_per_example"] = []
    else:
        x = eval_inputs(config, data, split)
        if limit:
            x = x[:limit]
        result = evaluate(model, x, k=k, batch_size=config.eval.batch_size, sample_chunk=config.eval.sample_chunk,
                          seed=config.eval.seed, progress=progress)
    per_example = result.pop("nll_per_example")
    report = {"name": config.name, "split": split, **result, "epochs": state["epoch"], "steps": state["step"],
              "finished": state["epoch"] >= config.train.epochs, "train_seconds": state["elapsed_s"],
              "likelihood": state["likelihood"]}
    if write:
        write_json(run_dir / "report.json", report)
        if per_example:
            torch.save(torch.tensor(per_example), run_dir / f"nll_{split}_k{k}.pt")
        (run_dir / "report.md").write_text(format_report(report))
    return report


def text_batches(data, split: str, batch_size: int, limit: int = 0, conditional: bool = False):
    """A split's sentences in fixed, length-bucketed batches (no shuffling: every evaluation agrees); with
    ``conditional``, paired with their labels."""
    from .feeds import sentence_batches

    labels = data.labels[split][: limit or None] if conditional else None
    return sentence_batches(data.split(split)[: limit or None], batch_size, data.vocab.bos, labels)


def format_report(r: dict) -> str:
    status = "finished" if r["finished"] else "NOT finished (checkpoint mid-training)"
    if "ncll" in r:
        latent = r["k"] is not None
        estimate = (f"importance-sampled, S = {r['k']}" + (", proposal p(z|c)" if r.get("proposal") == "prior" else "")
                    if latent else "exact")
        rows = [(f"negative conditional log-likelihood, {estimate}",
                 f"**{r['ncll']:.2f}** ± {r['ncll_stderr']:.2f} nats")]
        if "ppl" in r:
            rows.append(("perplexity", f"**{r['ppl']:.2f}** over {r['tokens']} tokens (words + </s>)"))
        if latent:
            rows += [("conditional ELBO", f"{r['elbo']:.2f} nats"), ("KL(q(z|x,c) || p(z|c))", f"{r['kl']:.2f} nats")]
        rows += [("examples", str(r["n"])),
                 ("training", f"{r['epochs']} epochs, {r['steps']} steps, {r['train_seconds']:.0f} s ({status})"),
                 ("evaluation time", f"{r['seconds']:.0f} s")]
        return (f"# {r['name']}: evaluation on the {r['split']} split\n\n| quantity | value |\n|---|---|\n"
                + "".join(f"| {a} | {b} |\n" for a, b in rows))
    if "ppl" in r:
        return format_text_report(r, status)
    if "error_pct" in r:
        return (f"# {r['name']}: evaluation on the {r['split']} split\n\n| quantity | value |\n|---|---|\n"
                f"| classification error of q(y|x) | **{r['error_pct']:.2f}%** of {r['n']} images |\n"
                f"| bound on log p(x), label summed out | {r['elbo']:.2f} nats |\n"
                f"| KL(q(y|x) || p(y)) | {r['kl_y']:.3f} nats |\n"
                f"| training | {r['epochs']} epochs, {r['steps']} steps, {r['train_seconds']:.0f} s ({status}) |\n"
                f"| evaluation time | {r['seconds']:.0f} s |\n")
    return (f"# {r['name']}: evaluation on the {r['split']} split\n\n"
            f"| quantity | value |\n|---|---|\n"
            f"| importance-sampled NLL, K = {r['k']} | **{r['nll']:.2f}** ± {r['nll_stderr']:.2f} nats |\n"
            f"| ELBO | {r['elbo']:.2f} nats |\n"
            f"| E_q[log p(x|z)] | {r['log_px_z']:.2f} nats |\n"
            f"| KL(q(z|x) || p(z)) | {r['kl']:.2f} nats |\n"
            f"| active units | {r['active_units']} of {r['latent_dim']} |\n"
            + (f"| mutual information I(x; z) | {r['mutual_information']:.2f} nats |\n"
               if r.get("mutual_information") is not None else "")
            + f"| examples | {r['n']} |\n"
            f"| training | {r['epochs']} epochs, {r['steps']} steps, {r['train_seconds']:.0f} s ({status}) |\n"
            f"| evaluation time | {r['seconds']:.0f} s |\n\n"
            f"Likelihood: {r['likelihood']}. The NLL is a stochastic upper bound on -log p(x) "
            "(Burda et al. 2016); ± is the standard error over examples.\n")


def format_text_report(r: dict, status: str) -> str:
    latent = r.get("k") is not None
    nll = (f"importance-sampled NLL, K = {r['k']}" if latent else "exact NLL (language model)")
    rows = [(nll, f"**{r['nll']:.2f}** ± {r['nll_stderr']:.2f} nats per sentence"),
            ("perplexity", f"**{r['ppl']:.2f}** over {r['tokens']} tokens (words + </s>)")]
    if latent:
        rows += [("ELBO", f"{r['elbo']:.2f} nats"), ("E_q[log p(x|z)]", f"{r['log_px_z']:.2f} nats"),
                 ("KL(q(z|x) || p(z))", f"{r['kl']:.2f} nats"),
                 ("mutual information I(x; z)", f"{r['mutual_information']:.2f} nats"),
                 ("active units", f"{r['active_units']} of {r['latent_dim']}")]
    rows += [("reconstruction accuracy", f"{100 * r['reconstruction_accuracy']:.1f}% of tokens"
              + (" (teacher-forced, z = E_q[z|x])" if latent else " (next-token, teacher-forced)")),
             ("sentences", str(r["n"])),
             ("training", f"{r['epochs']} epochs, {r['steps']} steps, {r['train_seconds']:.0f} s ({status})"),
             ("evaluation time", f"{r['seconds']:.0f} s")]
    table = "".join(f"| {a} | {b} |\n" for a, b in rows)
    return (f"# {r['name']}: evaluation on the {r['split']} split\n\n| quantity | value |\n|---|---|\n{table}\n"
            + ("The NLL is a stochastic upper bound on -log p(x) (Burda et al. 2016); " if latent else "")
            + "± is the standard error over sentences.\n")


def plot_run(run_dir: str | Path, what: tuple[str, ...] = PLOTS, n: int = 64) -> list[Path]:
    """Write the requested plots into the run directory; skip the manifold unless z is 2-D."""
    from . import plots

    run_dir = Path(run_dir)
    config, model, state = load_model(run_dir)
    if config.data.is_text:  # sentence runs: the training curves (samples are text: `vaekit sample`)
        curves = run_dir / "metrics.jsonl"
        return [plots.training_curves(curves, run_dir / "curves.png")] if "curves" in what and curves.exists() else []
    shape = tuple(state["shape"])
    if config.model.arch in ("cvae", "cvae-nn"):  # completions of test images (or samples by class), and the curves
        if config.data.condition == "label":
            written = [plots.class_samples(model, config.model.categories, shape, run_dir / "samples.png")]
        else:
            x = eval_inputs(config, load_data(config.data), "test")[:8]
            written = [plots.completions(model, x, config, shape, run_dir / "completions.png")]
        if (run_dir / "metrics.jsonl").exists():
            written.append(plots.training_curves(run_dir / "metrics.jsonl", run_dir / "curves.png"))
        return written
    if config.model.arch == "m2" and config.data.features:  # M1+M2: codes, not images: the curves only
        curves = run_dir / "metrics.jsonl"
        return [plots.training_curves(curves, run_dir / "curves.png")] if curves.exists() else []
    if config.model.arch == "m2":  # samples (one class per column), analogies, curves
        written = [plots.sample_grid(model, shape, run_dir / "samples.png", n=100)]
        x = eval_inputs(config, load_data(config.data), "test")[:10]
        written.append(plots.analogies(model, x, shape, run_dir / "analogies.png"))
        if (run_dir / "metrics.jsonl").exists():
            written.append(plots.training_curves(run_dir / "metrics.jsonl", run_dir / "curves.png"))
        return written
    unknown = set(what) - set(PLOTS)
    if unknown:
        raise ValueError(f"unknown plot(s) {sorted(unknown)}: choose from {', '.join(PLOTS)}")
    written = []
    if "samples" in what:
        written.append(plots.sample_grid(model, shape, run_dir / "samples.png", n=n))
    if "curves" in what and (run_dir / "metrics.jsonl").exists():
        written.append(plots.training_curves(run_dir / "metrics.jsonl", run_dir / "curves.png"))
    if "manifold" in what and model.latent.kind == "gaussian" and model.latent.size == 2:
        written.append(plots.manifold(model, shape, run_dir / "manifold.png"))
    if {"reconstructions", "scatter", "traversals"} & set(what):
        data = load_data(config.data)
        x = eval_inputs(config, data, "test")
        if "reconstructions" in what:
            written.append(plots.reconstructions(model, x, shape, run_dir / "reconstructions.png", n=32))
        if "traversals" in what and model.latent.kind == "gaussian":
            written.append(plots.traversals(model, x[:1000], shape, run_dir / "traversals.png"))
        if "scatter" in what:
            m = min(len(x), 5000)
            labels = None if data.test_labels is None else data.test_labels[:m]
            written.append(plots.latent_scatter(model, x[:m], labels, run_dir / "latent_scatter.png"))
    return written


def load_report(run_dir: str | Path) -> dict:
    return json.loads((Path(run_dir) / "report.json").read_text())
