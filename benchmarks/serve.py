"""Load test of `mwt serve` on loopback: throughput and p50/p99 latency at 1, 8 and 32 concurrent
clients, batching on and off, module vs the plain full model; errors counted; server memory at start and end.

Bounded: each level sends at most --requests requests and runs at most --seconds. Traffic goes to
127.0.0.1 only.

    python benchmarks/serve.py results/training/modular.pt --classes sneaker,bag --out results/serve
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tests.local_server import local_server


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
    from exporter.compile import ModuleCompiler
    from exporter.export import export_module_file

    work = Path(tempfile.mkdtemp(prefix="mwt-serve-"))
    compiler = ModuleCompiler.from_file(args.checkpoint)
    module = work / "module.onnx"
    export_module_file(compiler, compiler.select(args.classes), module)
    plain = work / "plain.onnx"
    plain.write_bytes(compiler.plain_model.SerializeToString())
    buf = io.BytesIO()
    np.save(buf, np.random.default_rng(0).random((1, *compiler.ckpt.spec.input_shape), dtype=np.float32))
    body = buf.getvalue()
    rows = []
    print(f"{'model':<7} {'batching':<9} {'clients':>7} {'req':>5} {'err':>4} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'RSS start':>9} {'RSS end':>8}")
    for name, model in (("module", module), ("plain", plain)):
        for max_batch in (32, 1):
            options = ("--max-batch", str(max_batch), "--threads", str(args.threads), "--queue-size", "1024")
            with local_server([model], *options) as server:
                rss_start = server.rss_mib()
                for clients in (int(c) for c in args.clients.split(",")):
                    r = _load(server.url, body, clients, args.requests, args.seconds)
                    r.update(model=name, batching="on" if max_batch > 1 else "off", rss_start_mib=rss_start,
                             rss_end_mib=server.rss_mib())
                    rows.append(r)
                    print(f"{name:<7} {r['batching']:<9} {clients:>7} {r['requests']:>5} {r['errors']:>4} "
                          f"{r['throughput_rps']:>8.1f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
                          f"{rss_start:>8.1f}M {r['rss_end_mib']:>7.1f}M", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serve.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
