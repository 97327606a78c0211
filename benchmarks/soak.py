"""Soak test of `mwt serve` on loopback: mixed good and bad requests at 8 and 32 clients.

Each level runs for --seconds (default 30, so 60 s in all) and at most --max-requests requests,
then stops by itself. Good requests (a PNG, a .npy batch of 1-32 samples to /predict; v2 infer
bodies in JSON and binary tensors) must all get 200; bad ones (bombs, huge .npy headers, strings,
garbage, empty and oversized bodies, v2 bodies with a wrong shape, datatype, binary length or
value range, a client that stops sending) must get a 4xx. Reported: errors on good requests, 5xx answers, and the server's
memory at start, after warm-up, at its peak and at the end. Traffic goes to 127.0.0.1 only.

    python -m benchmarks.soak model.pt --classes sneaker,bag --out results/soak
"""

from __future__ import annotations

import argparse
import io
import json
import random
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from tests.hostile_bytes import npy, npy_claiming, png_claiming
from tests.local_server import LocalServer, local_server


def v2_bodies(shape: tuple[int, int, int], rng: np.random.Generator, model: str) -> list[tuple[str, bool, bytes, str]]:
    """v2 infer requests, good and bad, as (name, good?, body, content type), the path in the type
    after a '|' and the binary header length after a second '|'."""
    path = f"/v2/models/{model}/infer"

    def body(x: object, dims: list[int], datatype: str = "FP32") -> bytes:
        return json.dumps({"inputs": [{"name": "input", "datatype": datatype, "shape": dims, "data": x}]}).encode()

    def binary(x: np.ndarray, size: int | None = None) -> tuple[bytes, str]:
        raw = x.tobytes()
        head = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": list(x.shape),
                                       "parameters": {"binary_data_size": len(raw) if size is None else size}}],
                           "parameters": {"binary_data_output": True}}).encode()
        return head + raw, f"application/octet-stream|{path}|{len(head)}"

    one = rng.random((1, *shape), dtype=np.float32)
    eight = rng.random((8, *shape), dtype=np.float32)
    return [
        ("v2 json x1", True, body(one.ravel().tolist(), [1, *shape]), f"application/json|{path}"),
        ("v2 binary x8", True, *binary(eight)),
        ("v2 wrong shape", False, body(one.ravel().tolist(), [1, shape[0], shape[1], shape[2] + 1]),
         f"application/json|{path}"),
        ("v2 wrong datatype", False, body([1] * one.size, [1, *shape], "INT64"), f"application/json|{path}"),
        ("v2 out of range", False, body([3e38] * one.size, [1, *shape]), f"application/json|{path}"),
        ("v2 binary length", False, *binary(eight, size=100)),
    ]


def request_mix(shape: tuple[int, int, int], rng: np.random.Generator, model: str = "") -> list[tuple[str, bool, bytes, str]]:
    """(name, good?, body, content type) for every kind of request the soak sends."""
    png = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, shape[1:], dtype=np.uint8)).save(png, format="PNG")
    return [
        *(v2_bodies(shape, rng, model) if model else []),
        ("png", True, png.getvalue(), "image/png"),
        *[(f"npy x{n}", True, npy(rng.random((n, *shape), dtype=np.float32)), "application/x-npy") for n in (1, 8, 32)],
        ("bomb png", False, png_claiming(30000, 30000), "image/png"),
        ("big png", False, png_claiming(13000, 13000), "image/png"),
        ("huge npy header", False, npy_claiming((100_000_000, *shape)), "application/x-npy"),
        ("strings npy", False, npy(np.array(["a", "b"])), "application/x-npy"),
        ("too many samples", False, npy(np.zeros((2000, *shape), np.float32)), "application/x-npy"),
        ("garbage", False, bytes(rng.integers(0, 256, 3000, dtype=np.uint8)), "image/png"),
        ("empty", False, b"", "image/png"),
        ("oversized", False, b"x" * (9 << 20), "image/png"),
    ]


def post(url: str, body: bytes, content_type: str) -> int:
    content_type, _, route = content_type.partition("|")
    path, _, header_length = route.partition("|")
    headers = {"Content-Type": content_type}
    if header_length:
        headers["Inference-Header-Content-Length"] = header_length
    req = urllib.request.Request(url + (path or "/predict"), data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        e.read()
        return e.code
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return -1  # no answer at all


def stalled_client(url: str) -> int:
    """Send headers and part of a body, then stop: the server must answer 408 and drop us."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as conn:
        conn.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 5000\r\n\r\n"
                     + b"x" * 100)
        answer = conn.recv(64)
    return int(answer.split()[1]) if answer.startswith(b"HTTP/1.1") else -1


def soak_level(server: LocalServer, mix: list[tuple[str, bool, bytes, str]], clients: int, seconds: float,
               max_requests: int, seed: int) -> dict:
    counts: Counter[str] = Counter()
    good_errors = server_errors = bad_accepted = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    budget = iter(range(max_requests))

    def client(i: int) -> None:
        nonlocal good_errors, server_errors, bad_accepted
        rng = random.Random(seed * 1000 + i)
        while time.monotonic() < deadline and next(budget, None) is not None:
            if rng.random() < 0.01:
                name, good, status = "stalled client", False, stalled_client(server.url)
            else:
                name, good, body, content_type = mix[rng.randrange(len(mix))]
                status = post(server.url, body, content_type)
            with lock:
                counts[name] += 1
                if status >= 500 or status < 0:
                    server_errors += 1
                if good and status != 200:
                    good_errors += 1
                if not good and status == 200:
                    bad_accepted += 1

    start = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return {"clients": clients, "seconds": time.monotonic() - start, "requests": sum(counts.values()),
            "by_kind": dict(counts), "good_errors": good_errors, "no_answer_or_5xx": server_errors,
            "bad_accepted": bad_accepted}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path, help="a checkpoint to export --classes from, or a module .onnx file")
    p.add_argument("--classes", default="sneaker,bag")
    p.add_argument("--clients", default="8,32")
    p.add_argument("--seconds", type=float, default=30.0, help="seconds per client level")
    p.add_argument("--max-requests", type=int, default=20_000, help="most requests per level")
    p.add_argument("--out", type=Path, default=Path("results/soak"))
    args = p.parse_args(argv)
    if args.checkpoint.suffix == ".onnx":
        from runtime.module_file import read_module

        module = args.checkpoint
    else:
        from exporter.compile import ModuleCompiler
        from exporter.export import export_module_file

        compiler = ModuleCompiler.from_file(args.checkpoint)
        module = Path(tempfile.mkdtemp(prefix="mwt-soak-")) / "module.onnx"
        export_module_file(compiler, compiler.select(args.classes), module)
    shape = read_module(module).input.shape if args.checkpoint.suffix == ".onnx" else compiler.ckpt.spec.input_shape
    result: dict = {"levels": []}
    with local_server([module], "--threads", "2", "--body-timeout", "2") as server:
        model = json.loads(urllib.request.urlopen(server.url + "/v2/models").read())["models"][0]
        mix = request_mix(shape, np.random.default_rng(0), model)
        result["rss_start_mib"] = server.rss_mib()
        peak = [result["rss_start_mib"]]
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(0.25):
                peak.append(server.rss_mib())

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        soak_level(server, mix, 32, 5.0, 2000, seed=99)  # warm-up: caches and arenas grow to their working size
        result["rss_after_warmup_mib"] = server.rss_mib()
        for i, clients in enumerate(int(c) for c in args.clients.split(",")):
            level = soak_level(server, mix, clients, args.seconds, args.max_requests, seed=i)
            level["rss_mib"] = server.rss_mib()
            result["levels"].append(level)
            print(f"{clients:>3} clients: {level['requests']} requests in {level['seconds']:.0f} s, "
                  f"good errors {level['good_errors']}, 5xx/no answer {level['no_answer_or_5xx']}, "
                  f"bad accepted {level['bad_accepted']}, RSS {level['rss_mib']:.0f} MiB", flush=True)
        time.sleep(3.0)  # idle: the server hands freed memory back once a second
        stop.set()
        watcher.join()
        result["rss_peak_mib"] = max(peak)
        result["rss_end_mib"] = server.rss_mib()
        result["server_tracebacks"] = server.stderr().count("Traceback")
    warm = result["rss_after_warmup_mib"]
    result["rss_end_vs_warmup"] = result["rss_end_mib"] / warm
    print(f"RSS: start {result['rss_start_mib']:.0f} MiB, after warm-up {warm:.0f}, peak {result['rss_peak_mib']:.0f}, "
          f"end {result['rss_end_mib']:.0f} ({100 * (result['rss_end_vs_warmup'] - 1):+.1f}% of warm-up); "
          f"server tracebacks {result['server_tracebacks']}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.json").write_text(json.dumps(result, indent=2))
    failed = any(lv["good_errors"] or lv["no_answer_or_5xx"] or lv["bad_accepted"] for lv in result["levels"])
    return 1 if failed or result["server_tracebacks"] else 0


if __name__ == "__main__":
    sys.exit(main())
