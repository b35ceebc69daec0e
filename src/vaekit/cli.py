"""The ``vaekit`` command line: info, data, train, eval, compare, sample, reconstruct, interpolate, impute, plot, export.

Problems with the user's input end with ``error: <what and how to fix it>`` and exit status 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

from .errors import VaekitError, VaekitWarning

EPILOG = """examples:
  vaekit info                                        # versions, CPU threads, native bfloat16, GPUs
  vaekit data fetch mnist
  vaekit train recipes/default.toml --out runs/default
  vaekit train recipes/burda_vae.toml --set train.epochs=100 --set train.threads=2
  vaekit train --resume runs/default                 # continue exactly where it stopped
  vaekit train recipes/default.toml --nproc 2        # data-parallel over 2 processes (torchrun)
  vaekit eval runs/default --k 5000                  # importance-sampled NLL, ELBO, KL, active units
  vaekit compare runs/iwae runs/vae --k 5000         # which is better, example by example (paired error)
  vaekit sample runs/default --n 100
  vaekit plot runs/default --what manifold,scatter,curves
  vaekit export runs/default --out exported/default  # safetensors + JSON config
  vaekit train recipes/ptb_vae.toml --out runs/ptb_vae   # sentence VAE on the Penn Treebank
  vaekit sample runs/ptb_vae --n 10 --method beam      # sentences from the prior
  vaekit reconstruct runs/ptb_vae "the company said it would n't comment"   # decoded posterior samples
  vaekit interpolate runs/ptb_vae "he was a man" "the stock fell sharply"   # a homotopy
  vaekit impute runs/ptb_vae "the company said" --icm 3                       # complete a sentence
"""


def _whole(least: int):
    """An argparse type: a whole number of at least ``least``, refused in one line naming the bound."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
        return value
    parse.__name__ = f"whole number >= {least}"
    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return value



def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vaekit", description="Train, evaluate and look inside variational autoencoders.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", help="this machine as vaekit sees it: versions, CPU, bfloat16, GPUs")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("data", help="fetch, verify or list data sets")
    p.add_argument("action", choices=["list", "fetch", "verify"])
    p.add_argument("name", nargs="?", help="data set name (mnist, fashion-mnist, ptb, brown)")
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("train", help="train a model from a recipe, then evaluate and plot it",
                       description="Train from a TOML recipe with section.key=value overrides. Writes "
                                   "config.json, metrics.jsonl, checkpoint.pt, report.md and plots to the run "
                                   "directory. Ctrl-C writes a checkpoint; --resume continues exactly.")
    p.add_argument("recipe", nargs="?", help="recipe file (recipes/*.toml); defaults if omitted")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a recipe value, e.g. --set train.epochs=5 (repeatable)")
    p.add_argument("--out", help="run directory (default runs/<recipe name>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its checkpoint")
    p.add_argument("--epochs", type=_whole(1), help="shorthand for --set train.epochs=N")
    p.add_argument("--device", help="shorthand for --set train.device=DEVICE: cpu (default), cuda, cuda:N or auto")
    p.add_argument("--no-eval", action="store_true", help="skip the final evaluation and plots")
    p.add_argument("--nproc", type=_whole(1), default=1, metavar="N",
                   help="train data-parallel in N local processes (launches torchrun; batch_size is per process)")
    p.add_argument("--progress", choices=["auto", "on", "off"], default="auto",
                   help="progress bars (auto: only when stderr is a terminal)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="importance-sampled NLL, ELBO, KL and active units of a run")
    p.add_argument("run_dir")
    p.add_argument("--k", type=_whole(1), help="importance samples (default: the recipe's eval.k)")
    p.add_argument("--split", choices=["test", "val", "train"], help="split (default: the recipe's eval.split)")
    p.add_argument("--limit", type=_whole(0), default=0, help="evaluate only the first N examples")
    p.add_argument("--device", help="cpu, cuda, cuda:N or auto (default: the run's eval.device, else train.device)")
    p.add_argument("--progress", choices=["auto", "on", "off"], default="auto")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("compare", help="two scored runs, example by example: NLL difference and its paired error",
                       description="The mean of NLL_A(x) - NLL_B(x) over the examples both runs were scored on "
                                   "(by `vaekit eval`, which keeps each example's NLL), its paired standard error "
                                   "and how often A is lower. Negative: A is the better model.")
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument("--k", type=_whole(1), help="the K both were scored with (default: A's eval.k)")
    p.add_argument("--k-b", type=_whole(1), help="B's K, if it differs (a model without z is scored exactly under "
                   "its recipe's eval.k)")
    p.add_argument("--split", choices=["test", "val", "train"], help="split (default: A's eval.split)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("sample", help="samples from the prior: an image grid, or sentences")
    p.add_argument("run_dir")
    p.add_argument("--n", type=_whole(1), help="how many (default 64 images, 10 sentences)")
    p.add_argument("--seed", type=_whole(0), default=0)
    p.add_argument("--out", help="PNG path (default RUN_DIR/samples.png)")
    p.add_argument("--method", choices=["greedy", "sample", "beam"], default="sample",
                   help="sentences: decoding of p(x|z) (default ancestral sampling)")
    p.add_argument("--temperature", type=_positive_float, default=1.0, help="sentences: sampling temperature")
    p.add_argument("--beam", type=_whole(1), default=5, help="sentences: beam width")
    _label_option(p)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("reconstruct", help="test images beside their reconstructions; or the sentences that "
                                           "a sentence's code z ~ q(z|x) decodes to")
    p.add_argument("run_dir")
    p.add_argument("sentence", nargs="?", help="sentence runs: the sentence to encode")
    p.add_argument("--n", type=_whole(1), help="images (default 32), or posterior samples of the sentence (default 5)")
    p.add_argument("--seed", type=_whole(0), default=0)
    p.add_argument("--out", help="PNG path (default RUN_DIR/reconstructions.png)")
    _label_option(p)
    p.set_defaults(func=cmd_reconstruct)

    p = sub.add_parser("interpolate", help="a homotopy: sentences decoded between the codes of two sentences")
    p.add_argument("run_dir")
    p.add_argument("first")
    p.add_argument("second")
    p.add_argument("--steps", type=_whole(2), default=5, help="points on the line, ends included")
    _label_option(p)
    p.set_defaults(func=cmd_interpolate)

    p = sub.add_parser("impute", help="complete the end of a sentence from its beginning (beam search + ICM)")
    p.add_argument("run_dir")
    p.add_argument("prefix")
    p.add_argument("--beam", type=_whole(1), default=5)
    p.add_argument("--icm", type=_whole(0), default=3, help="rounds of iterated conditional modes between z and words")
    p.add_argument("--length-penalty", type=float, default=0.0,
                   help="rank completions by log-probability / length ** P (0: raw sum, which favours short endings)")
    _label_option(p)
    p.set_defaults(func=cmd_impute)

    p = sub.add_parser("plot", help="sample grid, reconstructions, 2-D manifold, latent scatter, curves")
    p.add_argument("run_dir")
    p.add_argument("--what", default="all", help="comma-separated: samples,reconstructions,manifold,scatter,"
                                                 "traversals,curves,layers for an image VAE (default all that the "
                                                 "run's model draws; the manifold needs a 2-D latent, layers a "
                                                 "hierarchy: model.hierarchy); completions or "
                                                 "samples for a CVAE, analogies for M2, curves for sentences")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("export", help="write model.safetensors + config.json")
    p.add_argument("run_dir")
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=cmd_export)
    return parser


def _progress(flag: str) -> bool | None:
    return None if flag == "auto" else flag == "on"


def cmd_info(args) -> None:
    from .devices import machine_report

    print("\n".join(machine_report()))


def cmd_data(args) -> None:
    from .data import DATASETS, mnist_dir, verify
    from .data.text import TEXT_DATASETS, verify_text

    if args.action == "list":
        for name, text in {**DATASETS, **TEXT_DATASETS}.items():
            print(f"{name:15s} {text}")
        return
    if not args.name:
        raise VaekitError(f"`vaekit data {args.action}` needs a data set name: "
                          f"{', '.join([*DATASETS, *TEXT_DATASETS])}")
    if args.name in TEXT_DATASETS:
        print(verify_text(args.name))
    elif args.action == "fetch":
        if args.name == "mnist":
            print(f"mnist: ready in {mnist_dir()}")
        else:
            print(verify(args.name))
    else:
        print(verify(args.name))


def _launch_torchrun(nproc: int, argv: list[str]) -> None:
    """Re-run this same command under ``torchrun --standalone --nproc_per_node=N`` (and return its status)."""
    import os
    import subprocess

    rest, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == "--nproc":
            skip = True
        elif not item.startswith("--nproc="):
            rest.append(item)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "vaekit", *rest]
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(subprocess.run(command, env=env).returncode)


def cmd_train(args) -> None:
    import os

    if args.nproc > 1 and int(os.environ.get("WORLD_SIZE", "1")) == 1:
        _launch_torchrun(args.nproc, args.argv)
    from .checkpoint import load
    from .config import load_recipe
    from .report import evaluate_run, format_report, plot_run
    from .train import train

    overrides = (list(args.overrides) + ([f"train.epochs={args.epochs}"] if args.epochs else [])
                 + ([f"train.device={args.device}"] if args.device else []))
    if args.resume:
        if args.recipe:
            raise VaekitError("give either a recipe or --resume RUN_DIR (a resumed run keeps its own config)")
        run_dir = Path(args.resume)
        config = load_recipe(None, overrides, base=load(run_dir)["config"])
    else:
        config = load_recipe(args.recipe, overrides)
        run_dir = Path(args.out or f"runs/{config.name}")
    start = time.perf_counter()
    result = train(config, run_dir, resume=bool(args.resume), progress=_progress(args.progress))
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"trained {result.epoch} epochs ({result.step} steps) in {result.elapsed_s:.0f} s -> {run_dir}",
              file=sys.stderr)
    if result.interrupted:
        raise KeyboardInterrupt
    if int(os.environ.get("RANK", "0")) != 0 or args.no_eval or not result.finished:
        return  # in a distributed run, rank 0 alone evaluates and plots
    report = evaluate_run(run_dir, progress=_progress(args.progress))
    if config.eval.plots:
        plot_run(run_dir)
    report["total_seconds"] = time.perf_counter() - start
    (run_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(format_report(report))


def cmd_eval(args) -> None:
    from .report import evaluate_run, format_report

    report = evaluate_run(args.run_dir, k=args.k, split=args.split, limit=args.limit,
                          progress=_progress(args.progress), device=args.device)
    print(format_report(report))


def cmd_compare(args) -> None:
    from .config import RunConfig
    from .report import paired_nll_difference

    config_path = Path(args.run_a) / "config.json"
    if not config_path.exists():
        raise VaekitError(f"{args.run_a} is not a run directory (no config.json): name two runs that "
                          "`vaekit train` made and `vaekit eval` scored")
    config = RunConfig.from_dict(json.loads(config_path.read_text()))
    k, split = args.k or config.eval.k, args.split or config.eval.split
    r = paired_nll_difference(args.run_a, args.run_b, split, k, args.k_b)
    print(f"NLL: A {r['mean_a']:.3f}, B {r['mean_b']:.3f} nats per example ({split}, n = {r['n']})\n"
          f"A - B = {r['mean']:+.3f} ± {r['stderr']:.3f} nats (paired standard error); "
          f"A lower on {100 * r['fraction_a_lower']:.1f}% of examples\n"
          f"A = {args.run_a}\nB = {args.run_b}")


def _label_option(parser) -> None:
    parser.add_argument("--label", help="sentence runs conditioned on labels (model.condition_embedding > 0): the "
                        "label (e.g. a Brown genre such as news) to encode and generate under")


def _label_id(args, state: dict) -> int | None:
    """The id of ``--label`` among the run's label names (None for an unconditional run), or a clear error."""
    names = state.get("label_names")
    if args.label is None and not names:
        return None
    if not names:
        raise VaekitError(f"{args.run_dir} is not conditioned on labels: leave --label out")
    if args.label is None:
        raise VaekitError(f"{args.run_dir} is conditioned on labels: name one with --label ({', '.join(names)})")
    if args.label not in names:
        raise VaekitError(f"--label {args.label!r}: this run knows the labels {', '.join(names)}")
    return names.index(args.label)


def _sentence_run(run_dir: str, verb: str):
    """(model, vocab, checkpoint state) of a sentence run; a clear error for an image run."""
    from .runs import load_model, run_vocab

    config, model, state = load_model(run_dir)
    if not config.data.is_text:
        raise VaekitError(f"`vaekit {verb}` works on sentence models; {run_dir} is an image model "
                          "(see `vaekit sample` and `vaekit reconstruct` for images)")
    return model, run_vocab(state), state


def _print_sentences(generated, numbered: bool = True) -> None:
    for i, g in enumerate(generated):
        print((f"{i + 1:3d}. " if numbered else "") + " ".join(g.words) + f"    [log p = {g.log_prob:.2f}]")


def cmd_sample(args) -> None:
    from .families import family_of
    from .runs import load_model, run_vocab

    config, model, state = load_model(args.run_dir)
    family = family_of(config)
    if family.text:
        from .generate import sample_sentences

        _print_sentences(sample_sentences(model, run_vocab(state), n=args.n or 10, method=args.method,
                                          temperature=args.temperature, beam=args.beam, seed=args.seed,
                                          label=_label_id(args, state)))
        return
    print(family.draw(Path(args.run_dir), config, model, state, args.out and Path(args.out), args.n, args.seed))


def cmd_reconstruct(args) -> None:
    from .families import family_of
    from .runs import load_model, run_vocab

    config, model, state = load_model(args.run_dir)
    family = family_of(config)
    if family.text:
        from .generate import posterior_sentences

        if not args.sentence:
            raise VaekitError('give the sentence to encode: vaekit reconstruct RUN_DIR "a sentence"')
        _print_sentences(posterior_sentences(model, run_vocab(state), args.sentence, n=args.n or 5,
                                             seed=args.seed, label=_label_id(args, state)))
        return
    print(family.reconstruct(Path(args.run_dir), config, model, state, args.out and Path(args.out), args.n))


def cmd_interpolate(args) -> None:
    from .generate import homotopy

    model, vocab, state = _sentence_run(args.run_dir, "interpolate")
    _print_sentences(homotopy(model, vocab, args.first, args.second, steps=args.steps, label=_label_id(args, state)))


def cmd_impute(args) -> None:
    from .generate import impute

    model, vocab, state = _sentence_run(args.run_dir, "impute")
    _print_sentences([impute(model, vocab, args.prefix, beam=args.beam, icm=args.icm, label=_label_id(args, state),
                             length_penalty=args.length_penalty)],
                     numbered=False)


def cmd_plot(args) -> None:
    from .report import plot_run

    what = None if args.what == "all" else tuple(w.strip() for w in args.what.split(",") if w.strip())
    if what and "manifold" in what:
        from .runs import load_model
        _, model, _ = load_model(args.run_dir)
        latent = getattr(model, "latent", None)
        if latent is not None and (latent.kind != "gaussian" or latent.size != 2):
            raise VaekitError(f"the manifold plot needs a 2-D latent space; this run has z of dimension "
                              f"{model.latent_dim}. Train recipes/manifold2d.toml for it.")
    try:
        written = plot_run(args.run_dir, what)
    except ValueError as exc:
        raise VaekitError(str(exc)) from None
    for path in written:
        print(path)


def cmd_export(args) -> None:
    from .export import export_run

    print(export_run(args.run_dir, args.out))


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """vaekit's own warnings as one ``warning:`` line (they name their fix); others as Python prints them."""
    if issubclass(category, VaekitWarning):
        print(f"warning: {message}", file=sys.stderr)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            warnings.simplefilter("default", VaekitWarning)  # shown once each, whatever the caller's filters
            args.func(args)
    except VaekitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
