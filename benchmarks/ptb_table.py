"""The Penn Treebank table of issue 3 (Bowman et al. 2016): LM, VAE without tricks, + KL annealing,
+ word dropout, + free bits; each trained by the one trainer and scored on the test split.

    python benchmarks/ptb_table.py --variant lm          # one row at a time (about an hour of training each
    python benchmarks/ptb_table.py --variant vae         # on two cores, plus the K = 500 evaluation)
    python benchmarks/ptb_table.py --variant all
    python benchmarks/ptb_table.py --variant lm --recipe recipes/ptb_vae_large.toml   # a larger model's rows

Every variant is ``recipes/ptb_vae.toml`` with the overrides in ``VARIANTS``, so the rows differ in the
training policy alone. A run lives in ``runs/ptb_table/<variant>/`` and is resumed exactly when the
command is repeated. ``runs/`` is not in the repository and a new machine starts without it, so a run longer
than a session is given ``--run-dir benchmarks/runs/<name>`` and its checkpoint (45 MB for the 256-unit model,
with Adam's state) is committed when the session stops; the same command resumes it in the next one.
Figures: ``ptb_<variant>_test_{nll,ppl,kl,mi,active_units,train_hours}`` (NLL and perplexity named
``test_nll_k100`` etc. when scored with another K than the issue's 500). The ``vae`` row (the recipe as it
stands: annealing + word dropout) is thereby the issue's ``ptb_vae_*``; with K = 500 and the ``lm`` row
present, ``ptb_vae_minus_lm_test_nll`` is written too (and ``<row>_minus_lm_test_nll`` for every other
latent row beside its recipe's LM). ``vae_pretrained`` (Li et al. 2019, "A surprisingly
effective fix") first trains the same model as an autoencoder (beta = 0, ``--pretrain-epochs``) in ``<run>_ae``,
then the VAE from its encoder with a fresh decoder (``train.init_from`` / ``train.init_reset``). ``vae_anneal_freebits`` is not a row of the cumulative
table: it keeps z in use by free bits alone, without the word dropout that weakens the decoder's likelihood.

``--recipe`` runs the same variants on another sentence-VAE recipe named ``ptb_vae_<tag>`` (e.g.
``recipes/ptb_vae_large.toml``): runs in ``runs/ptb_table/<tag>/<variant>/``, figures ``ptb_<tag>_<variant>_*``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, ROOT, record, train_or_resume  # noqa: E402

from vaekit import checkpoint  # noqa: E402
from vaekit.config import CHOICES, load_recipe  # noqa: E402
from vaekit.report import evaluate_run, training_status  # noqa: E402

SCRIPT = "ptb_table"
RECIPE = ROOT / "recipes" / "ptb_vae.toml"
ISSUE_K = 500  # importance samples of the issue's ptb_vae_test_nll
PLAIN = ["train.kl_schedule=none", "train.word_dropout=0", "train.free_bits=0"]
VARIANTS = {
    "lm": ["model.arch=lstm-lm", "train.objective=mle", *PLAIN],
    "vae_plain": PLAIN,                                        # no tricks: KL collapses (Bowman et al., Sec. 3.1)
    "vae_anneal": ["train.word_dropout=0", "train.free_bits=0"],  # + logistic KL annealing
    "vae": [],                    # the recipe as it stands (ptb_vae: + word dropout; ptb_vae_large: + free bits)
    "vae_freebits": ["train.free_bits=0.25"],                  # + free bits (Kingma et al. 2016)
    "vae_bow": ["model.bag_of_words=true"],                    # + bag-of-words loss (Zhao et al. 2017)
    "vae_anneal_freebits": ["train.word_dropout=0", "train.free_bits=0.25"],  # free bits instead of word dropout
    # Li et al. (2019): the encoder of an autoencoder (beta = 0) trained first, a fresh decoder, KL weight from 0
    # to 1 over two epochs (2 x 1315 steps of 32 sentences), free bits of 0.25 nats a dimension (their 8 over 32)
    "vae_pretrained": ["train.word_dropout=0", "train.kl_schedule=linear", "train.kl_warmup=2630",
                       "train.free_bits=0.25"],
}
AUTOENCODER = [*PLAIN, "train.beta=0"]  # the pretraining stage of vae_pretrained: reconstruction alone


# The rows of BENCHMARKS.md's PTB table (markdown_table), recipe by recipe. The issue's cumulative table is the
# default recipe's first five variants; the other recipes' "vae" row is that recipe's own policy.
RECIPES = {"": "`ptb_vae`: LSTM 256, tied, dropout 0.3, Adam cosine, 15 epochs",
           "long": "`ptb_vae_long`: LSTM 256, dropout 0.5, 60 epochs, logistic annealing + free bits",
           "large": "`ptb_vae_large`: LSTM 512, dropout 0.5, 30 epochs, logistic annealing + free bits",
           "texar": "`ptb_vae_texar`: LSTM 256, dropout 0.5, texar's plateau schedule, linear annealing",
           "awd": "`ptb_vae_awd`: LSTM 512, dropout 0.5, weight drop 0.5, texar's schedule"}
ISSUE_ROWS = ("lm", "vae_plain", "vae_anneal", "vae", "vae_freebits")  # the issue's table, in its order
ROW_NAMES = {"lm": "LSTM LM (the same decoder, no z)", "vae_plain": "VAE without tricks",
             "vae_anneal": "+ KL annealing (logistic)", "vae": "+ word dropout 0.25",
             "vae_freebits": "+ free bits 0.25 nats/dim", "vae_bow": "+ bag-of-words loss",
             "vae_anneal_freebits": "annealing + free bits, no word dropout",
             "vae_pretrained": "Li et al. 2019: autoencoder's encoder, fresh decoder, free bits"}


def markdown_table(figures: dict[str, dict]) -> str:
    """BENCHMARKS.md's PTB table from the recorded ``ptb_*`` figures: one row per recipe and variant that has a test
    figure, and the issue's five rows of the default recipe always ("not run" where missing). NLL and perplexity
    are importance-sampled with K = 500 for the latent rows and exact for the LMs; "- LM" is the row's NLL minus
    its recipe's LM (negative: the VAE is the better language model)."""
    def value(metric: str, digits: int = 1) -> str:
        record = figures.get(metric)
        if record is None:
            return "-"
        v = record["value"]
        return str(v) if isinstance(v, int) else f"{v:.{digits}f}"

    rows = ["| recipe | row | test NLL | PPL | KL | MI | active units | - LM | training (h) | commit |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for tag, description in RECIPES.items():
        recipe = description  # named on the recipe's first row only
        for name in VARIANTS:
            prefix = f"ptb_{tag}_{name}" if tag else f"ptb_{name}"
            nll = figures.get(f"{prefix}_test_nll")
            if nll is None and (tag or name not in ISSUE_ROWS):
                continue
            label = ROW_NAMES[name] if not tag or name != "vae" else "VAE, the recipe's policy"
            if nll is None:
                rows.append(f"| {recipe} | {label} | not run | | | | | | | |")
                recipe = ""
                continue
            latent = name != "lm"
            rows.append(f"| {recipe} | {label} | **{value(f'{prefix}_test_nll', 2)}** | {value(f'{prefix}_test_ppl')} | "
                        + (f"{value(f'{prefix}_test_kl')} | {value(f'{prefix}_test_mi')} | "
                           f"{value(f'{prefix}_active_units')} | {value(f'{prefix}_minus_lm_test_nll', 2)} | "
                           if latent else "0 | 0 | - | - | ")
                        + f"{value(f'{prefix}_train_hours', 2)} | {nll['commit']} |")
            recipe = ""
    return "\n".join(rows) + "\n"


def recipe_tag(recipe: Path) -> str:
    """'' for the default recipe, ``<tag>`` for ``ptb_vae_<tag>.toml``."""
    if recipe.resolve() == RECIPE.resolve():
        return ""
    if not recipe.stem.startswith("ptb_vae_"):
        raise SystemExit(f"--recipe {recipe}: name it ptb_vae_<tag>.toml, so that its runs and figures are told apart")
    return recipe.stem.removeprefix("ptb_vae_")


def compute_overrides(threads: int, device: str, precision: str = "") -> list[str]:
    """``train.threads`` / ``train.device`` / ``train.precision`` overrides (compute settings: a run may resume
    under others)."""
    return ([f"train.threads={threads}"] if threads else []) + ([f"train.device={device}"] if device else []) + (
        [f"train.precision={precision}"] if precision else [])


def pretrain_autoencoder(recipe: Path, prefix: str, run_path: Path, compute: list[str], epochs: int) -> list[str]:
    """vae_pretrained's first stage: the same model trained as an autoencoder (beta = 0) for ``epochs`` in
    ``<run>_ae``; returns the overrides that start the VAE from its weights with a fresh decoder."""
    ae_path = run_path.with_name(run_path.name + "_ae")
    config = load_recipe(recipe, [*AUTOENCODER, f"train.epochs={epochs}", f"name={prefix}_ae", *compute])
    if not (run_path / checkpoint.CHECKPOINT_NAME).exists():  # once the VAE has started it needs the AE no more
        train_or_resume(config, ae_path)
    decoder = ["decoder", "to_state"] + (["project", "output_bias"] if config.model.tie_embeddings else ["output"])
    return [f"train.init_from={ae_path}", f"train.init_reset={','.join(decoder)}"]


def run_variant(name: str, k: int, threads: int, recipe: Path = RECIPE, run_dir: str = "",
                pretrain_epochs: int = 5, device: str = "", precision: str = "") -> dict:
    tag = recipe_tag(recipe)
    prefix = f"ptb_{tag}_{name}" if tag else f"ptb_{name}"
    run_path = ROOT / run_dir if run_dir else ROOT / "runs" / "ptb_table" / tag / name  # (an empty tag adds no level)
    compute = compute_overrides(threads, device, precision)
    warm = pretrain_autoencoder(recipe, prefix, run_path, compute, pretrain_epochs) if name == "vae_pretrained" else []
    config = load_recipe(recipe, [*VARIANTS[name], *warm, f"name={prefix}", *compute])
    train_or_resume(config, run_path)
    report = evaluate_run(run_path, k=k, split="test")
    command = (f"python benchmarks/ptb_table.py --variant {name}" + (f" --recipe {recipe.relative_to(ROOT)}" if tag else "")
               + (f" --run-dir {run_dir}" if run_dir else "")
               + (f" --pretrain-epochs {pretrain_epochs}" if name == "vae_pretrained" else "")
               + (f" --device {device}" if device else "") + (f" --precision {precision}" if precision else ""))
    status = training_status(report)
    notes = (f"{report['epochs']} of {config.train.epochs} epochs ({status}); {report['n']} test sentences, "
             f"{report['tokens']} tokens (words + </s>); overrides {VARIANTS[name] or 'none'}"
             + (f"; encoder from an autoencoder (beta = 0) trained {pretrain_epochs} epochs first, decoder fresh "
                "(Li et al. 2019)" if warm else ""))
    latent = report.get("k") is not None
    estimate = f"importance-sampled, K = {report['k']}" if latent else "exact"
    suffix = f"_k{k}" if latent and k != ISSUE_K else ""  # the issue's names mean K = 500: others are named apart
    figures = {f"test_nll{suffix}": (report["nll"], "nats/sentence", estimate),
               f"test_ppl{suffix}": (report["ppl"], "ppl", estimate)}
    if latent:
        figures.update({"test_kl": (report["kl"], "nats", ""), "test_mi": (report["mutual_information"], "nats", ""),
                        "active_units": (report["active_units"], f"of {report['latent_dim']}", ""),
                        f"test_nll_elbo{suffix}": (-report["elbo"], "nats/sentence",
                                                   "the negative test ELBO (the bound texar's figures report)")})
    trained = checkpoint.load(run_path)["config"]["train"]
    on = f" on {trained['device']}" if trained.get("device", "cpu") != "cpu" else ""
    figures["train_hours"] = (report["train_seconds"] / 3600, "hours",
                              f"trained with {trained['threads'] or 'default'} thread(s){on}")
    if "seconds" in report:  # the scoring's own time (a stopped scoring's earlier parts included)
        figures["test_scoring_hours"] = (report["seconds"] / 3600, "hours",
                                         f"{estimate} on {report['device']}, {threads or 'default'} thread(s)")
    for key, (value, unit, extra) in figures.items():
        record(SCRIPT, f"{prefix}_{key}", value, unit, command, f"{extra + '; ' if extra else ''}{notes}")
    return report


def record_differences_from_lm() -> None:
    """``<row>_minus_lm_test_nll`` for every latent row scored at the issue's K whose recipe's LM row is recorded
    (``ptb_vae_minus_lm_test_nll`` is the issue's): the row's importance-sampled NLL minus the LM's exact NLL on the
    same test sentences, negative when the VAE is the better language model. Derived from the recorded rows, so
    it is written again only when one of them changed."""
    recorded = {r["metric"]: r for r in json.loads((RESULTS / f"{SCRIPT}.json").read_text())}
    lm_prefixes = [m.removesuffix("_test_nll") for m in recorded if m.endswith("lm_test_nll")
                   and (m == "ptb_lm_test_nll" or m.endswith("_lm_test_nll"))]
    for lm_prefix in lm_prefixes:
        lm = recorded[f"{lm_prefix}_test_nll"]
        for name in VARIANTS:
            prefix = lm_prefix.removesuffix("lm") + name
            row = recorded.get(f"{prefix}_test_nll")
            if name == "lm" or row is None:
                continue
            metric, difference = f"{prefix}_minus_lm_test_nll", row["value"] - lm["value"]
            if metric in recorded and abs(recorded[metric]["value"] - difference) < 1e-9:
                continue
            record(SCRIPT, metric, difference, "nats/sentence", row["command"],
                   f"{prefix} row (commit {row['commit']}) minus {lm_prefix} row (commit {lm['commit']}); negative: "
                   "the VAE's importance-sampled NLL is below the LM's exact NLL")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", required=True, choices=[*VARIANTS, "all"])
    parser.add_argument("--k", type=int, default=500)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default="", help="train.device for training and scoring (cpu, cuda, cuda:N, "
                        "auto; default: the recipe's)")
    parser.add_argument("--precision", choices=CHOICES["train.precision"], default="",
                        help="train.precision for the epochs trained by this command (default: the recipe's; "
                             "float32 on a CPU without native bfloat16, where bfloat16 is emulated and slow)")
    parser.add_argument("--recipe", type=Path, default=RECIPE, help="a ptb_vae_<tag>.toml recipe (default: ptb_vae)")
    parser.add_argument("--pretrain-epochs", type=int, default=5,
                        help="vae_pretrained: epochs of the autoencoder whose encoder the VAE starts from")
    parser.add_argument("--run-dir", default="",
                        help="where the run lives (default runs/ptb_table/[<tag>/]<variant>, which a new machine does not "
                             "have); a run longer than a session goes in benchmarks/runs/ and is committed, so the next "
                             "session resumes it exactly")
    args = parser.parse_args()
    if args.run_dir and args.variant == "all":
        parser.error("--run-dir names one run: give one --variant")
    recipe = args.recipe.resolve()
    for name in (VARIANTS if args.variant == "all" else [args.variant]):
        run_variant(name, args.k, args.threads, recipe, args.run_dir, args.pretrain_epochs, args.device,
                    args.precision)
    record_differences_from_lm()

if __name__ == "__main__":
    main()
