"""Multi-process training helpers (``torchrun``): process group set-up and reductions."""

from dataclasses import dataclass
import os
from typing import List

import torch
import torch.distributed as dist

from yolact_ros.inference import resolve_device


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits: ``rank`` of ``world_size``, on ``device``."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        """Whether this process writes files and shows progress (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether there is more than one process."""
        return self.world_size > 1


def setup_distributed(device: str) -> DistributedContext:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE``, ``RANK``, ...), if any.

    With ``WORLD_SIZE`` > 1 the backend is NCCL on CUDA and gloo on the CPU; each process uses
    ``cuda:LOCAL_RANK`` when ``device`` is ``auto`` or ``cuda``. Otherwise this is a single
    process on :func:`~yolact_ros.inference.resolve_device` of ``device``.
    """
    world_size = int(os.environ.get('WORLD_SIZE', '1'))
    if world_size <= 1:
        return DistributedContext(0, 0, 1, resolve_device(device))
    rank = int(os.environ['RANK'])
    local_rank = int(os.environ.get('LOCAL_RANK', '0'))
    resolved = resolve_device(device)
    if resolved.type == 'cuda':
        resolved = torch.device('cuda', local_rank)
        torch.cuda.set_device(resolved)
    owns_group = not dist.is_initialized()
    if owns_group:
        dist.init_process_group(backend='nccl' if resolved.type == 'cuda' else 'gloo')
    if dist.get_world_size() != world_size:
        raise RuntimeError(f'WORLD_SIZE is {world_size} but the process group has '
                           f'{dist.get_world_size()} processes')
    return DistributedContext(rank, local_rank, world_size, resolved, owns_group)


def average_across_processes(values: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """Return the mean over processes of ``Tensor[V]`` (``values`` itself for one process)."""
    if not context.distributed:
        return values
    values = values.clone()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values / context.world_size


def gather_objects(value: object, context: DistributedContext) -> List[object]:
    """Return every process's ``value``, indexed by rank."""
    if not context.distributed:
        return [value]
    gathered: List[object] = [None] * context.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def barrier(context: DistributedContext) -> None:
    """Wait for every process (no-op for one process)."""
    if context.distributed:
        dist.barrier()


def cleanup(context: DistributedContext) -> None:
    """Leave the process group if :func:`setup_distributed` created it."""
    if context.owns_group and dist.is_initialized():
        dist.destroy_process_group()
