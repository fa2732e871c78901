"""Inside a started service, large blocks freed by one model call are reused by the next without
page faults (glibc unmapped them: every call faulted its activations in again)."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ACTIVATION_MB = 40  # above glibc's largest mmap threshold (32 MiB), like a batch-32 MLP activation
CALLS = 12
COUNTED = 4  # the last calls: the heap takes a few calls to settle, as it does in the service

# In a fresh process (the policy is process-wide): start the service's resources, then, in a
# thread of its own as the model runs, allocate, touch and free an activation-sized tensor per
# "call"; print that thread's minor page faults in the last ``COUNTED`` calls.
SCRIPT = textwrap.dedent(
    f"""
    import asyncio, resource, sys, threading
    import torch
    from genspot.backend.resources import open_service_resources
    from tests.fixtures.service_app import service_settings

    def model_calls(faults):
        for call in range({CALLS}):
            if call == {CALLS - COUNTED}:
                start = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
            torch.ones({ACTIVATION_MB} * 2**18).sum()  # float32: 4 bytes each
        faults.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - start)

    async def main():
        async with open_service_resources(service_settings(sys.argv[1])):
            faults = []
            thread = threading.Thread(target=model_calls, args=(faults,))
            thread.start()
            thread.join()
            print(faults[0])

    asyncio.run(main())
    """
)


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_freed_activations_are_reused_without_page_faults(tiny_bundle):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tiny_bundle)], cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    )
    faults = int(result.stdout.strip().splitlines()[-1])
    pages_per_call = ACTIVATION_MB * 2**20 // 4096
    # Before: every call faulted the tensor in again (5,120 faults a call here: 20,480).
    assert faults < pages_per_call // 4, f"{faults} page faults in {COUNTED} calls of a {ACTIVATION_MB} MB activation"
