"""The processes under test: a redis-server and a `genspot serve`, both on loopback.

Both are real processes started with ``subprocess``; each class is a context manager that
stops its process (SIGTERM, then SIGKILL after a grace period) whatever happens.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(process: subprocess.Popen, grace_s: float = 15.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class RedisProcess:
    """``redis-server`` on a free loopback port, no persistence."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> "RedisProcess":
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server not found on PATH (apt-get install redis-server), or pass --no-redis")
        self._dir = tempfile.TemporaryDirectory(prefix="genspot-load-redis-")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", self._dir.name],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        _stop(self.process)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def __exit__(self, *exc) -> None:
        _stop(self.process, 5)
        self._dir.cleanup()


class ServeProcess:
    """A real ``genspot serve`` process; ``env`` holds extra ``GENSPOT_*`` settings."""

    def __init__(self, bundle: Path, env: dict[str, str], port: int | None = None, log_path: Path | None = None):
        self.bundle = bundle
        self.port = port or free_port()
        self.env = env
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "ServeProcess":
        command = [sys.executable, "-m", "genspot", "serve", "--bundle", str(self.bundle), "--host", "127.0.0.1", "--port", str(self.port)]
        self._log = open(self.log_path, "wb") if self.log_path else tempfile.TemporaryFile()
        self.process = subprocess.Popen(command, env={**os.environ, **self.env}, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO)
        try:
            self._wait_ready(timeout_s=180)
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"genspot serve exited with code {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"genspot serve not ready after {timeout_s:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        self._log.flush()
        self._log.seek(0)
        return "\n".join(self._log.read().decode(errors="replace").splitlines()[-lines:])

    def __exit__(self, *exc) -> None:
        _stop(self.process)
        self._log.close()


def _process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (worker processes)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += children.get(current, [])
    return tree


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants (worker processes), in MiB."""
    total_kb = 0
    for current in _process_tree(pid):
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024


def tree_minor_faults(pid: int) -> int:
    """Minor page faults so far of ``pid`` and all its descendants (proc(5) ``stat`` field 10)."""
    total = 0
    for current in _process_tree(pid):
        try:
            total += int(Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()[7])
        except (OSError, IndexError, ValueError):
            continue
    return total
