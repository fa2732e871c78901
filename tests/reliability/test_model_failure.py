"""A model call that raises fails the offending item only: its batch is retried item by item, and the
service and later batches live on.

The failure is real: a copy of the tiny bundle whose TorchScript model raises inside ``forward``
when a batch holds a "poisoned" picture (pure magenta, which no camera or generator makes),
the way a corrupted tensor or an out-of-memory error surfaces from a real model.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import shutil

import pytest
import torch
from PIL import Image

from genspot.backend.api.app import create_app
from tests.fixtures.service_app import asgi_client
from tests.reliability.drill import drill_settings

BATCH = 4


class PoisonedModel(torch.nn.Module):
    """Delegates to the real model unless some image in the batch is pure magenta."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, image: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        magenta = (image[:, 0] == 1.0) & (image[:, 1] == 0.0) & (image[:, 2] == 1.0)
        if bool(magenta.flatten(1).all(dim=1).any()):
            raise RuntimeError("poisoned input: this batch cannot be computed")
        return self.inner(image, input_ids, attention_mask)


@pytest.fixture(scope="module")
def poisoned_bundle(tiny_bundle, tmp_path_factory):
    path = tmp_path_factory.mktemp("poisoned") / "bundle"
    shutil.copytree(tiny_bundle, path)
    scripted = torch.jit.script(PoisonedModel(torch.jit.load(str(path / "model.ts"))))
    scripted.save(str(path / "model.ts"))
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["text_cache"] = False  # the wrapper only exposes forward()
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path


def _b64_png(color: tuple[int, int, int]) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (256, 256), color).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


POISON = _b64_png((255, 0, 255))


def _good(n: int) -> str:
    return _b64_png((n % 200, 40 + n % 100, 90))


def test_a_failing_batch_fails_its_items_only(poisoned_bundle):
    # Batches of BATCH whatever the machine's speed: items wait for company, and no call cap measured
    # on a loaded machine (alone or shared) cuts the poisoned item's batch down to itself.
    settings = drill_settings(poisoned_bundle, 80, batch_max_size=BATCH, batch_max_wait_ms=200.0,
                              batch_max_call_ms=None, batch_shared_call_ms=None)

    async def drill():
        async with asgi_client(create_app(settings)) as client:
            async def detect(items):
                response = await client.post("/v1/detect", json={"items": items})
                assert response.status_code == 200, response.text
                return response.json()["results"]

            alone = await detect([{"id": "poison", "image_b64": POISON}])
            after = await detect([{"id": "good", "image_b64": _good(0)}])
            mixed_items = [{"id": f"good{n}", "image_b64": _good(n)} for n in range(1, 13)]
            mixed_items.insert(6, {"id": "poison", "image_b64": POISON})
            mixed, neighbour = await asyncio.gather(
                detect(mixed_items), detect([{"id": "other", "image_b64": _good(99)}])
            )
            metrics = (await client.get("/metrics")).text
            return alone, after, mixed, neighbour, metrics

    alone, after, mixed, neighbour, metrics = asyncio.run(drill())
    assert alone[0]["status"] == "error" and alone[0]["error"]["code"] == "model_failed"
    assert after[0]["status"] == "ok", "the batcher must keep serving after a failed batch"
    by_id = {r["id"]: r for r in mixed}
    assert by_id["poison"]["error"]["code"] == "model_failed"
    assert len(mixed) == 13
    assert [r["id"] for r in mixed if r["status"] != "ok"] == ["poison"], "its batch-mates are retried alone and succeed"
    assert neighbour[0]["status"] == "ok", "another request's item in the poisoned batch succeeds too"
    model_errors = [line.split()[1] for line in metrics.splitlines() if line.startswith("genspot_model_errors_total ")]
    assert model_errors and float(model_errors[0]) >= 3  # alone; the mixed batch; the poisoned item retried alone
