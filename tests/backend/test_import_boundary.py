"""The service imports no training or export code: a server needs a bundle, never the training stack.

Each check runs in a fresh interpreter, so what this test process has already imported
(other tests load training and export) cannot hide an import, and it looks at everything
loaded, however indirectly. Within the backend, imports go one way, down the request's path
(docs/ARCHITECTURE.md): read from the source, lazy imports included.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.import_order import imports_against_order

BACKEND = Path(__file__).resolve().parents[2] / "backend"
LAYERS = ("errors", "metrics", "fetch", "settings", "model", "provenance", "schemas", "verdict", "cache", "pipeline", "api")
"""The backend's folders and shared modules, each importing only those before it."""

FORBIDDEN = (
    "genspot.training",
    "genspot.export",
    "open_clip",
    # transformers' training paths (a tokenizer or model class alone would not be these)
    "transformers.trainer",
    "transformers.trainer_callback",
    "transformers.trainer_pt_utils",
    "transformers.trainer_utils",
    "transformers.training_args",
    "transformers.optimization",
    "transformers.data",
)

_REPORT = """
import json, sys
forbidden = {forbidden!r}
print(json.dumps(sorted(m for m in sys.modules if any(m == f or m.startswith(f + ".") for f in forbidden))))
"""

ENTRY_POINTS = {
    "app": "import genspot.backend.api.app",
    "serve": "import genspot.backend.api.serve",
    "scan": "import genspot.backend.pipeline.scan",
}

_SERVING = """
import asyncio
from genspot.backend.api.app import create_app
from genspot.backend.settings import Settings

async def serve_once():
    app = create_app(Settings(bundle={bundle!r}))
    async with app.lifespan():
        pass

asyncio.run(serve_once())
"""


def _loaded_forbidden(code: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", code + _REPORT.format(forbidden=FORBIDDEN)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("entry", list(ENTRY_POINTS), ids=str)
def test_importing_the_service_loads_no_training_code(entry):
    assert _loaded_forbidden(ENTRY_POINTS[entry]) == [], f"{ENTRY_POINTS[entry]!r} pulls in training or export code"


def test_a_started_service_has_loaded_no_training_code(tiny_bundle):
    """Loading the bundle and opening every resource (the lifespan) stays inside the boundary too."""
    assert _loaded_forbidden(_SERVING.format(bundle=str(tiny_bundle))) == []


def test_backend_imports_go_one_way_down_the_request_path():
    found = {path.relative_to(BACKEND).parts[0].removesuffix(".py") for path in BACKEND.iterdir() if path.name != "__init__.py"}
    assert found - {"__pycache__"} == set(LAYERS), "every folder and shared module of backend/ has its place in LAYERS"
    assert imports_against_order(BACKEND, "genspot.backend", LAYERS) == [], "imports against the request path's direction"
