"""Training speed of the sentence VAE on the Penn Treebank: vaekit's trainer against a reference loop.

The reference is written the way public sentence-VAE code is: random (unbucketed) batches of 32
sentences padded to the longest, ``nn.Embedding`` -> ``nn.LSTM`` encoder -> Gaussian z -> ``nn.LSTM``
decoder (z to the initial state and to every input) -> a full ``nn.Linear`` + softmax over the 10k
vocabulary at every position, padded ones included, with the padding masked out of the loss
afterwards; Adam. vaekit runs its real trainer (:func:`vaekit.train.train`) on the same model sizes
(``recipes/ptb_vae.toml``), which buckets batches by length and applies the output layer to real
tokens only. Both are timed alternately in one benchmark run, on the first ``--sentences`` training
sentences, and both count real tokens (words + ``</s>``) per second. The reference makes one pass over the
sentences (or stops after ``--reference-seconds``); vaekit trains ``--epochs`` epochs over them, so that both
timed runs last about as long (3200 sentences: ~40 s each) and neither figure is dominated by the first
steps, which page-fault a fresh process's heap; vaekit's figure is its tokens over its time in all epochs.
Each timed run gets a fresh process: vaekit's trainer sets glibc's ``malloc`` to keep freed memory
(``train.retain_memory``, see :mod:`vaekit.allocator`), a whole-process setting that public code does not
make, so the reference runs with ``malloc`` as it comes; it is also timed under vaekit's setting
(``..._same_allocator``).

    python benchmarks/ptb_speed.py [--sentences 3200] [--repeats 2] [--epochs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, in_fresh_process, record, vaekit_run  # noqa: E402

from vaekit.allocator import retain_freed_memory  # noqa: E402
from vaekit.config import load_recipe  # noqa: E402
from vaekit.data.text import pad  # noqa: E402
from vaekit.runs import load_data  # noqa: E402

SCRIPT = "ptb_speed"
RECIPE = ROOT / "recipes" / "ptb_vae.toml"


class ReferenceSentenceVAE(nn.Module):
    """A straightforward sentence VAE: logits for every padded position."""

    def __init__(self, vocab: int, embedding: int, hidden: int, latent: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, embedding, padding_idx=0)
        self.encoder = nn.LSTM(embedding, hidden, batch_first=True)
        self.to_mu, self.to_logvar = nn.Linear(hidden, latent), nn.Linear(hidden, latent)
        self.to_state = nn.Linear(latent, 2 * hidden)
        self.decoder = nn.LSTM(embedding + latent, hidden, batch_first=True)
        self.output = nn.Linear(hidden, vocab)

    def forward(self, tokens, inputs, lengths):
        packed = nn.utils.rnn.pack_padded_sequence(self.embed(tokens), lengths, batch_first=True,
                                                   enforce_sorted=False)
        _, (h, _) = self.encoder(packed)
        mu, logvar = self.to_mu(h[-1]), self.to_logvar(h[-1])
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        h0, c0 = torch.tanh(self.to_state(z)).chunk(2, -1)
        emb = torch.cat([self.embed(inputs), z[:, None].expand(-1, inputs.shape[1], -1)], -1)
        out, _ = self.decoder(emb, (h0[None].contiguous(), c0[None].contiguous()))
        logits = self.output(out)                                   # (B, T, V): padding included
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens.reshape(-1), ignore_index=0,
                              reduction="sum")
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return nll + kl


def reference_tokens_per_s(sentences, vocab: int, bos: int, config, seconds: float,
                           precision: str = "float32", retain_memory: bool = False,
                           device: torch.device = torch.device("cpu")) -> float:
    """Real tokens/s of the padded reference over the sentences (one pass, or ``seconds``), on ``device`` (on a GPU
    each batch is copied there and the loss read every step, as public training loops log it)."""
    gpu = device.type == "cuda"
    if retain_memory:
        retain_freed_memory()
    torch.manual_seed(0)
    m = config.model
    model = ReferenceSentenceVAE(vocab, m.embedding, m.hidden[0], m.latent).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr)
    order = torch.randperm(len(sentences)).tolist()
    batch_size = config.train.batch_size
    tokens, start = 0, time.perf_counter()
    for b in range(0, len(order), batch_size):
        ids = order[b:b + batch_size]
        batch = pad([sentences[i] for i in ids])
        inputs = torch.cat([torch.full_like(batch.tokens[:, :1], bos), batch.tokens[:, :-1]], 1).masked_fill(~batch.mask, 0)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16"):
            loss = model(batch.tokens.to(device), inputs.to(device), batch.lengths).float() / len(ids)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), config.train.grad_clip)
        optimizer.step()
        if gpu:
            loss.item()
        tokens += int(batch.lengths.sum())
        if time.perf_counter() - start > seconds:
            break
    if gpu:
        torch.cuda.synchronize(device)
    return tokens / (time.perf_counter() - start)


def speed_config(sentences: int, precision: str, threads: int, extra: tuple[str, ...] = (), epochs: int = 1):
    return load_recipe(RECIPE, [f"data.limit={sentences}", "data.eval_limit=64", f"train.epochs={epochs}",
                                "train.val_every=0", "train.kl_schedule=none", "train.word_dropout=0",
                                "model.tie_embeddings=false", "model.dropout=0", f"train.precision={precision}",
                                f"train.threads={threads}", *extra])


def _timed_run(kind: str, sentences: int, precision: str, threads: int, seconds: float, epochs: int) -> float:
    """One timed run (in a child process): ``reference``, ``reference_bf16``, ``reference_retained`` or ``vaekit``."""
    if threads:
        torch.set_num_threads(threads)
    config = speed_config(sentences, precision, threads, epochs=epochs)
    data = load_data(config.data)
    if kind == "vaekit":
        return vaekit_tokens_per_s(config, data)
    return reference_tokens_per_s(data.train, len(data.vocab), data.vocab.bos, config, seconds,
                                  "bfloat16" if kind == "reference_bf16" else "float32",
                                  retain_memory=kind == "reference_retained")


def timed_run(kind: str, args) -> float:
    return in_fresh_process(_timed_run, kind, args.sentences, args.precision, args.threads, args.reference_seconds,
                            args.epochs)


def vaekit_tokens_per_s(config, data) -> float:
    lines = vaekit_run(config, data)
    return len(lines) / sum(1 / line["tokens_per_s"] for line in lines)  # every epoch has the same tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=3200, help="training sentences per timed epoch")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--reference-seconds", type=float, default=60.0)
    parser.add_argument("--epochs", type=int, default=3, help="vaekit's epochs over the sentences per timed run")
    parser.add_argument("--precision", choices=["float32", "bfloat16"], default="float32",
                        help="vaekit's train.precision (bfloat16 also times the reference under autocast)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads for both sides (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    mixed = args.precision == "bfloat16"
    command = (f"python benchmarks/ptb_speed.py --sentences {args.sentences} --repeats {args.repeats} "
               f"--epochs {args.epochs}" + (" --precision bfloat16" if mixed else "") + (f" --threads {args.threads}" if args.threads else ""))
    config = speed_config(args.sentences, args.precision, args.threads)
    data = load_data(config.data)
    ref, ref_mixed, ref_retained, ours = [], [], [], []
    for r in range(args.repeats):
        ref.append(timed_run("reference", args))
        if mixed:
            ref_mixed.append(timed_run("reference_bf16", args))
        ref_retained.append(timed_run("reference_retained", args))
        ours.append(timed_run("vaekit", args))
        print(f"repeat {r + 1}: reference {ref[-1]:.0f} tokens/s"
              + (f", reference under bf16 autocast {ref_mixed[-1]:.0f}" if mixed else "")
              + f", reference with vaekit's malloc setting {ref_retained[-1]:.0f}"
              + f", vaekit ({args.precision}) {ours[-1]:.0f} tokens/s", file=sys.stderr)
    ref_speed, our_speed = statistics.median(ref), statistics.median(ours)
    ref_retained_speed = statistics.median(ref_retained)
    real = sum(len(s) for s in data.train)
    order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(0)).tolist()
    padded = sum(len(ids) * max(len(data.train[i]) for i in ids)
                 for ids in (order[b:b + config.train.batch_size] for b in range(0, len(order), config.train.batch_size)))
    m = config.model
    common = (f"LSTM sentence VAE, embedding {m.embedding}, hidden {m.hidden[0]}, z {m.latent}, vocabulary "
              f"{len(data.vocab)}, untied output, no dropout, batch {config.train.batch_size}, vaekit in "
              f"{args.precision}, {torch.get_num_threads()} torch threads, first {args.sentences} PTB training sentences")
    protocol = f"_epochs{args.epochs}" if args.epochs != 3 else ""  # other lengths of vaekit's timed run: own names
    suffix = ("_bf16" if mixed else "") + protocol
    notes = (f"{common}; vaekit trainer {our_speed:.0f} vs padded-batch float32 reference {ref_speed:.0f} real "
             f"tokens/s (medians of {args.repeats} alternated runs; the reference one pass over the sentences, "
             f"vaekit {args.epochs} epochs); unbucketed padding makes the reference compute "
             f"{padded / real:.2f}x the real tokens in its output layer")
    if mixed:
        ref_mixed_speed = statistics.median(ref_mixed)
        notes += f"; the reference under the same bf16 autocast: {ref_mixed_speed:.0f} tokens/s"
        record(SCRIPT, f"ptb_train_speedup_vs_reference_same_precision_bf16{protocol}", our_speed / ref_mixed_speed,
               "ratio", command, f"{common}; vaekit {our_speed:.0f} vs the reference under the same bf16 autocast "
               f"{ref_mixed_speed:.0f} real tokens/s")
        record(SCRIPT, f"ptb_reference_tokens_per_s_bf16{protocol}", ref_mixed_speed, "tokens/s", command, common)
    notes += (f"; each timed run in a fresh process; the reference with vaekit's malloc setting "
              f"(train.retain_memory): {ref_retained_speed:.0f} tokens/s")
    record(SCRIPT, f"ptb_train_speedup_vs_reference_same_allocator{suffix}", our_speed / ref_retained_speed, "ratio",
           command, f"{common}; vaekit {our_speed:.0f} vs the float32 reference {ref_retained_speed:.0f} real tokens/s, "
           "both with glibc malloc keeping freed memory (vaekit.allocator)")
    record(SCRIPT, f"ptb_train_speedup_vs_reference{suffix}", our_speed / ref_speed, "ratio", command, notes)
    record(SCRIPT, f"ptb_train_tokens_per_s{suffix}", our_speed, "tokens/s", command, common)
    if not mixed:  # (a bfloat16 run's float32 reference speed is in its speedup's notes)
        record(SCRIPT, f"ptb_reference_tokens_per_s{protocol}", ref_speed, "tokens/s", command, common)


if __name__ == "__main__":
    main()
