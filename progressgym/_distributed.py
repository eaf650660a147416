"""Which process of a multi-process launch this is, and a barrier between the processes.

A run started by ``accelerate launch`` (or ``torchrun``) runs as ``WORLD_SIZE`` processes, each told its
``RANK`` and ``LOCAL_RANK`` in the environment. Every process runs the whole run: the judge's work is
deterministic given the seed, so each computes it identically, while the TRL trainers train data-parallel.
Only the main process (rank 0) writes files; the others wait at :func:`wait_for_everyone` where they need
what it wrote. Without those variables this is one process: rank 0 of 1, and the barrier does nothing.

Nothing here imports torch until a barrier or a CUDA device is actually needed.
"""

from __future__ import annotations

import os


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        return default


def process_rank() -> int:
    """This process's rank among all processes (``RANK``; 0 in a single process)."""
    return _env_int("RANK", 0)


def local_rank() -> int | None:
    """This process's rank on its machine (``LOCAL_RANK``), or ``None`` when the launcher did not set it."""
    text = os.environ.get("LOCAL_RANK", "").strip()
    return int(text) if text.lstrip("-").isdigit() else None


def world_size() -> int:
    """How many processes run together (``WORLD_SIZE``; 1 in a single process)."""
    return max(1, _env_int("WORLD_SIZE", 1))


def is_distributed() -> bool:
    """Whether this process is one of several (``WORLD_SIZE`` > 1)."""
    return world_size() > 1


def is_main_process() -> bool:
    """Whether this process is the one that writes files (rank 0)."""
    return process_rank() == 0


def _cpu_requested() -> bool:
    """Whether the launch asked for CPUs only (``accelerate launch --cpu`` sets ``ACCELERATE_USE_CPU``)."""
    return os.environ.get("ACCELERATE_USE_CPU", "").strip().lower() in ("1", "true", "yes")


def _use_cpu() -> bool:
    """Whether the processes talk over the CPU (gloo): ``accelerate launch --cpu``, or no CUDA device."""
    if _cpu_requested():
        return True
    import torch

    return not torch.cuda.is_available()


def wait_for_everyone() -> None:
    """Block until every process has reached this point; nothing in a single process.

    The barrier goes through accelerate's ``PartialState`` (the state the TRL trainers share), set up on
    first use with the gloo backend on CPUs and NCCL on GPUs; without accelerate, through
    ``torch.distributed`` directly.
    """
    if not is_distributed():
        return
    try:
        from accelerate import PartialState
    except ImportError:
        PartialState = None  # noqa: N806
    if PartialState is not None:
        state = PartialState(cpu=_use_cpu())
        if state.num_processes > 1:
            state.wait_for_everyone()
            return
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="gloo" if _use_cpu() else "nccl")
    dist.barrier()


def rank_device(device: str) -> str:
    """The device of this process's models for a judge's ``device`` setting.

    With several processes on CUDA machines, ``auto`` and ``cuda`` become ``cuda:LOCAL_RANK`` (modulo the
    visible devices), so each process's inference runs on its own GPU; any other setting, a single process,
    or a machine without CUDA keeps ``device`` as it is.

    Args:
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.

    Returns:
        The device to hand to the backends.
    """
    rank = local_rank()
    if device not in ("auto", "cuda") or rank is None or not is_distributed():
        return device
    if device == "auto" and _cpu_requested():
        return device
    import torch

    if not torch.cuda.is_available():
        return device
    return f"cuda:{rank % max(1, torch.cuda.device_count())}"


__all__ = [
    "is_distributed",
    "is_main_process",
    "local_rank",
    "process_rank",
    "rank_device",
    "wait_for_everyone",
    "world_size",
]
