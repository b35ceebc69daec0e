"""Learning-rate schedules as functions ``step -> multiplier`` (training policy, not model code).

``burda``: Burda et al. (2016, Sec. 5) train for ``sum_{i=0}^{7} 3^i = 3280`` epochs, stage ``i``
lasting ``3^i`` epochs at learning rate ``0.001 * 10^(-i/7)``. Here the stages keep those
proportions of ``train.epochs``, so ``epochs = 3280`` is their schedule exactly and fewer epochs
compress it.
"""

from __future__ import annotations

import math

BURDA_STAGES = [3**i for i in range(8)]  # epochs per stage; total 3280


def burda_multiplier(epoch_progress: float, total_epochs: int) -> float:
    """``10^(-i/7)`` for the stage ``i`` that ``epoch_progress`` (epochs done, fractional) falls in."""
    scale = total_epochs / sum(BURDA_STAGES)
    boundary = 0.0
    for i, length in enumerate(BURDA_STAGES):
        boundary += length * scale
        if epoch_progress < boundary - 1e-9:
            return 10 ** (-i / 7)
    return 10 ** (-(len(BURDA_STAGES) - 1) / 7)


def lr_multiplier(kind: str, step: int, steps_per_epoch: int, epochs: int, warmup_steps: int = 0) -> float:
    """Multiplier of the base learning rate at optimiser step ``step`` (0-based)."""
    total = max(1, steps_per_epoch * epochs)
    warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    if kind == "constant":
        return warm
    if kind == "cosine":
        return warm * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
    if kind == "burda":
        return warm * burda_multiplier(step / steps_per_epoch, epochs)
    raise ValueError(f"unknown lr_schedule {kind!r}: choose constant, cosine or burda")


def gumbel_temperature(step: int, start: float, minimum: float, rate: float, every: int = 1000) -> float:
    """Jang et al. (2017): ``tau = max(minimum, start * exp(-rate * t))``, with t the step rounded down to
    a multiple of ``every`` (the temperature changes every ``every`` steps)."""
    t = (step // every) * every if every > 1 else step
    return max(minimum, start * math.exp(-rate * t))


def kl_weight(kind: str, step: int, warmup: int = 10000, logistic_k: float = 0.0025, logistic_x0: int = 2500,
              cycles: int = 4, total_steps: int = 100000, ratio: float = 0.5) -> float:
    """The weight on the KL term at ``step`` (KL annealing, a training policy):

    * ``none``: 1.
    * ``linear``: ``min(1, step / warmup)``.
    * ``logistic``: ``1 / (1 + exp(-k (step - x0)))`` (Bowman et al. 2016, Sec. 3.1; k = 0.0025 and
      x0 = 2500 are the values of public re-implementations, the paper gives the shape only).
    * ``cyclical``: ``cycles`` cycles over ``total_steps``; within each, the weight rises linearly from
      0 to 1 over the first ``ratio`` of the cycle, then stays at 1 (Fu et al. 2019).
    """
    if kind == "none":
        return 1.0
    if kind == "linear":
        return min(1.0, step / max(1, warmup))
    if kind == "logistic":
        return 1.0 / (1.0 + math.exp(-logistic_k * (step - logistic_x0)))
    if kind == "cyclical":
        period = total_steps / cycles
        position = (step % period) / period
        return min(1.0, position / ratio)
    raise ValueError(f"unknown KL schedule {kind!r}: choose none, linear, logistic or cyclical")
