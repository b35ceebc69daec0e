"""Distributions vaekit adds to ``torch.distributions``, and their KL registrations.

:class:`LogitBernoulli` is ``torch.distributions.Bernoulli`` with a KL computed from the logits. Torch's
closed form works on probabilities and sets the KL to infinity wherever a probability rounds to exactly
0 or 1; in float32 that happens for logits beyond about +-17, which a learned prior over binary units
(a sigmoid belief net's top layer) reaches in training. The true KL there is finite:

    KL(q || p) = sigma(a) (log sigma(a) - log sigma(b)) + sigma(-a) (log sigma(-a) - log sigma(-b))

for q = Bernoulli(sigmoid(a)), p = Bernoulli(sigmoid(b)), with every ``log sigma`` a stable ``logsigmoid``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, register_kl


class LogitBernoulli(Bernoulli):
    """A Bernoulli distribution whose KL to another :class:`LogitBernoulli` is computed from logits (finite
    for any finite logits). Construct it with ``logits=``."""


@register_kl(LogitBernoulli, LogitBernoulli)
def _kl_logit_bernoulli(q: LogitBernoulli, p: LogitBernoulli) -> torch.Tensor:
    a, b = torch.broadcast_tensors(q.logits, p.logits)
    on = torch.sigmoid(a)
    return on * (F.logsigmoid(a) - F.logsigmoid(b)) + (1 - on) * (F.logsigmoid(-a) - F.logsigmoid(-b))
