"""Data-parallel training with torch.distributed (gloo, 2 processes on this machine)."""

import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from vaekit.config import load_recipe
from vaekit.data import from_arrays
from vaekit.distributed import rank_seeds
from vaekit.models import build_model
from vaekit.objectives import elbo
from vaekit.train import make_optimizer, train

B = 16  # per-rank batch; 256 training images -> 8 global batches of 32 per epoch
CONFIG = ["model.hidden=16", "model.latent=3", f"train.batch_size={B}", "train.epochs=2", "train.lr=3e-3",
          "train.val_every=0", "eval.k=10"]


def binary_data():
    """Binary images, so that binarisation draws no noise: the runs differ only in how they are split."""
    rng = np.random.default_rng(0)
    x = (rng.random((356, 6, 6)) < np.linspace(0.1, 0.9, 36).reshape(6, 6)).astype(np.uint8)
    data = from_arrays("binary", x, None, validation=50, test=50)
    assert data.is_binary and len(data.train) == 256
    return data


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, out, jobs):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        data = binary_data()
        results = []
        for overrides, run_name, resume in jobs:
            run_dir = os.path.join(out, run_name if rank == 0 else f"{run_name}-rank{rank}")
            result = train(load_recipe(None, CONFIG + overrides), run_dir, resume=resume, data=data, progress=False)
            results.append({"step": result.step, "params": result.model.state_dict(),
                            "estimator": result.estimator.state_dict() if result.estimator is not None else {}})
        torch.save(results, os.path.join(out, f"results-rank{rank}.pt"))
        dist.barrier()  # as Dist.close: no rank tears gloo down while the other is still in a collective
    finally:
        dist.destroy_process_group()


def run_two_ranks(tmp_path, jobs):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path), jobs), nprocs=2, join=True)
    return [torch.load(tmp_path / f"results-rank{r}.pt", weights_only=True) for r in range(2)]


def single_process_reference(steps: int):
    """One process, batch 2B, the same noise: each half of a batch draws from that rank's noise stream."""
    config = load_recipe(None, CONFIG)
    data = binary_data()
    torch.manual_seed(config.train.seed)
    model = build_model(config.model, data.shape, "bernoulli")
    optimizer = make_optimizer(model, config)
    data_rng = torch.Generator().manual_seed(config.train.seed)
    streams = []
    for rank in range(2):
        torch.manual_seed(rank_seeds(config.train.seed, rank)[0])
        streams.append(torch.get_rng_state())
    perm, done = None, 0
    while done < steps:
        if done % 8 == 0:
            perm = torch.randperm(len(data.train), generator=data_rng)
        start = (done % 8) * 2 * B
        optimizer.zero_grad()
        for rank in range(2):
            torch.set_rng_state(streams[rank])
            x = data.train[perm[start + rank * B:start + (rank + 1) * B]].float()
            (elbo(model, x).loss.mean() / 2).backward()
            streams[rank] = torch.get_rng_state()
        optimizer.step()
        done += 1
    return model.state_dict()


@pytest.fixture(scope="module")
def two_rank_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    discrete = ["model.latent_type=categorical", "model.latent=2", "model.categories=3", "train.estimator=score",
                "train.baseline=moving-average", "train.epochs=1"]
    jobs = [([], "whole", False), (["train.max_steps=5"], "split", False), ([], "split", True),
            (discrete, "discrete", False)]
    return tmp, run_two_ranks(tmp, jobs)


def test_two_ranks_equal_one_process_with_twice_the_batch(two_rank_runs):
    _, (rank0, _) = two_rank_runs
    reference = single_process_reference(steps=16)
    assert rank0[0]["step"] == 16
    for key, value in reference.items():
        torch.testing.assert_close(rank0[0]["params"][key], value, rtol=1e-5, atol=1e-6)


def test_ranks_hold_identical_parameters_and_only_rank_0_writes(two_rank_runs):
    tmp, (rank0, rank1) = two_rank_runs
    for key in rank0[0]["params"]:
        assert torch.equal(rank0[0]["params"][key], rank1[0]["params"][key]), key
    assert (tmp / "whole" / "checkpoint.pt").exists() and (tmp / "whole" / "metrics.jsonl").exists()
    assert not (tmp / "whole-rank1").exists()


def test_a_stopped_distributed_run_resumes_exactly(two_rank_runs):
    _, (rank0, rank1) = two_rank_runs
    assert rank0[1]["step"] == 5 and rank0[2]["step"] == 16
    for ranks in (rank0, rank1):
        for key in ranks[0]["params"]:
            assert torch.equal(ranks[0]["params"][key], ranks[2]["params"][key]), key


def test_discrete_latents_with_a_running_baseline_train_in_step_across_ranks(two_rank_runs):
    _, (rank0, rank1) = two_rank_runs
    a, b = rank0[3], rank1[3]
    assert a["estimator"]["baseline.initialised"]
    for key in a["params"]:
        assert torch.equal(a["params"][key], b["params"][key]), key
    for key in a["estimator"]:  # the moving average is of the mean over all ranks' batches
        assert torch.equal(a["estimator"][key], b["estimator"][key]), key
