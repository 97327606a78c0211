"""`mwt serve` as a child process on a free loopback port, for tests and load benchmarks."""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.children import ready_child, stop_child


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalServer:
    process: subprocess.Popen[bytes]
    url: str  # http://127.0.0.1:PORT
    stderr_path: Path
    final_stderr: str = ""  # what the server wrote, once it has stopped

    def stderr(self) -> str:
        """What the server has written to stderr so far."""
        if self.stderr_path.exists():
            return self.stderr_path.read_text(errors="replace")
        return self.final_stderr

    def rss_mib(self) -> float:
        """The server's resident memory (Linux)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")


@contextlib.contextmanager
def local_server(models: list[Path], *options: str, timeout: float = 60.0) -> Iterator[LocalServer]:
    """Start `mwt serve MODELS --port P OPTIONS...`, wait until /health answers 200 (over HTTPS
    with --tls-cert), yield it, then stop it with SIGTERM (and SIGKILL after 30 s)."""
    port = free_port()
    # With --tls-cert the server speaks HTTPS; the health probe does not check its (test) certificate.
    tls = "--tls-cert" in options
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "mwt", "serve", *map(str, models), "--port", str(port), *options]
    with ready_child(argv, url + "/health", timeout=timeout,
                     context=ssl._create_unverified_context() if tls else None) as (process, log_path):
        server = LocalServer(process, url, log_path)
        try:
            yield server
        finally:
            stop_child(process)
            server.final_stderr = server.stderr()
            log_path.unlink(missing_ok=True)
