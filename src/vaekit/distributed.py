"""torch.distributed in a few lines: who am I, and how ranks agree on numbers.

``vaekit train`` runs unchanged under ``torchrun`` (or ``vaekit train --nproc N``, which launches
torchrun): :func:`setup` joins the process group that torchrun describes in the environment
(``WORLD_SIZE``, ``RANK``, ``MASTER_ADDR``, ``MASTER_PORT``), with gloo between CPU processes.
A single process needs none of this and :class:`Dist` then answers rank 0 of 1.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    created_group: bool = False  # this process initialised the group, so it tears it down

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def all_sum(self, values: list[float]) -> list[float]:
        """Sum numbers over ranks (in float64): sums and counts, never averages of averages."""
        if not self.active:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.tolist()

    def gather(self, obj) -> list:
        """Every rank's ``obj``, in rank order, on every rank."""
        if not self.active:
            return [obj]
        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every rank."""
        if not self.active:
            return obj
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def close(self) -> None:
        """Leave the group this process created; ranks meet at a barrier first, so none tears down gloo's
        connections while another is still finishing a collective (a rank then dies with SIGABRT)."""
        if self.created_group and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def setup() -> Dist:
    """Join (or create, from torchrun's environment) the default process group."""
    if dist.is_available() and dist.is_initialized():
        return Dist(dist.get_rank(), dist.get_world_size())
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    dist.init_process_group(backend="gloo")  # CPU processes (the trainer refuses a GPU device under torchrun)
    return Dist(dist.get_rank(), dist.get_world_size(), created_group=True)


def rank_seeds(seed: int, rank: int) -> tuple[int, int]:
    """Seeds of rank ``rank``'s reparameterisation noise and binarisation noise in a distributed run.

    Rank streams are seeded apart so that ranks do not draw the same noise; the data permutation is
    drawn from ``seed`` itself, identically on every rank, and each rank takes its own slice of it.
    """
    base = 1_000_003 * (seed + 1) + 7919 * rank
    return base + 1, base + 2
