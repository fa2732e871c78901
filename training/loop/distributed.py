"""This process's place in a training run (rank, world size, device; a process group under
``torchrun``) and where its log goes."""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.distributed as dist


@dataclasses.dataclass(frozen=True)
class TrainingProcess:
    """One process of a (possibly distributed) training run: its rank among ``world_size`` and its device."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@contextmanager
def distributed_runtime(device_arg: str):
    """This ``TrainingProcess``; a process group when launched by torchrun with WORLD_SIZE > 1."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if device_arg == "auto":
        device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(device_arg)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world_size > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield TrainingProcess(rank, world_size, device)
    finally:
        if world_size > 1:
            dist.destroy_process_group()


def barrier(process: TrainingProcess) -> None:
    if process.world_size > 1:
        dist.barrier()


def log_to_run_dir(out: Path, process: TrainingProcess) -> None:
    """Log to RUN_DIR/train.log and stderr (rank 0); other ranks only warn."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if process.is_main:
        out.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(out / "train.log", encoding="utf-8"))
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    root = logging.getLogger("genspot")
    for handler in root.handlers[:]:
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        handler.setFormatter(fmt)
        root.addHandler(handler)
    root.setLevel(logging.INFO if process.is_main else logging.WARNING)
