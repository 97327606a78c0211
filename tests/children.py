"""Child processes for tests and benchmarks: started, waited for, signalled and stopped, always
with a deadline (a child that dies early or hangs fails the test; it never hangs it)."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from mwt.core.errors import MwtError

# gRPC's fork handlers (grpcio 1.80-1.85, grpc/grpc#43055) restart its poller in a child forked
# while a client in this process is live; Popen then closes the poller's epoll fd before exec and
# the child aborts (or hangs) before it becomes a server (1 of 599 tests in a CI run; 3 of 300 forks
# in docs/results/ci-grpc-fork/repro.py, 0 of 1,100 with this off). Children here exec at once and
# never use gRPC before, so they need no handlers. Set before grpc loads: import this module first.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux for SIGTERM when the parent dies, so a benchmark or
    test killed by a signal (its context manager never exits) leaves no server behind."""
    import ctypes
    import signal

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def sigint_at_default() -> None:
    """In the child, before exec: SIGINT at its default and unblocked, as a terminal's foreground
    command starts. A suite run in the background (`cmd &` in a script, as CI may run it) hands its
    children SIGINT ignored, and a process that inherits it ignored rightly keeps ignoring it (stop
    47 traced a failure of the joining-rank SIGINT test in such a run to it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _signalled_child() -> None:
    """In the child of `signal_when`, before exec: dies with its parent, starts with SIGINT at its default."""
    if sys.platform == "linux":
        _die_with_parent()
    sigint_at_default()


def stop_child(process: subprocess.Popen[bytes], grace: float = 30.0) -> None:
    """SIGTERM a child and wait for it; SIGKILL it after `grace` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def ready_child(argv: list[str], ready_url: str, *, env: dict[str, str] | None = None, timeout: float = 60.0,
                context: ssl.SSLContext | None = None, what: str = "the server"
                ) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """Start `argv` as a child (its stderr and stdout to a log file), poll `ready_url` until it
    answers 200, and yield (the process, the log's path); then stop it (`stop_child`) and remove
    the log. MwtError, with the log's tail, if the child exits or is not ready within `timeout`."""
    with tempfile.NamedTemporaryFile(prefix="mwt-child-", suffix=".log", delete=False) as log:
        log_path = Path(log.name)
    with open(log_path, "wb") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=out,
                                   preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise MwtError(f"{what} exited with code {process.returncode}: "
                               f"{log_path.read_text(errors='replace')[-2000:]}")
            try:
                if urllib.request.urlopen(ready_url, timeout=1, context=context).status == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise MwtError(f"{what} did not become ready in {timeout:.0f} s: "
                               f"{log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)
        yield process, log_path
    finally:
        stop_child(process)
        log_path.unlink(missing_ok=True)


@dataclass(frozen=True)
class Finished:
    """How a signalled child ended."""

    returncode: int
    stdout: str  # every line it printed, the awaited ones included
    stderr: str


def signal_when(argv: Sequence[str], prefixes: Sequence[str], sig: int = signal.SIGINT, *,
                env: dict[str, str] | None = None, timeout: float = 120.0) -> Finished:
    """Run `argv`, wait until its stdout has printed lines starting with each of `prefixes` (in
    order), send it `sig`, and wait for it to end. Fails the test (AssertionError, with what the
    child printed) if it exits first or any step takes longer than `timeout`."""
    proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=_signalled_child)
    assert proc.stdout is not None and proc.stderr is not None
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []
    errors: list[str] = []  # stderr, read all along: a full pipe would block the child

    def read_out() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.put(line)
        lines.put("")  # end of output

    readers = [threading.Thread(target=read_out, daemon=True),
               threading.Thread(target=lambda: errors.extend(proc.stderr), daemon=True)]  # type: ignore[arg-type]
    for reader in readers:
        reader.start()
    try:
        deadline = time.monotonic() + timeout
        for prefix in prefixes:
            while True:
                try:
                    line = lines.get(timeout=max(deadline - time.monotonic(), 0))
                except queue.Empty:
                    raise AssertionError(f"no line starting {prefix!r} within {timeout:.0f} s; printed: "
                                         f"{''.join(seen)[-2000:]}") from None
                if not line:
                    proc.wait(timeout=10)
                    readers[1].join(timeout=5)
                    raise AssertionError(f"the child exited (code {proc.returncode}) before printing {prefix!r}: "
                                         f"{''.join(seen)[-1000:]}{''.join(errors)[-2000:]}")
                seen.append(line)
                if line.startswith(prefix):
                    break
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the child did not stop within {timeout:.0f} s of signal {sig}") from None
        for reader in readers:
            reader.join(timeout=5)
        while not lines.empty():
            seen.append(lines.get())
        return Finished(proc.returncode, "".join(seen), "".join(errors))
    finally:
        stop_child(proc, grace=5)
