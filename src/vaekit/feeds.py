"""What the one trainer feeds a model: the plan of an epoch, its batches, and the validation batches.

The training loop (:mod:`vaekit.train`) knows nothing of images or sentences; a feed does:

* :class:`ImageFeed` -- the plan is a permutation of the training images; a batch indexes the uint8
  tensor by a slice of it and binarises it afresh (Burda et al. 2016) or scales it to [0, 1].
* :class:`SemiSupervisedFeed` -- as :class:`ImageFeed` over the unlabelled images, each batch paired with
  ``labelled_batch`` labelled images drawn with replacement from the few labelled ones (M2).
* :class:`QuadrantFeed` -- as :class:`ImageFeed`, each image split into given quadrants and the rest (CVAE).
* :class:`ClassConditionFeed` -- as :class:`ImageFeed`, each image paired with its one-hot class (CVAE that
  generates by digit).
* :class:`TextFeed` -- the plan is a ``(batches, batch_size)`` table of sentence indices (-1 pads the
  last row), bucketed by length (:func:`vaekit.data.text.bucket_order`); a batch pads its sentences
  into a :class:`SentenceBatch` and applies word dropout to the decoder inputs (Bowman et al. 2016,
  Sec. 3.2), a training policy that evaluation never sees. For a label-conditional sentence model the
  batch is a :class:`~vaekit.conditional.ConditionalBatch` of the sentences and their labels (genres).

A plan is one tensor, so it goes into the checkpoint and a resumed run continues inside the same epoch.
Under torchrun every rank draws the same plan and takes its own part of each global step.
"""

from __future__ import annotations

import math

import torch

from .conditional import ConditionalBatch, label_condition, quadrant_mask, split
from .config import RunConfig
from .data import ImageData, binarize
from .data.text import TextData, bucket_order, pad
from .distributed import Dist
from .errors import DataError
from .models.sentence_vae import SentenceBatch
from .semi_supervised import (LabelledBatch, default_classifier_weight, draw_labelled, error_rate,
                              reads_intensities)
from .text_policy import word_dropout


class ImageFeed:
    """Batches of images by indexing one uint8 tensor with a slice of a permutation."""

    def __init__(self, config: RunConfig, data: ImageData, dist: Dist, val_x: torch.Tensor):
        self.data, self.dist, self.val_x = data, dist, val_x
        self.batch_size = config.train.batch_size
        self.binarise = config.data.binarize == "dynamic"
        n = len(data.train)
        self.steps_per_epoch = (math.ceil(n / self.batch_size) if not dist.active
                                else n // (self.batch_size * dist.world))
        if self.steps_per_epoch == 0:
            raise DataError(f"{n} training examples make no batch of {self.batch_size} x {dist.world} processes: "
                            "lower train.batch_size or use fewer processes")

    def plan(self, generator: torch.Generator) -> torch.Tensor:
        return torch.randperm(len(self.data.train), generator=generator)

    def rows(self, plan: torch.Tensor, index: int) -> torch.Tensor:
        """Training-set rows of this rank's ``index``-th batch."""
        start = index * self.batch_size * self.dist.world + self.dist.rank * self.batch_size
        return plan[start:start + self.batch_size]

    def batch(self, plan: torch.Tensor, index: int, noise: torch.Generator) -> tuple[torch.Tensor, int]:
        """The ``index``-th batch of this rank and its size."""
        raw = self.data.train[self.rows(plan, index)]
        x = binarize(raw, self.data.max_value, noise) if self.binarise else raw.float().div_(self.data.max_value)
        return x, len(raw)

    def validation_batches(self, batch_size: int = 1000):
        """This rank's share of the validation set, in chunks (every ``world``-th example)."""
        x = self.val_x[self.dist.rank::self.dist.world]
        return [x[i:i + batch_size] for i in range(0, len(x), batch_size)]


class SemiSupervisedFeed(ImageFeed):
    """Kingma et al. (2014): a balanced labelled subset of ``data.labelled`` images (drawn by
    ``data.label_seed``); an epoch is a pass over the other training images without their labels, and each
    step also sees ``labelled_batch`` labelled images drawn at random with replacement."""

    def __init__(self, config: RunConfig, data: ImageData, dist: Dist, val_x: torch.Tensor, features=None):
        if data.train_labels is None or data.val_labels is None:
            raise DataError(f"semi-supervised training needs class labels, and {data.name} has none: use mnist or "
                            "fashion-mnist, or IDX files with a labels file")
        try:
            chosen = draw_labelled(data.train_labels, config.data.labelled, config.data.label_seed,
                                   config.model.categories)
        except ValueError as error:
            raise DataError(f"data.labelled = {config.data.labelled}: {error}") from None
        is_labelled = torch.zeros(len(data.train), dtype=torch.bool)
        is_labelled[chosen] = True
        self.labelled_x, self.labelled_y = data.train[chosen], data.train_labels[chosen]
        self.labelled_batch = config.train.labelled_batch
        self.n_total = len(data.train)
        # alpha of the classification term (Kingma et al. 2014, Eq. 9) unless train.classifier_weight sets it
        self.default_classifier_weight = default_classifier_weight(self.n_total, config.data.labelled)
        # paper: each labelled example weighs one unlabelled one (w = N_l / N_u); upweighted: w = 1
        n_labelled = config.data.labelled
        self.labelled_weight = (n_labelled / (self.n_total - n_labelled)
                                if config.train.ssl_weighting == "paper" else 1.0)
        unlabelled = ImageData(**{**data.__dict__, "train": data.train[~is_labelled], "train_labels": None})
        super().__init__(config, unlabelled, dist, val_x)
        self.val_labels = data.val_labels
        self.features = features  # M1+M2: a LatentFeatures whose samples replace the images
        if reads_intensities(config):  # M1 encodes the grey levels, not a binarisation of them
            self.binarise = False

    def batch(self, plan: torch.Tensor, index: int, noise: torch.Generator):
        x, b = super().batch(plan, index, noise)
        pick = torch.randint(len(self.labelled_x), (self.labelled_batch,), generator=noise)
        raw = self.labelled_x[pick]
        labelled = binarize(raw, self.data.max_value, noise) if self.binarise else raw.float().div_(self.data.max_value)
        if self.features is not None:
            x, labelled = self.features.sample(x), self.features.sample(labelled)
        return LabelledBatch(x, labelled, self.labelled_y[pick], self.labelled_weight), b

    def validation_error(self, model) -> float:
        """Percentage of validation images the classifier q(y|x) gets wrong (on the model's device)."""
        device = next(model.parameters()).device
        return error_rate(model, self.val_x.to(device), self.val_labels[: len(self.val_x)].to(device))


class QuadrantFeed(ImageFeed):
    """Sohn et al. (2015): each (freshly binarised) image split into the given quadrants ``c`` and the
    pixels to predict ``x`` (:class:`vaekit.conditional.ConditionalBatch`)."""

    def __init__(self, config: RunConfig, data: ImageData, dist: Dist, val_x: torch.Tensor):
        super().__init__(config, data, dist, val_x)
        self.mask = quadrant_mask(config.data.quadrants, data.shape[1], data.shape[2])

    def batch(self, plan: torch.Tensor, index: int, noise: torch.Generator):
        x, b = super().batch(plan, index, noise)
        return split(x, self.mask), b

    def validation_batches(self, batch_size: int = 1000):
        return [split(x, self.mask) for x in super().validation_batches(batch_size)]


class ClassConditionFeed(ImageFeed):
    """Sohn et al. (2015) for generation by class: each (freshly binarised) image ``x`` with its one-hot class
    ``c`` (:class:`vaekit.conditional.ConditionalBatch`)."""

    def __init__(self, config: RunConfig, data: ImageData, dist: Dist, val_x: torch.Tensor):
        if data.train_labels is None or data.val_labels is None:
            raise DataError(f"data.condition = 'label' needs class labels, and {data.name} has none: use mnist or "
                            "fashion-mnist, or IDX files with a labels file")
        classes = int(data.train_labels.max()) + 1
        if classes > config.model.categories:
            raise DataError(f"{data.name} has {classes} classes: set model.categories = {classes}")
        super().__init__(config, data, dist, val_x)
        self.classes = config.model.categories

    def batch(self, plan: torch.Tensor, index: int, noise: torch.Generator):
        x, b = super().batch(plan, index, noise)
        return ConditionalBatch(x, label_condition(self.data.train_labels[self.rows(plan, index)], self.classes)), b

    def validation_batches(self, batch_size: int = 1000):
        labels = label_condition(self.data.val_labels[: len(self.val_x)], self.classes)[self.dist.rank::self.dist.world]
        return [ConditionalBatch(x, labels[i * batch_size:(i + 1) * batch_size])
                for i, x in enumerate(super().validation_batches(batch_size))]


class TextFeed:
    """Bucketed batches of padded sentences, with word dropout on the decoder inputs."""

    def __init__(self, config: RunConfig, data: TextData, dist: Dist, pool: int = 50, conditional: bool = False):
        self.data, self.dist, self.pool = data, dist, pool
        if conditional and data.labels is None:
            raise DataError(f"model.condition_embedding > 0 conditions on each sentence's label, and {data.name} has "
                            "no labels: use data.name = 'brown' (genres) or set model.condition_embedding = 0")
        self.train_labels = torch.tensor(data.labels["train"]) if conditional else None
        self.batch_size = config.train.batch_size
        self.word_dropout = config.train.word_dropout
        self.vocab = data.vocab
        batches = math.ceil(len(data.train) / self.batch_size)
        self.steps_per_epoch = batches // dist.world
        if self.steps_per_epoch == 0:
            raise DataError(f"{len(data.train)} training sentences make no batch of {self.batch_size} x "
                            f"{dist.world} processes: lower train.batch_size or use fewer processes")
        self._val = None

    def plan(self, generator: torch.Generator) -> torch.Tensor:
        """Sentence indices of every batch of the epoch in order, ``(batches, batch_size)``, -1 where empty."""
        lengths = [len(s) for s in self.data.train]
        order = bucket_order(lengths, self.batch_size, generator, pool=self.pool)
        table = torch.full((len(order), self.batch_size), -1, dtype=torch.int64)
        for row, ids in enumerate(order):
            table[row, :len(ids)] = torch.tensor(ids)
        return table

    def batch(self, plan: torch.Tensor, index: int, noise: torch.Generator) -> tuple[SentenceBatch, int]:
        row = plan[index * self.dist.world + self.dist.rank]
        row = row[row >= 0]
        batch = sentence_batch([self.data.train[i] for i in row.tolist()], self.vocab.bos)
        if self.word_dropout > 0:
            keep = ~batch.mask
            keep[:, 0] = True  # <s> stays
            batch = batch.with_inputs(word_dropout(batch.inputs, self.word_dropout, self.vocab.unk, keep, noise))
        if self.train_labels is not None:
            return ConditionalBatch(batch, self.train_labels[row]), len(batch)
        return batch, len(batch)

    def validation_batches(self, batch_size: int = 256):
        if self._val is None:
            labels = self.data.labels["val"] if self.train_labels is not None else None
            self._val = sentence_batches(self.data.val, batch_size, self.vocab.bos, labels)
        return self._val[self.dist.rank::self.dist.world]


def sentence_batch(sentences: list[torch.Tensor], bos: int) -> SentenceBatch:
    """Token-id sentences (each ending in ``</s>``) padded into one :class:`SentenceBatch`."""
    padded = pad(sentences)
    return SentenceBatch.from_tokens(padded.tokens, padded.mask, bos)


def sentence_batches(sentences: list[torch.Tensor], batch_size: int, bos: int, labels: list[int] | None = None
                     ) -> list[SentenceBatch] | list[ConditionalBatch]:
    """Fixed length-bucketed batches for evaluation (no shuffling: every evaluation sees the same ones); with
    ``labels`` (one per sentence), :class:`ConditionalBatch` es of the sentences and their labels."""
    label_ids = None if labels is None else torch.as_tensor(labels)
    out = []
    for ids in bucket_order([len(s) for s in sentences], batch_size, shuffle=False):
        batch = sentence_batch([sentences[i] for i in ids], bos)
        out.append(batch if label_ids is None else ConditionalBatch(batch, label_ids[ids]))
    return out


def text_batches(data, split: str, batch_size: int, limit: int = 0, conditional: bool = False):
    """A split's sentences in fixed, length-bucketed batches (no shuffling: every evaluation agrees); with
    ``conditional``, paired with their labels."""
    labels = data.labels[split][: limit or None] if conditional else None
    return sentence_batches(data.split(split)[: limit or None], batch_size, data.vocab.bos, labels)
