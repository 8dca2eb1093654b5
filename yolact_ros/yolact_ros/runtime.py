"""CPU thread counts for torch and ONNX Runtime, set once per process by :func:`set_threads`.

torch's default intra-op pool takes every core; when other processes compete for them, its
threads wait on each other at every barrier and a frame takes many times longer (the bundled
demo model on a shared 2-core machine: 617-1610 ms per frame under load, 71 ms with one
thread). :func:`set_threads` sets torch's intra- and inter-op pools and records the count, which
:class:`~yolact_ros.export.backends.OnnxRuntimeBackend` then gives its session. Nothing is set
at import.
"""

import logging
import os
from typing import Optional

import torch

LOGGER = logging.getLogger(__name__)
# The default is half the cores, at most this many. Measured on 2 cores (benchmarks/threads.py,
# benchmarks/README.md "Threads under contention"): with as many threads as cores, torch's
# OpenMP threads spin waiting for each other whenever another process takes a core; with two
# busy processes one thread was 5.9-8.4x faster than two, and 0.79x as fast on a quiet machine.
MAX_DEFAULT_THREADS = 4

_threads: Optional[int] = None


def available_cores() -> int:
    """Return the number of CPUs this process may run on (its affinity mask, else all)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def default_threads() -> int:
    """Return the project's default thread count: half the available cores, 1 to 4.

    Half leaves cores to the other processes of a robot (drivers, the node's own work), so the
    pool is not stalled each time one of them runs.
    """
    return max(1, min(available_cores() // 2, MAX_DEFAULT_THREADS))


def configured_threads() -> Optional[int]:
    """Return the count the last :func:`set_threads` applied, or ``None`` if it was not called."""
    return _threads


def set_threads(threads: int) -> int:
    """Set torch's intra- and inter-op threads and record the count for ONNX Runtime.

    torch accepts the inter-op count only once, before any parallel work; later calls keep the
    count already in force (logged, not raised).

    Args:
        threads: threads to use; ``0`` means :func:`default_threads`.

    Returns:
        The intra-op thread count applied.

    Raises:
        ValueError: ``threads`` is negative or not an integer.
    """
    global _threads
    if isinstance(threads, bool) or not isinstance(threads, int):
        raise ValueError(f'threads must be an integer >= 0, got {threads!r}')
    if threads < 0:
        raise ValueError(f'threads must be >= 0 (0: the default), got {threads}')
    count = threads or default_threads()
    torch.set_num_threads(count)
    if torch.get_num_interop_threads() != count:
        try:
            torch.set_num_interop_threads(count)
        except RuntimeError as error:  # already set, or parallel work has started
            LOGGER.debug('torch inter-op threads stay at %d (%s)',
                         torch.get_num_interop_threads(), error)
    _threads = count
    return count
