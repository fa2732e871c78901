"""Keep the model's freed memory in the process instead of handing it back to the kernel.

glibc's malloc gives every block above its mmap threshold (32 MiB at most) a mapping of its own
and unmaps it on free, and returns free memory at the top of a heap beyond its trim threshold.
A forward pass allocates and frees the same large activations layer after layer (the default
bundle's ViT-B/16 MLP activation at batch 32 is 38.7 MB in bf16), so every model call faulted
in freshly zeroed pages again: about 110,000 minor page faults per batch-32 call at a fixed
batch size, 500,000-700,000 with the varying batch sizes the micro-batcher forms, 0.8-1.5 s of
system CPU per call (docs/RELIABILITY.md). Here every thread allocates from the main heap (a
thread's own heaps are unmapped whenever they fall empty), nothing gets a mapping of its own,
and the heap keeps up to ``TRIM_THRESHOLD_BYTES`` free: later calls reuse the same pages.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)
M_TRIM_THRESHOLD = -1  # <malloc.h>
M_MMAP_MAX = -4
M_ARENA_MAX = -8
TRIM_THRESHOLD_BYTES = 512 * 1024 * 1024
"""Free memory a heap keeps before it returns any (several batches' activations)."""


def keep_freed_memory() -> bool:
    """Make this process's malloc keep freed blocks for reuse; False where malloc is not glibc's."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        log.info("no glibc mallopt here: freed model memory goes back to the system as the allocator decides")
        return False
    settings = ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
    return all([bool(mallopt(option, value)) for option, value in settings])
