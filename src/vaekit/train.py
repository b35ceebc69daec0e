"""The one training loop: Adam on a per-example objective, with exact resume.

Read top to bottom, :func:`train` does: ask the config's model family (:mod:`vaekit.families`) to build
the model, its feed and its gradient estimator (or restore them from ``RUN_DIR/checkpoint.pt``), then for
each epoch draw the epoch's plan from the feed (:mod:`vaekit.feeds`: a permutation of images, or
length-bucketed batches of sentences), and for each batch let the feed build it (index the uint8 images
and binarise them afresh; pad sentences and apply word dropout), evaluate the family's objective, step
Adam and the learning-rate schedule. After every epoch it scores the validation bound, appends a line to
``metrics.jsonl`` and writes a checkpoint atomically. An interrupt (Ctrl-C, SIGTERM) finishes the current
step and writes a checkpoint there; a non-finite loss stops the run and keeps the last good checkpoint.

Randomness comes from generators that are all saved in checkpoints: ``data_rng`` (epoch plans, and
binarisation or word dropout in a single process) and torch's global generator (reparameterisation noise).

With ``train.device`` a GPU (:mod:`vaekit.devices`), the model and its optimizer state live there and each batch
is moved there after the feed has built it on the CPU, so the batches are those of the CPU run; the
reparameterisation noise then comes from the GPU's generator, whose state the checkpoint keeps too.

Under torchrun the same loop is data-parallel (see :mod:`vaekit.distributed`): the objective is
wrapped in ``DistributedDataParallel``, which averages gradients; every rank draws the same
permutation and takes its own ``batch_size`` slice of each global batch of ``batch_size * world``;
each rank's noise is seeded apart; sums and counts are reduced across ranks; only rank 0 writes
files or prints. An epoch then has ``N // (batch_size * world)`` steps (the remainder is dropped so
every rank sees the same number of examples).
"""

from __future__ import annotations

import copy
import json
import math
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from . import checkpoint
from .allocator import retain_freed_memory
from .config import RunConfig
from .data import ImageData
from .data.text import TextData
from .devices import rng_state, resolve_device, set_rng_state, to_device
from .distributed import Dist, rank_seeds, setup
from .errors import CheckpointError, ConfigError, TrainingDiverged
from .estimators import GumbelSoftmax
from .families import FAMILIES, Family, family_of
from .nets.heads import full_precision
from .precision import warn_if_bfloat16_is_emulated
from .runs import load_data, write_json
from .schedules import Plateau, gumbel_temperature, kl_weight, lr_multiplier


@dataclass
class TrainResult:
    run_dir: Path
    epoch: int          # completed epochs
    step: int           # optimiser steps taken
    finished: bool      # all epochs done, or the plateau schedule's last decay (False when stopped by max_steps
                        # or an interrupt)
    elapsed_s: float    # training wall time over all sessions of this run
    interrupted: bool = False  # stopped by SIGINT / SIGTERM (a checkpoint was written)
    model: torch.nn.Module | None = None  # the trained model (this rank's replica in a distributed run)
    estimator: torch.nn.Module | None = None  # the gradient estimator with its baseline state, if any


def make_optimizer(model: torch.nn.Module, config: RunConfig) -> torch.optim.Optimizer:
    """``train.optimizer``: Adam, or SGD (``theta -= lr * (g + momentum * buffer)``), each with the fused kernel
    where this torch build has it (one pass over all parameters), the multi-tensor one otherwise."""
    t = config.train
    if t.optimizer == "sgd":
        kind, kwargs = torch.optim.SGD, dict(lr=t.lr, momentum=t.momentum)
    else:
        kind, kwargs = torch.optim.Adam, dict(lr=t.lr, betas=t.adam_betas, eps=t.adam_eps)
    try:
        return kind(model.parameters(), fused=True, **kwargs)
    except (RuntimeError, TypeError):
        return kind(model.parameters(), foreach=True, **kwargs)


def clip_gradients(parameters: list[torch.nn.Parameter], max_norm: float) -> None:
    """``torch.nn.utils.clip_grad_norm_`` (scale every gradient by ``min(1, max_norm / (||g||_2 + 1e-6))``),
    without the pass over all gradients when the factor is 1: torch multiplies unconditionally (to avoid a
    device sync), which on the CPU is a wasted read and write of every gradient. Bit-identical results."""
    grads = [p.grad for p in parameters if p.grad is not None]
    norm = torch.nn.utils.get_total_norm(grads)
    if not max_norm / (float(norm) + 1e-6) >= 1.0:  # (a non-finite norm is passed on, as torch does)
        torch.nn.utils.clip_grads_with_norm_(parameters, max_norm, norm)


STOP_SYNC_EVERY = 25  # steps between the ranks' agreement on a stop signal (a collective, so not every step)


class ObjectiveModule(torch.nn.Module):
    """The model with its training objective as ``forward``, so that DistributedDataParallel (which
    hooks ``forward``) can wrap it. Returns per-example ``(loss, bound, kl)``, the last two detached.
    What the objective is for a batch is the family's (:meth:`vaekit.families.Family.training_terms`)."""

    def __init__(self, model: torch.nn.Module, family: Family, name: str, k: int,
                 estimator: torch.nn.Module | None = None, free_bits: float = 0.0, classifier_weight: float = 0.0,
                 hybrid_alpha: float = 0.5, precision: str = "float32"):
        super().__init__()
        self.model, self.family, self.name, self.k, self.estimator = model, family, name, k, estimator
        self.free_bits, self.classifier_weight, self.hybrid_alpha = free_bits, classifier_weight, hybrid_alpha
        self.precision = precision

    def forward(self, x, beta: float = 1.0, capacity: float | None = None):
        # mixed precision: autocast runs the matrix products in bfloat16; the distribution heads and the
        # token likelihood take their parameters back to float32 (nets.heads.full_precision), as do these terms
        device = next(self.model.parameters()).device.type
        with torch.autocast(device, dtype=torch.bfloat16, enabled=self.precision == "bfloat16"):
            terms = self.family.training_terms(self, x, beta, capacity)
        return full_precision(terms.loss), full_precision(terms.bound.detach()), full_precision(terms.kl.detach())


class StopSignal:
    """Turns SIGINT / SIGTERM into a flag read between optimiser steps, so that a checkpoint is never
    written in the middle of a step (a second Ctrl-C interrupts at once)."""

    def __init__(self):
        self.requested = False
        self._previous = {}

    def _handle(self, signum, frame):
        if self.requested:  # asked twice: stop now
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        import threading
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


@torch.no_grad()
def validation_elbo(model, batches, dist: Dist | None = None, name: str = "elbo",
                    family: Family | None = None) -> dict[str, float]:
    """Mean bound, log p(x|z) and KL over ``batches`` (one z sample per example): the ELBO, or what
    ``family.validation_terms`` scores for objective ``name`` (the exact log-likelihood with KL 0 for a
    language model or the deterministic baseline, the GSNN bound, M2's bound with the label summed out);
    with ``dist``, each rank scores its own batches and the sums are reduced."""
    dist = dist or Dist()
    family = family or FAMILIES["vae"]
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    totals = torch.zeros(3, dtype=torch.float64)
    count = 0
    for x in batches:
        terms = family.validation_terms(model, to_device(x, device), name)
        totals += torch.stack([terms.bound.sum(), terms.log_px_z.sum(), terms.kl.sum()]).double().cpu()
        count += len(x)
    model.train(was_training)
    *sums, count = dist.all_sum([*totals.tolist(), count])
    return {"elbo": sums[0] / max(1, count), "log_px_z": sums[1] / max(1, count), "kl": sums[2] / max(1, count)}


def train(config: RunConfig, run_dir: str | Path, resume: bool = False, data: ImageData | TextData | None = None,
          progress: bool | None = None) -> TrainResult:
    """Train the model ``config`` describes in ``run_dir``; with ``resume``, continue its checkpoint."""
    dist = setup()
    try:
        return _train(config, Path(run_dir), resume, data, progress, dist)
    finally:
        dist.close()


def plateau_criterion(record: dict, beta: float) -> float:
    """The validation figure the plateau schedule watches: the objective the run trains, at full KL weight. The
    ELBO ``log p(x|z) - KL`` for a VAE; ``log p(x|z) - beta KL`` with ``train.beta`` (an autoencoder, beta = 0,
    is judged by its reconstruction alone: its KL grows as it trains, so its ELBO would call every epoch worse)."""
    if beta == 1.0 or "val_log_px_z" not in record or "val_kl" not in record:
        return record["val_elbo"]
    return record["val_log_px_z"] - beta * record["val_kl"]


def _train(config: RunConfig, run_dir: Path, resume: bool, data: ImageData | TextData | None, progress: bool | None,
           dist: Dist) -> TrainResult:
    t = config.train
    if t.threads:
        torch.set_num_threads(t.threads)
    if t.retain_memory:
        retain_freed_memory()
    progress = (sys.stderr.isatty() if progress is None else progress) and dist.is_main

    device = resolve_device(t.device)
    if dist.active and device.type != "cpu":
        raise ConfigError("data-parallel training (torchrun / --nproc) runs on CPU processes for now; on a GPU "
                          "train in one process (drop --nproc), or set --set train.device=cpu")
    data = load_data(config.data) if data is None else data
    family = family_of(config)
    if not family.distributed and dist.active:
        raise ConfigError(f"{family.name} models train in one process for now (data-parallel training of them "
                          "is not tested yet): run without torchrun / --nproc")
    spec = family.spec(config, data)  # shape, likelihood (and vocabulary): stored in checkpoints
    saved = None
    if resume:
        saved = dist.broadcast(checkpoint.load(run_dir) if dist.is_main else None)
        checkpoint.check_compatible(saved, config, spec["shape"])
        if "vocab" in spec and saved.get("vocab") != spec["vocab"]:
            raise CheckpointError(f"{run_dir} was trained with another vocabulary than the data now gives; "
                                  "resume with the same data and data.min_count / data.max_vocab")
        if saved.get("world_size", 1) != dist.world:
            raise CheckpointError(f"{run_dir} was written by a run of {saved.get('world_size', 1)} process(es); "
                                  f"resume it with the same number (now {dist.world}) to continue exactly")
    elif (run_dir / checkpoint.CHECKPOINT_NAME).exists():
        raise CheckpointError(f"{run_dir} already holds a run; continue it with `--resume {run_dir}` "
                              "or choose another output directory")

    torch.manual_seed(t.seed)
    model = family.build(config, spec)
    if saved is None:
        family.initialise(model, config, data)
        if t.init_from:  # warm start from another run's weights, some submodules kept fresh (Li et al. 2019)
            checkpoint.warm_start(model, t.init_from, t.init_reset, spec)
    estimator = family.estimator(config, spec)  # (a learned baseline draws its initial weights here)
    feed = family.feed(config, data, dist)
    classifier_weight = t.classifier_weight or getattr(feed, "default_classifier_weight", 0.0)
    step_module = ObjectiveModule(model, family, t.objective, t.k, estimator, t.free_bits, classifier_weight,
                                  t.hybrid_alpha, t.precision).to(device)  # (the estimator's baseline too)
    warn_if_bfloat16_is_emulated(t.precision, device.type)
    optimizer = make_optimizer(step_module, config)  # a learned baseline trains alongside the model
    parameters = list(model.parameters())  # (what gradient clipping covers: the model, not a learned baseline)
    steps_per_epoch = feed.steps_per_epoch
    plateau = Plateau(t.plateau_patience, t.plateau_factor, t.plateau_decays) if t.lr_schedule == "plateau" else None
    best_copy = None  # plateau: the model's (and estimator's) weights at the best validation bound

    def snapshot() -> dict:
        return {"model": copy.deepcopy(model.state_dict()),
                "estimator": None if estimator is None else copy.deepcopy(estimator.state_dict())}

    def lr_lambda(step: int) -> float:
        decayed = plateau.multiplier if plateau is not None else 1.0
        return decayed * lr_multiplier(t.lr_schedule, step, steps_per_epoch, t.epochs, t.warmup_steps)

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
    data_rng = torch.Generator().manual_seed(t.seed)
    binarize_rng = data_rng
    if dist.active:
        noise_seed, binarize_seed = rank_seeds(t.seed, dist.rank)
        torch.manual_seed(noise_seed)
        binarize_rng = torch.Generator().manual_seed(binarize_seed)
    epoch, step, batch_in_epoch, perm, elapsed_before = 0, 0, 0, None, 0.0
    sums = {"loss": 0.0, "bound": 0.0, "kl": 0.0, "seen": 0, "tokens": 0}  # this rank's totals of the epoch

    if saved is not None:
        model.load_state_dict(saved["model"])
        if estimator is not None:
            estimator.load_state_dict(saved["estimator"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        if plateau is not None and "plateau" in saved:
            plateau.load_state_dict(saved["plateau"]["state"])
            best_copy = saved["plateau"]["best"]
            if best_copy is None and plateau.best > -math.inf:
                best_copy = snapshot()  # a finished run holds its best weights as the model (see below)
        data_rng.set_state(saved["rng"]["data"])
        if dist.active:
            mine = saved["rng"]["ranks"][dist.rank]
            torch.set_rng_state(mine["torch"])
            binarize_rng.set_state(mine["binarize"])
            sums = {**sums, **mine["epoch_sums"]}
        else:
            torch.set_rng_state(saved["rng"]["torch"])
            set_rng_state(saved["rng"].get("cuda"), device)  # (a run moved between devices draws new noise)
            sums = {**sums, **saved.get("epoch_sums", {})}
        epoch, step, batch_in_epoch = saved["epoch"], saved["step"], saved["batch_in_epoch"]
        perm, elapsed_before = saved["perm"], saved["elapsed_s"]
        if dist.is_main:
            _truncate_metrics(run_dir / "metrics.jsonl", saved["metrics_lines"])
    if dist.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "config.json", config.to_dict())

    if dist.active:
        step_module = torch.nn.parallel.DistributedDataParallel(step_module)
    metrics_path = run_dir / "metrics.jsonl"
    writer = _tensorboard(run_dir) if dist.is_main else None

    def save(elapsed: float) -> None:
        """Write a checkpoint (a collective: every rank contributes its random state; rank 0 writes)."""
        per_rank = dist.gather({"torch": torch.get_rng_state(), "binarize": binarize_rng.get_state(),
                                "epoch_sums": dict(sums)})
        if not dist.is_main:
            return
        rng = {"torch": torch.get_rng_state(), "data": data_rng.get_state()}
        if device.type == "cuda":
            rng["cuda"] = rng_state(device)
        if dist.active:
            rng["ranks"] = per_rank
        state = {
            "format": checkpoint.FORMAT, "config": config.to_dict(), **spec,  # shape, likelihood (vocab, labels)
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "estimator": estimator.state_dict() if estimator is not None else {},
            "scheduler": scheduler.state_dict(), "epoch": epoch, "step": step,
            "batch_in_epoch": batch_in_epoch, "perm": perm, "epoch_sums": dict(sums), "rng": rng,
            "world_size": dist.world, "metrics_lines": _count_lines(metrics_path), "elapsed_s": elapsed,
        }
        if plateau is not None:
            state["plateau"] = {"state": plateau.state_dict(), "best": best_copy}
            state["stopped_early"] = plateau.done
        checkpoint.save_atomic(state, run_dir / checkpoint.CHECKPOINT_NAME)

    def budget_left() -> bool:
        return not t.max_steps or step < t.max_steps

    def restore_best() -> None:
        """Plateau: back to the best validation's weights, at the rate decayed so far."""
        model.load_state_dict(best_copy["model"])
        if estimator is not None:
            estimator.load_state_dict(best_copy["estimator"])
        for group, base in zip(optimizer.param_groups, scheduler.base_lrs):
            group["lr"] = base * lr_lambda(step)

    def plateau_done() -> bool:
        return plateau is not None and plateau.done

    session_start = time.perf_counter()
    model.train()
    beta = t.beta
    stopping = False  # every rank agrees on it: a stop signal on any rank stops all after the same step
    with StopSignal() as stop:
        while epoch < t.epochs and budget_left() and not stopping and not plateau_done():
            if perm is None:
                perm = feed.plan(data_rng)
            epoch_start, examples_this_session = time.perf_counter(), 0
            bar = _progress_bar(progress, steps_per_epoch, batch_in_epoch, f"epoch {epoch + 1}/{t.epochs}")
            while batch_in_epoch < steps_per_epoch and budget_left() and not stopping:
                x, b = feed.batch(perm, batch_in_epoch, binarize_rng)
                tokens = family.tokens(x)  # (counted on the CPU: no wait for a GPU)
                x = to_device(x, device)
                if isinstance(estimator, GumbelSoftmax):
                    estimator.temperature = gumbel_temperature(step, t.temperature, t.temperature_min,
                                                               t.temperature_rate, t.temperature_every)
                beta = t.beta * kl_weight(t.kl_schedule, step, t.kl_warmup, t.kl_logistic_k, t.kl_logistic_x0,
                                          t.kl_cycles, steps_per_epoch * t.epochs, t.kl_cycle_ratio, t.kl_start)
                capacity = (min(t.capacity_max, t.capacity_max * step / max(1, t.capacity_steps))
                            if t.capacity_max > 0 else None)  # Burgess et al. (2018): C grows linearly
                loss_per_example, bound, kl = step_module(x, beta, capacity)
                loss = loss_per_example.mean()
                # one read of three numbers (on a GPU each read waits for the queued work: one wait per step)
                loss_value, bound_sum, kl_sum = torch.stack(
                    [loss.detach().double(), bound.sum().double(), kl.sum().double()]).tolist()
                if not dist.active:
                    stopping = stop.requested
                elif step % STOP_SYNC_EVERY == 0 or batch_in_epoch + 1 == steps_per_epoch:
                    stopping = dist.all_sum([float(stop.requested)])[0] > 0  # every rank stops after one step
                if not math.isfinite(loss_value):  # (under torchrun, this rank's error stops the others)
                    raise TrainingDiverged(
                        f"the loss became {loss_value} at step {step + 1} (epoch {epoch + 1}); the last good "
                        f"checkpoint in {run_dir} was kept. Lower train.lr, set train.grad_clip, or check the data.")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if t.grad_clip > 0:
                    clip_gradients(parameters, t.grad_clip)
                optimizer.step()
                scheduler.step()
                step += 1
                batch_in_epoch += 1
                sums["loss"] += loss_value * b
                sums["bound"] += bound_sum
                sums["kl"] += kl_sum
                sums["seen"] += b
                sums["tokens"] += tokens
                examples_this_session += b
                if bar is not None:
                    bar.update(1)
                    if step % t.log_every == 0:
                        bar.set_postfix(loss=f"{sums['loss'] / sums['seen']:.2f}")
            if bar is not None:
                bar.close()
            if batch_in_epoch < steps_per_epoch:
                break  # max_steps or a stop signal inside an epoch: checkpoint below, no epoch line
            epoch += 1
            loss_sum, bound_sum, kl_sum, seen, examples, tokens = dist.all_sum(
                [sums["loss"], sums["bound"], sums["kl"], sums["seen"], examples_this_session, sums["tokens"]])
            seen = max(1, seen)
            epoch_seconds = max(1e-9, time.perf_counter() - epoch_start)
            record = {"epoch": epoch, "step": step, "lr": optimizer.param_groups[0]["lr"], "kl_weight": beta,
                      "train_loss": loss_sum / seen, "train_bound": bound_sum / seen, "train_kl": kl_sum / seen,
                      "examples_per_s": examples / epoch_seconds}
            if family.text:  # words + </s> of every sentence; exact per epoch only without a mid-epoch resume
                record["train_nll_per_token"] = -bound_sum / max(1, tokens)
                record["tokens_per_s"] = tokens * examples / seen / epoch_seconds
            batch_in_epoch, perm = 0, None
            sums = {"loss": 0.0, "bound": 0.0, "kl": 0.0, "seen": 0, "tokens": 0}
            if t.val_every and (epoch % t.val_every == 0 or epoch == t.epochs):
                record.update({f"val_{k}": v for k, v in validation_elbo(
                    model, feed.validation_batches(), dist=dist, name=t.objective, family=family).items()})
                if hasattr(feed, "validation_error"):  # M2: the classifier q(y|x)
                    record["val_error_pct"] = feed.validation_error(model)
                if plateau is not None:
                    action = plateau.observe(plateau_criterion(record, t.beta))
                    if action == "best":
                        best_copy = snapshot()
                    elif best_copy is not None and (action in ("decay", "stop") or epoch >= t.epochs):
                        restore_best()  # (and the last epoch ends on the best weights)
                    if plateau.done or epoch >= t.epochs:
                        best_copy = None  # the model is the best copy now: the final checkpoint holds it once
                    record["plateau"] = action
                    record["lr_decays"] = plateau.decays
            record["elapsed_s"] = elapsed_before + time.perf_counter() - session_start
            if dist.is_main:
                with open(metrics_path, "a") as handle:
                    handle.write(json.dumps(record) + "\n")
                if writer is not None:
                    for key, value in record.items():
                        if key not in ("epoch", "step") and isinstance(value, (int, float)):  # (not "plateau")
                            writer.add_scalar(key, value, step)
                if not progress:
                    _print_epoch(record)
            if epoch % t.checkpoint_every == 0 or epoch == t.epochs:
                save(record["elapsed_s"])
    if writer is not None:
        writer.close()
    elapsed = elapsed_before + time.perf_counter() - session_start
    if batch_in_epoch or epoch % t.checkpoint_every:
        save(elapsed)
    if stopping and dist.is_main:
        print(f"\nstopped at step {step}; checkpoint written. Continue with `vaekit train --resume {run_dir}`.",
              file=sys.stderr)
    return TrainResult(run_dir, epoch, step, epoch >= t.epochs or plateau_done(), elapsed, interrupted=stopping,
                       model=model, estimator=estimator)


def _progress_bar(enabled: bool, total: int, initial: int, desc: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, desc=desc, leave=False, dynamic_ncols=True)


def _print_epoch(record: dict) -> None:
    val = f"  val ELBO {record['val_elbo']:.2f}" if "val_elbo" in record else ""
    if "val_error_pct" in record:
        val += f"  val error {record['val_error_pct']:.2f}%"
    plateau = ""
    if record.get("plateau") in ("decay", "stop"):
        plateau = (f"  (no better for {'a while' if record['plateau'] == 'decay' else 'the last time'}: best weights "
                   f"restored, decay {record['lr_decays']}" + (", stopping)" if record["plateau"] == "stop" else ")"))
    print(f"epoch {record['epoch']:4d}  step {record['step']:7d}  loss {record['train_loss']:.3f}  "
          f"KL {record['train_kl']:.2f}{val}  {record['examples_per_s']:.0f} ex/s{plateau}",
          file=sys.stderr, flush=True)


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with open(path) as handle:
        return sum(1 for _ in handle)


def _truncate_metrics(path: Path, lines: int) -> None:
    """Drop metric lines written after the checkpoint (a crash between the two), so none repeat."""
    if not path.exists():
        return
    kept = path.read_text().splitlines(keepends=True)[:lines]
    path.write_text("".join(kept))


def _tensorboard(run_dir: Path):
    """A TensorBoard SummaryWriter when the ``tensorboard`` package is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))
