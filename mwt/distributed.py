"""Several processes training one model, on PyTorch's own engine (torch.distributed, env://).

`torchrun --standalone --nproc-per-node N -m mwt train ...` starts N processes with RANK,
WORLD_SIZE, LOCAL_RANK and MASTER_ADDR/PORT set; `join()` turns that into a `Dist`: gloo on CPU,
NCCL on CUDA. Multi-node works the standard way (`torchrun --nnodes ... --rdzv-endpoint ...`).
A plain `mwt train` is a world of one and touches none of this.

How the MwT losses see the batch: the global batch (--batch-size) is split evenly across ranks,
and each rank all-gathers the gate vectors of the whole global batch before computing cohesion
and coupling (with gradients flowing back to the rank that produced each gate). So the losses
see exactly the pairs a single process would; only BatchNorm statistics stay per rank.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from mwt.core.errors import MwtError, first_line


class RendezvousFailed(MwtError):
    """This process could not join its group: every rank says so, since the others may not know."""

    every_rank = True


@dataclass(frozen=True)
class Dist:
    """This process's place in the world (a world of one when not launched by torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Only the main process prints, logs and writes files."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        """Elementwise sum over ranks (in place; the tensor itself when alone)."""
        if self.active:
            torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM)
        return t

    def all_reduce_min(self, t: torch.Tensor) -> torch.Tensor:
        """Elementwise minimum over ranks (in place; the tensor itself when alone)."""
        if self.active:
            torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MIN)
        return t

    def all_gather_rows(self, t: torch.Tensor) -> torch.Tensor:
        """Rows of every rank's `t` (equal shapes), rank order, with gradients back to their owners."""
        if not self.active:
            return t
        return _AllGatherRows.apply(t, self.world, self.rank)

    def broadcast_object(self, obj: object) -> object:
        """Rank 0's `obj` on every rank."""
        if not self.active:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()

    def shard(self, order: torch.Tensor) -> torch.Tensor:
        """This rank's disjoint share of `order`, padded (by repeating its start) so that every rank
        gets the same number of samples, as torch's DistributedSampler does."""
        if not self.active:
            return order
        per_rank = -(-len(order) // self.world)
        padded = torch.cat([order, order[: per_rank * self.world - len(order)]])
        return padded[self.rank::self.world]


class _AllGatherRows(torch.autograd.Function):
    """all_gather with a backward: each rank gets the summed gradient of its own rows."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, t: torch.Tensor, world: int, rank: int) -> torch.Tensor:
        parts = [torch.empty_like(t) for _ in range(world)]
        torch.distributed.all_gather(parts, t.contiguous())
        ctx.rows, ctx.rank = t.shape[0], rank  # type: ignore[attr-defined]
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        grad = grad.contiguous()
        torch.distributed.all_reduce(grad)  # every rank's loss depends on every row
        start = ctx.rank * ctx.rows  # type: ignore[attr-defined]
        return grad[start:start + ctx.rows], None, None  # type: ignore[attr-defined]


def world_from_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) without it."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        raise MwtError("WORLD_SIZE, RANK and LOCAL_RANK must be whole numbers (torchrun sets them)") from None
    if world < 1 or not 0 <= rank < world:
        raise MwtError(f"RANK {rank} is not in a world of WORLD_SIZE {world}")
    return rank, world, local


def join(device: torch.device, timeout_s: float = 120.0) -> Dist:
    """Join the process group torchrun set up (env://); a world of one needs nothing."""
    rank, world, local = world_from_env()
    if world == 1:
        return Dist()
    if not torch.distributed.is_available():
        raise MwtError("this torch build has no torch.distributed; train in one process")
    missing = [v for v in ("MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
    if missing:
        raise MwtError(f"WORLD_SIZE is {world} but {' and '.join(missing)} is not set: start the run with torchrun")
    backend = "nccl" if device.type == "cuda" else "gloo"
    where = f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"
    failure: list[BaseException] = []

    def rendezvous() -> None:
        try:
            torch.distributed.init_process_group(backend, init_method="env://", rank=rank, world_size=world,
                                                 timeout=datetime.timedelta(seconds=timeout_s))
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            failure.append(e)

    # The rendezvous blocks in C++, where no signal reaches Python: it runs in a thread of its own
    # while the main thread waits in short steps, so Ctrl-C and SIGTERM stop a process that waits
    # on an address where no process group forms (a port of some other server, a dead master).
    # torch's store logs each failed attempt with its C++ frames (some 180 lines): they go aside,
    # and the failure is told in one line.
    global rendezvous_failed
    joining = threading.Thread(target=rendezvous, name="mwt-rendezvous", daemon=True)
    deadline = time.monotonic() + timeout_s + 30
    try:
        with _stderr_aside():
            joining.start()
            while joining.is_alive():
                joining.join(0.2)
                if time.monotonic() > deadline:
                    raise RendezvousFailed(f"cannot join the process group at {where}: no answer in {timeout_s:.0f} s; is "
                                   "MASTER_ADDR:MASTER_PORT the address torchrun gave rank 0?")
    except BaseException:
        rendezvous_failed = True
        raise
    if failure:  # a rendezvous that never forms raises DistStoreError, RuntimeError, ...
        rendezvous_failed = True
        raise RendezvousFailed(f"cannot join the process group at {where} ({first_line(failure[0], 160)}); is "
                       "MASTER_ADDR:MASTER_PORT the address torchrun gave rank 0?") from None
    return Dist(rank, world, local)


# Set when a rendezvous failed or was interrupted: torch's store may still hold C++ threads that
# end the interpreter's shutdown in std::terminate (or block it), so the CLI leaves at once.
rendezvous_failed = False


@contextlib.contextmanager
def _stderr_aside() -> Iterator[None]:
    """File descriptor 2 pointed at /dev/null for the block (C++ code writes there directly)."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to protect
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def leave(dist: Dist) -> None:
    """Leave the process group (after the run, on every rank)."""
    if dist.active and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
