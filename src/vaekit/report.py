"""What a finished run leaves behind: ``report.json`` / ``report.md`` and its plots.

These functions work on a run directory, so the CLI, benchmarks and notebooks share them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from .allocator import retain_freed_memory
from .devices import describe, resolve_device
from .errors import CheckpointError, ConfigError
from .families import family_of
from .runs import load_data, load_model, write_json


def evaluate_run(run_dir: str | Path, k: int | None = None, split: str | None = None, limit: int = 0,
                 progress: bool | None = None, write: bool = True, device: str | None = None) -> dict:
    """Evaluate a run's checkpoint on a split (what its family measures: :meth:`vaekit.families.Family.evaluate`);
    write ``report.json`` and ``report.md`` when ``write``. ``device`` (cpu, cuda, cuda:N, auto) defaults to the
    run's ``eval.device``, else its ``train.device``; the data stay on the CPU and go there batch by batch."""
    run_dir = Path(run_dir)
    config, model, state = load_model(run_dir)
    target = _evaluation_device(config, device)
    model.to(target)
    if config.train.retain_memory:  # as in training: large (K x tokens x vocabulary) tensors reuse mapped pages
        retain_freed_memory()
    data = load_data(config.data)
    split = split or config.eval.split
    k = k or config.eval.k
    partial = run_dir / f"eval_partial_{split}_k{k}_n{limit}.pt"  # continued if an earlier scoring was stopped
    result = family_of(config).evaluate(config, model, data, split, k, limit, progress, partial=partial)
    per_example = result.pop("nll_per_example", [])
    report = {"name": config.name, "split": split, **result, "device": describe(target),
              "epochs": state["epoch"], "steps": state["step"],
              "finished": state["epoch"] >= config.train.epochs or state.get("stopped_early", False),
              "stopped_early": state.get("stopped_early", False),
              "train_seconds": state["elapsed_s"],
              "likelihood": state["likelihood"]}
    if write:
        write_json(run_dir / "report.json", report)
        if per_example:
            torch.save(torch.tensor(per_example), per_example_nll_path(run_dir, split, k))
        (run_dir / "report.md").write_text(format_report(report))
    return report


def _evaluation_device(config, device: str | None):
    """``device`` if given, else the run's ``eval.device``, else the device it was trained on; a run trained on a
    GPU and scored where there is none (a copied run directory) is scored on the CPU, with a note: only a device
    the user asked for is refused when missing."""
    import sys

    if device:
        return resolve_device(device, "--device")
    if config.eval.device:
        return resolve_device(config.eval.device, "eval.device")
    try:
        return resolve_device(config.train.device)
    except ConfigError:
        print(f"note: this run was trained with train.device = {config.train.device!r}, which torch does not see here; "
              "scoring it on the CPU (--device chooses)", file=sys.stderr)
        return resolve_device("cpu")


def per_example_nll_path(run_dir: str | Path, split: str, k: int) -> Path:
    """Where :func:`evaluate_run` keeps the per-example ``-log p(x)`` (nats, a float tensor of shape ``(N,)`` in
    the split's order) of a scoring with ``k`` samples: ``RUN/nll_<split>_k<k>.pt`` (``k`` is the recipe's
    ``eval.k`` for a model scored exactly, such as a language model)."""
    return Path(run_dir) / f"nll_{split}_k{k}.pt"


def paired_nll_difference(run_a: str | Path, run_b: str | Path, split: str = "test", k: int = 500,
                          k_b: int | None = None) -> dict:
    """Compare two runs scored on the same examples, sentence by sentence (or image by image).

    With ``d_i = NLL_a(x_i) - NLL_b(x_i)``: the mean difference, its standard error ``sd(d) / sqrt(N)``
    (the paired error, far smaller than the two runs' own errors combined when the runs agree on which
    examples are hard), and the fraction of examples that ``a`` gives the lower NLL. Negative means ``a`` is
    the better model. ``k_b`` names ``b``'s file when it was scored with another K (default ``k``).
    """
    paths = per_example_nll_path(run_a, split, k), per_example_nll_path(run_b, split, k_b or k)
    for path in paths:
        if not path.exists():
            raise CheckpointError(f"{path} does not exist: score the run first (vaekit eval {path.parent} "
                                  f"--split {split} --k {k}) or name the K it was scored with")
    a, b = (torch.load(path, weights_only=True).double() for path in paths)
    if a.shape != b.shape:
        raise CheckpointError(f"{paths[0]} has {a.numel()} examples and {paths[1]} {b.numel()}: a paired "
                              "comparison needs both runs scored on the same examples (same split, no --limit)")
    d = a - b
    return {"mean": d.mean().item(), "stderr": (d.std() / d.numel() ** 0.5).item() if d.numel() > 1 else 0.0,
            "fraction_a_lower": (d < 0).double().mean().item(), "n": d.numel(),
            "mean_a": a.mean().item(), "mean_b": b.mean().item()}


def training_status(r: dict) -> str:
    """How a report's training ended, in words: ``finished``, ``NOT finished``, or the plateau schedule's early stop."""
    if r.get("stopped_early"):
        return "finished: stopped by the plateau schedule's last decay, on the best-validation weights"
    return "finished" if r["finished"] else "NOT finished"


def format_report(r: dict) -> str:
    status = training_status(r) + ("" if r["finished"] else " (checkpoint mid-training)")
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
                 ("evaluation time", f"{r['seconds']:.0f} s{_on(r)}")]
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
                f"| evaluation time | {r['seconds']:.0f} s{_on(r)} |\n")
    return (f"# {r['name']}: evaluation on the {r['split']} split\n\n"
            f"| quantity | value |\n|---|---|\n"
            f"| importance-sampled NLL, K = {r['k']} | **{r['nll']:.2f}** ± {r['nll_stderr']:.2f} nats |\n"
            f"| ELBO | {r['elbo']:.2f} nats |\n"
            f"| E_q[log p(x|z)] | {r['log_px_z']:.2f} nats |\n"
            f"| KL(q(z|x) || p(z)) | {r['kl']:.2f} nats |\n"
            f"| active units | {r['active_units']} of {r['latent_dim']}"
            + (f" ({' + '.join(map(str, r['active_units_by_layer']))} by layer)" if r.get("active_units_by_layer") else "")
            + " |\n"
            + (f"| mutual information I(x; z) | {r['mutual_information']:.2f} nats |\n"
               if r.get("mutual_information") is not None else "")
            + f"| examples | {r['n']} |\n"
            f"| training | {r['epochs']} epochs, {r['steps']} steps, {r['train_seconds']:.0f} s ({status}) |\n"
            f"| evaluation time | {r['seconds']:.0f} s{_on(r)} |\n\n"
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
             ("evaluation time", f"{r['seconds']:.0f} s{_on(r)}")]
    table = "".join(f"| {a} | {b} |\n" for a, b in rows)
    return (f"# {r['name']}: evaluation on the {r['split']} split\n\n| quantity | value |\n|---|---|\n{table}\n"
            + ("The NLL is a stochastic upper bound on -log p(x) (Burda et al. 2016); " if latent else "")
            + "± is the standard error over sentences.\n")


def plot_run(run_dir: str | Path, what: tuple[str, ...] | None = None, n: int = 64) -> list[Path]:
    """Write the requested plots (by default all that the run's family draws) into the run directory; the
    manifold only when z is 2-D."""
    run_dir = Path(run_dir)
    config, model, state = load_model(run_dir)
    family = family_of(config)
    what = family.plots if what is None else tuple(what)
    unknown = set(what) - set(family.plots)
    if unknown:
        raise ValueError(f"unknown plot(s) {sorted(unknown)} for a {family.name} run: choose from "
                         f"{', '.join(family.plots)}")
    return family.plot(run_dir, config, model, state, what, n)


def load_report(run_dir: str | Path) -> dict:
    return json.loads((Path(run_dir) / "report.json").read_text())


def _on(r: dict) -> str:
    """`` on cuda:0 (NVIDIA H200)`` for a report computed on a GPU; nothing for the CPU (or an older report)."""
    return f" on {r['device']}" if r.get("device", "cpu") != "cpu" else ""
