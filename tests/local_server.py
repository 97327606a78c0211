"""`mwt serve` as a child process on a free loopback port, for tests and load benchmarks."""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mwt.core.errors import MwtError


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux for SIGTERM when the parent dies, so a benchmark or
    test killed by a signal (its context manager never exits) leaves no server behind."""
    import ctypes
    import signal

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


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
    with --tls-cert), yield it,
    then stop it with SIGTERM (and SIGKILL after 30 s)."""
    port = free_port()
    with tempfile.NamedTemporaryFile(prefix="mwt-serve-", suffix=".log", delete=False) as log:
        stderr_path = Path(log.name)
    with open(stderr_path, "wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "mwt", "serve", *map(str, models), "--port", str(port), *options],
            stdout=subprocess.DEVNULL, stderr=err, preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    # With --tls-cert the server speaks HTTPS; the health probe does not check its (test) certificate.
    tls = "--tls-cert" in options
    probe = ssl._create_unverified_context() if tls else None
    server = LocalServer(process, f"{'https' if tls else 'http'}://127.0.0.1:{port}", stderr_path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise MwtError(f"the server exited with code {process.returncode}: {server.stderr()[-2000:]}")
            try:
                if urllib.request.urlopen(server.url + "/health", timeout=1, context=probe).status == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise MwtError(f"the server did not become healthy in {timeout:.0f} s: {server.stderr()[-2000:]}")
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        server.final_stderr = server.stderr()
        stderr_path.unlink(missing_ok=True)
