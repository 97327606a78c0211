"""Load test of `mwt serve` against a KServe model server on the same module, same cores, same clients.

Both servers speak the Open Inference Protocol; both are driven by tritonclient's clients (REST with
JSON tensors, REST with binary tensors, gRPC), and by a pre-encoded v2 JSON request on a keep-alive
connection (rest-json-raw: the server's share without the client's JSON encoding), at 1, 8 and 32
concurrent clients, one thread and one
client object per concurrent client, on loopback. mwt's own `/predict` (a .npy body) is measured
too. Reported per point: requests, errors, throughput, p50 and p99 latency end to end, and each
server's memory. Every (server, protocol) pair is first checked to answer onnxruntime's logits.

The peer is the `kserve` package's `ModelServer` with an onnxruntime predictor (`PEER` below),
run from its own Python environment, because kserve pins protobuf<7 and cannot share mwt's:

    python -m venv /work/venv-kserve && /work/venv-kserve/bin/pip install kserve onnxruntime

Bounded: each point runs at most --seconds and --requests. Traffic goes to 127.0.0.1 only.

    python -m benchmarks.serve results/training/modular.pt --classes sneaker,bag \\
        --kserve-python /work/venv-kserve/bin/python --out results/serve
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import multiprocessing
import os
import queue
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runtime.batching import BatchingConfig
from runtime.session import Parallelism
from tests.children import ready_child
from tests.local_server import free_port, local_server

# The peer: KServe's documented way to serve a custom model (a kserve.Model with load/predict,
# started by kserve.ModelServer), predicting with onnxruntime on the same module file and the
# same thread settings as mwt. Configured through the environment: kserve parses sys.argv itself.
PEER = r'''
import os
import numpy as np
import onnxruntime as ort
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer


class OnnxModel(Model):
    def __init__(self, name: str, path: str, threads: int) -> None:
        super().__init__(name)
        self.path, self.threads = path, threads
        self.load()

    def load(self) -> bool:
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(self.path, options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.ready = True
        return self.ready

    async def predict(self, payload: InferRequest, headers=None, response_headers=None) -> InferResponse:
        x = payload.inputs[0].as_numpy()
        logits = self.session.run(["logits"], {self.input_name: x})[0]
        output = InferOutput(name="logits", shape=list(logits.shape), datatype="FP32")
        output.set_data_from_numpy(logits, binary_data=payload.use_binary_outputs)
        return InferResponse(response_id=payload.id or "", model_name=self.name, infer_outputs=[output],
                             use_binary_outputs=payload.use_binary_outputs, requested_outputs=payload.request_outputs)


if __name__ == "__main__":
    import logging

    logging.disable(logging.INFO)  # no access or latency log lines: mwt writes none either
    model = OnnxModel(os.environ["PEER_MODEL_NAME"], os.environ["PEER_MODEL_PATH"], int(os.environ["PEER_THREADS"]))
    ModelServer(http_port=int(os.environ["PEER_HTTP_PORT"]), grpc_port=int(os.environ["PEER_GRPC_PORT"]),
                workers=1, enable_docs_url=False, enable_latency_logging=False).start([model])
'''

# rest-json-raw: the same v2 JSON request, encoded once and sent over one keep-alive connection,
# so the point measures the server, not tritonclient's JSON encoding (about 1 ms a request here).
# grpc-raw: the same for gRPC. One ModelInferRequest is serialized once and sent through grpcio's
# own channel, as Triton's perf_analyzer reuses a prepared request. That leaves out
# tritonclient's per-request Python work, which is on the same cores as the servers.
PROTOCOLS = ("rest-json", "rest-json-raw", "rest-binary", "grpc", "grpc-raw")


@dataclass
class Endpoint:
    server: str  # "mwt" or "kserve"
    rest: str  # host:port
    grpc: str
    model: str
    pid: int


@dataclass
class Point:
    server: str
    protocol: str
    clients: int
    requests: int
    errors: int
    throughput_rps: float
    p50_ms: float
    p99_ms: float
    rss_mib: float
    client_processes: int = 1


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextlib.contextmanager
def kserve_server(python: str, module: Path, name: str, threads: int, timeout: float = 120.0) -> Iterator[Endpoint]:
    """The KServe peer as a child process on free loopback ports, until its v2 ready answers 200."""
    http_port, grpc_port = free_port(), free_port()
    script = Path(tempfile.mkdtemp(prefix="mwt-peer-")) / "peer.py"
    script.write_text(PEER)
    env = {**os.environ, "PEER_MODEL_NAME": name, "PEER_MODEL_PATH": str(module), "PEER_THREADS": str(threads),
           "PEER_HTTP_PORT": str(http_port), "PEER_GRPC_PORT": str(grpc_port), "PYTHONPATH": ""}
    with ready_child([python, str(script)], f"http://127.0.0.1:{http_port}/v2/models/{name}/ready", env=env,
                     timeout=timeout, what="the KServe peer") as (process, _):
        yield Endpoint("kserve", f"127.0.0.1:{http_port}", f"127.0.0.1:{grpc_port}", name, process.pid)


@contextlib.contextmanager
def mwt_server(module: Path, threads: int, max_batch: int, inline_max_ms: float,
               parallelism: str = Parallelism.ops.value) -> Iterator[Endpoint]:
    grpc_port = free_port()
    with local_server([module], "--grpc-port", str(grpc_port), "--threads", str(threads), "--max-batch",
                      str(max_batch), "--queue-size", "1024", "--inline-max-ms", str(inline_max_ms),
                      "--parallelism", parallelism) as server:
        models = json.loads(urllib.request.urlopen(server.url + "/v2/models").read())["models"]
        yield Endpoint("mwt", server.url.removeprefix("http://"), f"127.0.0.1:{grpc_port}", models[0],
                       server.process.pid)


def sender(endpoint: Endpoint, protocol: str, x: np.ndarray) -> Callable[[], np.ndarray]:
    """A function sending one request (a fresh client connection each call of `sender`)."""
    if protocol == "predict":
        conn = http.client.HTTPConnection(*endpoint.rest.split(":"))
        buf = io.BytesIO()
        np.save(buf, x)
        body = buf.getvalue()

        def predict() -> np.ndarray:
            conn.request("POST", "/predict", body, {"Content-Type": "application/x-npy"})
            r = conn.getresponse()
            payload = r.read()
            if r.status != 200:
                raise RuntimeError(f"/predict answered {r.status}")
            return np.array([p["logits"] for p in json.loads(payload)["predictions"]], np.float32)

        return predict
    if protocol == "rest-json-raw":
        conn = http.client.HTTPConnection(*endpoint.rest.split(":"))
        request = json.dumps({"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32",
                                          "data": x.ravel().tolist()}], "outputs": [{"name": "logits"}]}).encode()
        path = f"/v2/models/{endpoint.model}/infer"

        def infer_raw() -> np.ndarray:
            conn.request("POST", path, request, {"Content-Type": "application/json"})
            r = conn.getresponse()
            payload = r.read()
            if r.status != 200:
                raise RuntimeError(f"{path} answered {r.status}")
            out = next(o for o in json.loads(payload)["outputs"] if o["name"] == "logits")
            return np.asarray(out["data"], np.float32).reshape(out["shape"])

        return infer_raw
    if protocol == "grpc-raw":
        import grpc
        from tritonclient.grpc import service_pb2 as pb

        channel = grpc.insecure_channel(endpoint.grpc)
        call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")  # bytes in, bytes out
        message = pb.ModelInferRequest(model_name=endpoint.model, raw_input_contents=[x.tobytes()])
        message.inputs.add(name="input", datatype="FP32", shape=list(x.shape))
        message.outputs.add(name="logits")
        request = message.SerializeToString()

        def infer_grpc_raw() -> np.ndarray:
            answer = pb.ModelInferResponse.FromString(call(request))
            i = next(i for i, o in enumerate(answer.outputs) if o.name == "logits")
            return np.frombuffer(answer.raw_output_contents[i], np.float32).reshape(answer.outputs[i].shape)

        return infer_grpc_raw
    if protocol == "grpc":
        import tritonclient.grpc as tc

        client = tc.InferenceServerClient(endpoint.grpc)
        tensor = tc.InferInput("input", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x)
        outputs = [tc.InferRequestedOutput("logits")]
    else:
        import tritonclient.http as tc  # type: ignore[no-redef]

        binary = protocol == "rest-binary"
        client = tc.InferenceServerClient(endpoint.rest)
        tensor = tc.InferInput("input", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x, binary_data=binary)
        outputs = [tc.InferRequestedOutput("logits", binary_data=binary)]
        # tritonclient sends no Content-Type; KServe's FastAPI endpoint reads a body without one as binary
        headers = None if binary else {"Content-Type": "application/json"}
        return lambda: client.infer(endpoint.model, [tensor], outputs=outputs, headers=headers).as_numpy("logits")
    return lambda: client.infer(endpoint.model, [tensor], outputs=outputs).as_numpy("logits")


WARM_UP_S = 120.0  # longest wait for every client to connect and warm up


def _drive(endpoint: Endpoint, protocol: str, x: np.ndarray, clients: int, seconds: float, budget: int,
           start_line: Any) -> tuple[list[float], int, float, float]:
    """`clients` threads in this process, each with its own client, sending until `seconds` have
    passed or it sent `budget` requests. Every thread connects and warms up, then all wait on
    `start_line` (a barrier shared with the other client processes, if any). Returns the
    latencies, the error count and the measured window (monotonic clock, shared by processes)."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    failed: list[str] = []
    local_line = threading.Barrier(clients + 1, timeout=WARM_UP_S)
    deadline = [0.0]

    def client(i: int) -> None:
        try:
            send = sender(endpoint, protocol, x)
            for _ in range(3):  # connect and warm up outside the measured window
                send()
        except Exception as e:  # a client that cannot even start breaks the barrier for all
            failed.append(f"{type(e).__name__}: {e}")
            local_line.abort()
            return
        try:
            local_line.wait()
            local_line.wait()  # the window opens
        except threading.BrokenBarrierError:
            return
        own = latencies[i]
        while len(own) < budget and time.monotonic() < deadline[0]:
            t = time.perf_counter()
            try:
                send()
            except Exception:  # any client error counts; the load goes on
                errors[i] += 1
                continue
            own.append(time.perf_counter() - t)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    try:
        local_line.wait()  # every thread here is warm
        start_line.wait(WARM_UP_S)  # and every other process's
    except threading.BrokenBarrierError:
        local_line.abort()
        start_line.abort()
        raise RuntimeError(f"a client did not start: {failed[0] if failed else 'another client process failed'}")
    began = time.monotonic()
    deadline[0] = began + seconds
    local_line.wait()
    for t in threads:
        t.join()
    return [v for own in latencies for v in own], sum(errors), began, time.monotonic()


def _client_process(endpoint: Endpoint, protocol: str, x: np.ndarray, clients: int, seconds: float, budget: int,
                    start_line: Any, results: Any) -> None:
    try:
        results.put(("ok", _drive(endpoint, protocol, x, clients, seconds, budget, start_line)))
    except Exception as e:  # the parent says what failed; the other processes leave the barrier
        start_line.abort()
        results.put(("error", str(e)))


def load(endpoint: Endpoint, protocol: str, x: np.ndarray, clients: int, seconds: float, requests: int,
         processes: int = 1) -> Point:
    """One load point: `clients` concurrent clients spread over `processes` client processes.

    With one process, all clients are threads of this one and share its GIL: when the server
    answers faster than one core can encode JSON, the clients queue for the GIL, and that wait
    lands in every latency measured (Python's switch interval is 5 ms). Real clients are separate
    programs; perf_analyzer's are C++ threads. Several processes measure that case."""
    processes = max(1, min(processes, clients))
    budget = max(1, requests // clients)
    if processes == 1:
        try:
            flat, errors, began, ended = _drive(endpoint, protocol, x, clients, seconds, budget,
                                                threading.Barrier(1))
        except RuntimeError as e:
            raise SystemExit(f"{protocol} at {clients} clients: {e}") from None
    else:
        ctx = multiprocessing.get_context("spawn")
        start_line, results = ctx.Barrier(processes), ctx.Queue()
        shares = [clients // processes + (i < clients % processes) for i in range(processes)]
        children = [ctx.Process(target=_client_process, daemon=True,
                                args=(endpoint, protocol, x, n, seconds, budget, start_line, results))
                    for n in shares]
        try:
            for c in children:
                c.start()
            parts = []
            give_up = time.monotonic() + WARM_UP_S + seconds + 60
            while len(parts) < len(children):
                try:
                    status, part = results.get(timeout=1.0)
                except queue.Empty:
                    if time.monotonic() > give_up or any(c.exitcode not in (None, 0) for c in children):
                        raise SystemExit(f"a client process of {protocol} at {clients} clients died") from None
                    continue
                if status != "ok":
                    raise SystemExit(f"{protocol} at {clients} clients: {part}")
                parts.append(part)
        finally:
            for c in children:
                c.join(timeout=5)
                if c.is_alive():
                    c.terminate()
        flat = [v for part in parts for v in part[0]]
        errors = sum(part[1] for part in parts)
        began, ended = min(part[2] for part in parts), max(part[3] for part in parts)
    wall = ended - began
    q = statistics.quantiles(flat, n=100) if len(flat) > 1 else flat * 99
    return Point(endpoint.server, protocol, clients, len(flat), errors, len(flat) / wall,
                 1000 * statistics.median(flat) if flat else float("nan"), 1000 * q[98] if flat else float("nan"),
                 rss_mib(endpoint.pid), processes)


def check(endpoint: Endpoint, protocol: str, x: np.ndarray, expected: np.ndarray) -> None:
    got = sender(endpoint, protocol, x)()
    if not np.allclose(got, expected, atol=1e-5):
        raise SystemExit(f"{endpoint.server} over {protocol} answered {got.tolist()}, onnxruntime {expected.tolist()}")


def module_for(args: argparse.Namespace, work: Path) -> Path:
    if args.checkpoint.suffix == ".onnx":
        return args.checkpoint
    from exporter.compile import ModuleCompiler
    from exporter.export import export_module_file

    compiler = ModuleCompiler.from_file(args.checkpoint)
    module = work / "module.onnx"
    export_module_file(compiler, compiler.select(args.classes), module)
    return module


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path, help="a checkpoint to export --classes from, or a module .onnx file")
    p.add_argument("--classes", default="sneaker,bag")
    p.add_argument("--clients", default="1,8,32")
    p.add_argument("--protocols", default=",".join(PROTOCOLS))
    p.add_argument("--requests", type=int, default=20_000, help="most requests per point")
    p.add_argument("--seconds", type=float, default=10.0, help="most seconds per point")
    p.add_argument("--client-processes", type=int, default=1,
                   help="spread each point's clients over this many processes (1: threads of one process, "
                   "sharing its GIL)")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads, both servers")
    p.add_argument("--parallelism", default=Parallelism.ops.value, choices=[m.value for m in Parallelism],
                   help="mwt serve --parallelism: how mwt's threads share a batch (see mwt serve --help)")
    p.add_argument("--max-batch", type=int, default=BatchingConfig.max_batch,
                   help="mwt's dynamic batching (KServe's server has none; default: mwt serve's)")
    p.add_argument("--inline-max-ms", type=float, default=BatchingConfig.inline_max_ms,
                   help="mwt serve's --inline-max-ms (0: every request through the onnxruntime thread)")
    p.add_argument("--kserve-python", default="", help="the Python of a venv with kserve (empty: mwt only)")
    p.add_argument("--out", type=Path, default=Path("results/serve"))
    args = p.parse_args(argv)
    if args.client_processes < 1:
        p.error("--client-processes must be at least 1")
    from runtime import ComposedClassifier

    module = module_for(args, Path(tempfile.mkdtemp(prefix="mwt-serve-")))
    x = np.random.default_rng(0).random((1, *ComposedClassifier.from_files([module]).input_shape), dtype=np.float32)
    expected = ComposedClassifier.from_files([module]).predict(x).logits
    protocols = args.protocols.split(",")
    levels = [int(c) for c in args.clients.split(",")]
    points: list[Point] = []
    print(f"{'server':<7} {'protocol':<12} {'clients':>7} {'req':>6} {'err':>4} {'req/s':>8} {'p50 ms':>7} "
          f"{'p99 ms':>7} {'RSS MiB':>8}", flush=True)
    servers: list[Callable[[], contextlib.AbstractContextManager[Endpoint]]] = [
        lambda: mwt_server(module, args.threads, args.max_batch, args.inline_max_ms, args.parallelism)]
    if args.kserve_python:
        from runtime.module_file import read_module
        from runtime.triton import model_name

        name = model_name(read_module(module))
        servers.append(lambda: kserve_server(args.kserve_python, module, name, args.threads))
    for start in servers:
        with start() as endpoint:
            own = protocols + (["predict"] if endpoint.server == "mwt" else [])
            for protocol in own:
                check(endpoint, protocol, x, expected)
            for protocol in own:
                for clients in levels:
                    point = load(endpoint, protocol, x, clients, args.seconds, args.requests, args.client_processes)
                    points.append(point)
                    print(f"{point.server:<7} {point.protocol:<12} {clients:>7} {point.requests:>6} {point.errors:>4} "
                          f"{point.throughput_rps:>8.1f} {point.p50_ms:>7.2f} {point.p99_ms:>7.2f} "
                          f"{point.rss_mib:>8.1f}", flush=True)
    summary = []
    for protocol in protocols:
        for clients in levels:
            pair = {pt.server: pt for pt in points if pt.protocol == protocol and pt.clients == clients}
            if len(pair) == 2:
                mwt, peer = pair["mwt"], pair["kserve"]
                summary.append({"protocol": protocol, "clients": clients,
                                "throughput_x": mwt.throughput_rps / peer.throughput_rps,
                                "p99_mwt_ms": mwt.p99_ms, "p99_kserve_ms": peer.p99_ms})
                print(f"{protocol:<12} {clients:>3} clients: mwt/kserve throughput {summary[-1]['throughput_x']:.2f}x, "
                      f"p99 {mwt.p99_ms:.2f} vs {peer.p99_ms:.2f} ms")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serve.json").write_text(json.dumps({"points": [asdict(pt) for pt in points], "vs_kserve": summary,
                                                     "machine": {"cpus": os.cpu_count()}, "threads": args.threads,
                                                     "parallelism": args.parallelism}, indent=2))
    return 1 if any(pt.errors for pt in points) else 0


if __name__ == "__main__":
    sys.exit(main())
