"""Small helpers shared by the service tests (imported as ``backend_helpers``)."""

from __future__ import annotations

import base64
import re


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def metric_value(exposition: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (0 when absent)."""
    for line in exposition.splitlines():
        match = _SAMPLE.fullmatch(line.strip())
        if match and match.group("name") == name and dict(_LABEL.findall(match.group("labels") or "")) == labels:
            return float(match.group("value"))
    return 0.0


_SAMPLE = re.compile(r"(?P<name>[a-zA-Z_:][\w:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="([^"]*)"')

