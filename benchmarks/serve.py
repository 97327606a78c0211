"""Load test of `mwt serve` on loopback: throughput and p50/p99 latency at 1, 8 and 32 concurrent
clients, batching on and off, module vs full model; errors counted; server memory at start and end.

Bounded: each level sends at most --requests requests and runs at most --seconds. Traffic goes to
127.0.0.1 only.

    python benchmarks/serve.py results/training/modular.pt --classes sneaker,bag --out results/serve
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _start(model: Path, max_batch: int, threads: int) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from mwt.cli import main; main()", "serve", str(model), "--port", str(port),
         "--max-batch", str(max_batch), "--threads", str(threads), "--queue-size", "1024"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(base + "/health", timeout=1)
            return proc, base
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start: " + proc.stderr.read().decode()[-1000:])


def _load(base: str, body: bytes, clients: int, requests: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    per_client = max(1, requests // clients)

    def client(_: int) -> tuple[list[float], int]:
        own, bad = [], 0
        for _ in range(per_client):
            if time.perf_counter() > deadline:
                break
            req = urllib.request.Request(base + "/predict", data=body, method="POST",
                                         headers={"Content-Type": "application/x-npy"})
            t = time.perf_counter()
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    r.read()
                own.append(time.perf_counter() - t)
            except (urllib.error.URLError, ConnectionError):
                bad += 1
        return own, bad

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for own, bad in pool.map(client, range(clients)):
            latencies.extend(own)
            errors += bad
    wall = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return {"clients": clients, "requests": len(latencies), "errors": errors, "throughput_rps": len(latencies) / wall,
            "p50_ms": 1000 * statistics.median(latencies), "p99_ms": 1000 * q[98]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--classes", default="sneaker,bag")
    p.add_argument("--clients", default="1,8,32")
    p.add_argument("--requests", type=int, default=400, help="most requests per level")
    p.add_argument("--seconds", type=float, default=8.0, help="most seconds per level")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("results/serve"))
    args = p.parse_args(argv)
    from exporter.compile import export_full_model, export_module_file
    from mwt.checkpoint import file_sha256, load_checkpoint

    work = Path(tempfile.mkdtemp(prefix="mwt-serve-"))
    module = work / "module.onnx"
    export_module_file(args.checkpoint, args.classes, module)
    full = work / "full.onnx"
    full.write_bytes(export_full_model(load_checkpoint(args.checkpoint), file_sha256(args.checkpoint)).SerializeToString())
    ckpt = load_checkpoint(args.checkpoint)
    shape = (ckpt.spec.in_channels, *ckpt.spec.input_size)
    buf = io.BytesIO()
    np.save(buf, np.random.default_rng(0).random((1, *shape), dtype=np.float32))
    body = buf.getvalue()
    rows = []
    print(f"{'model':<7} {'batching':<9} {'clients':>7} {'req':>5} {'err':>4} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'RSS start':>9} {'RSS end':>8}")
    for name, model in (("module", module), ("full", full)):
        for max_batch in (32, 1):
            proc, base = _start(model, max_batch, args.threads)
            try:
                rss_start = _rss_mib(proc.pid)
                for clients in (int(c) for c in args.clients.split(",")):
                    r = _load(base, body, clients, args.requests, args.seconds)
                    r.update(model=name, batching="on" if max_batch > 1 else "off", rss_start_mib=rss_start,
                             rss_end_mib=_rss_mib(proc.pid))
                    rows.append(r)
                    print(f"{name:<7} {r['batching']:<9} {clients:>7} {r['requests']:>5} {r['errors']:>4} "
                          f"{r['throughput_rps']:>8.1f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
                          f"{rss_start:>8.1f}M {r['rss_end_mib']:>7.1f}M", flush=True)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serve.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
