"""Learning-rate schedules as functions ``step -> multiplier`` (training policy, not model code).

``burda``: Burda et al. (2016, Sec. 5) train for ``sum_{i=0}^{7} 3^i = 3280`` epochs, stage ``i``
lasting ``3^i`` epochs at learning rate ``0.001 * 10^(-i/7)``. Here the stages keep those
proportions of ``train.epochs``, so ``epochs = 3280`` is their schedule exactly and fewer epochs
compress it.

``plateau``: the rate stays constant until the validation bound stops improving, then halves
(``Plateau``, below), as texar's PTB sentence-VAE example trains (Adam 1e-3, halved after 2
validation epochs without a new best, the best weights restored, stopping at the 5th halving).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

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
    if kind in ("constant", "plateau"):  # (plateau: times Plateau.multiplier, applied by the trainer)
        return warm
    if kind == "cosine":
        return warm * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
    if kind == "burda":
        return warm * burda_multiplier(step / steps_per_epoch, epochs)
    raise ValueError(f"unknown lr_schedule {kind!r}: choose constant, cosine, burda or plateau")


@dataclass
class Plateau:
    """Validation-driven learning-rate decay with restarts from the best weights.

    After each validation, ``observe(bound)`` (higher is better: the validation ELBO, or the exact
    log-likelihood of a language model) answers what the trainer should do:

    * ``"best"``: a new best bound; keep a copy of the weights. (Only the weights: Adam's moments go on
      from where they are, so a copy costs one model, not three. texar's TensorFlow example restores the
      moments too, its PyTorch port restores nothing; moments with beta1 = 0.9 forget in tens of steps.)
    * ``"wait"``: no improvement yet, fewer than ``patience`` validations in a row.
    * ``"decay"``: ``patience`` validations in a row without improvement: the rate is multiplied by
      ``factor`` (``multiplier = factor ** decays``) and training goes on from the best copy.
    * ``"stop"``: the ``max_decays``-th decay: training ends with the best copy (so ``max_decays - 1``
      decayed rates are trained at, as in texar's example).

    Its state is plain numbers (``state_dict``), so a checkpoint resumes it exactly.
    """
    patience: int = 2
    factor: float = 0.5
    max_decays: int = 5
    best: float = -math.inf
    bad: int = 0       # validations since the best one
    decays: int = 0    # decays so far

    @property
    def multiplier(self) -> float:
        return self.factor ** self.decays

    @property
    def done(self) -> bool:
        return self.decays >= self.max_decays

    def observe(self, bound: float) -> str:
        if bound > self.best:
            self.best, self.bad = bound, 0
            return "best"
        self.bad += 1
        if self.bad < self.patience:
            return "wait"
        self.bad = 0
        self.decays += 1
        return "stop" if self.done else "decay"

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)


def gumbel_temperature(step: int, start: float, minimum: float, rate: float, every: int = 1000) -> float:
    """Jang et al. (2017): ``tau = max(minimum, start * exp(-rate * t))``, with t the step rounded down to
    a multiple of ``every`` (the temperature changes every ``every`` steps)."""
    t = (step // every) * every if every > 1 else step
    return max(minimum, start * math.exp(-rate * t))


def kl_weight(kind: str, step: int, warmup: int = 10000, logistic_k: float = 0.0025, logistic_x0: int = 2500,
              cycles: int = 4, total_steps: int = 100000, ratio: float = 0.5, start: float = 0.0) -> float:
    """The weight on the KL term at ``step`` (KL annealing, a training policy):

    * ``none``: 1.
    * ``linear``: ``start + (1 - start) min(1, step / warmup)`` (texar's PTB example starts at 0.1 and
      reaches 1 after 10 epochs).
    * ``logistic``: ``1 / (1 + exp(-k (step - x0)))`` (Bowman et al. 2016, Sec. 3.1; k = 0.0025 and
      x0 = 2500 are the values of public re-implementations, the paper gives the shape only).
    * ``cyclical``: ``cycles`` cycles over ``total_steps``; within each, the weight rises linearly from
      0 to 1 over the first ``ratio`` of the cycle, then stays at 1 (Fu et al. 2019).
    """
    if kind == "none":
        return 1.0
    if kind == "linear":
        return start + (1.0 - start) * min(1.0, step / max(1, warmup))
    if kind == "logistic":
        return 1.0 / (1.0 + math.exp(-logistic_k * (step - logistic_x0)))
    if kind == "cyclical":
        period = total_steps / cycles
        position = (step % period) / period
        return min(1.0, position / ratio)
    raise ValueError(f"unknown KL schedule {kind!r}: choose none, linear, logistic or cyclical")
