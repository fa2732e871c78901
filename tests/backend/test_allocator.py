"""Inside a service worker, large blocks freed by one model call are reused by the next without
page faults (glibc unmapped them: every call faulted its activations in again); a process the
service only shares (a test session) keeps glibc's own policy."""

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

# In a fresh process (the policy is process-wide): start the service as a uvicorn worker does
# (``worker``: the app factory) or as a test client does (``in_process``: its resources in a process
# that does other things too), then, in a thread of its own as the model runs, allocate, touch and
# free an activation-sized tensor per "call"; print that thread's minor page faults in the last
# ``COUNTED`` calls.
SCRIPT = textwrap.dedent(
    f"""
    import asyncio, os, resource, sys, threading
    import torch
    from genspot.backend.api.app import create_app_from_env
    from genspot.backend.pipeline.resources import open_service_resources
    from tests.fixtures.service_app import service_settings

    def model_calls():
        for call in range({CALLS}):
            if call == {CALLS - COUNTED}:
                start = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
            torch.ones({ACTIVATION_MB} * 2**18).sum()  # float32: 4 bytes each
        print(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - start)

    def in_a_thread():
        thread = threading.Thread(target=model_calls)
        thread.start()
        thread.join()

    async def in_process():
        async with open_service_resources(service_settings(sys.argv[2])):
            in_a_thread()

    if sys.argv[1] == "worker":
        os.environ["GENSPOT_BUNDLE"] = sys.argv[2]
        create_app_from_env()
        in_a_thread()
    else:
        asyncio.run(in_process())
    """
)
PAGES_PER_CALL = ACTIVATION_MB * 2**20 // 4096
needs_glibc = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")


def page_faults(how: str, bundle: Path) -> int:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, how, str(bundle)], cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    )
    return int(result.stdout.strip().splitlines()[-1])


@needs_glibc
def test_freed_activations_are_reused_without_page_faults_in_a_worker(tiny_bundle):
    faults = page_faults("worker", tiny_bundle)
    # Before: every call faulted the tensor in again (5,120 faults a call here: 20,480).
    assert faults < PAGES_PER_CALL // 4, f"{faults} page faults in {COUNTED} calls of a {ACTIVATION_MB} MB activation"


@needs_glibc
def test_service_resources_in_a_shared_process_leave_its_allocator_alone(tiny_bundle):
    """Under a test client the service shares its process with everything else (a whole test
    session): there freed memory must go back to the system as glibc decides, or that process
    keeps, as heap, large blocks that any later test frees."""
    faults = page_faults("in_process", tiny_bundle)
    # kept blocks fault almost never (the worker test: under PAGES_PER_CALL // 4 in all); returned ones
    # fault on every call, at least a page per 8 KB here (20,480 in 4 calls of 40 MB)
    assert faults >= COUNTED * PAGES_PER_CALL // 4, f"{faults} page faults: freed blocks were kept"
