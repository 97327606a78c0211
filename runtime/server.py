"""HTTP inference server for a composed classifier (Starlette app, run by uvicorn).

POST /predict   one image (PNG/JPEG/... body) or a batch (.npy body) -> labels, probabilities, logits
GET  /health    200 once the session is loaded and a warm-up run passed, else 503
GET  /info      classes, input spec, source checkpoint hash, KRR and FLOPs from the metadata
GET  /metrics   Prometheus text format: requests by endpoint and status, errors, latency, batch sizes

Bad input gets a 4xx with a one-line JSON reason and the server keeps serving: the body is
bounded in bytes and in the time a client may take to send it, decoded images in pixels, and
requests in samples; images and large arrays are decoded in worker threads, never on the event
loop, and no onnxruntime call is larger than the batching limit.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import json
import socket
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mwt.core.errors import MwtError
from runtime.batching import Batcher, BatchingConfig, QueueFull
from runtime.composed import ComposedClassifier, check_finite, softmax
from mwt.core.images import InputLimits, TooLarge, decode_image, read_npy

NPY_MAGIC = b"\x93NUMPY"


@dataclass(frozen=True)
class ServerConfig:
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    max_body_bytes: int = 8 << 20
    limits: InputLimits = field(default_factory=lambda: InputLimits(max_pixels=4096 * 4096, max_samples=1024))
    body_timeout_s: float = 10.0  # a client must send its whole body within this
    decode_threads: int = 2


class _Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("mwt_requests", "HTTP requests by endpoint and status", ["endpoint", "status"],
                                registry=self.registry)
        self.errors = Counter("mwt_errors", "Requests answered with an error, by reason", ["reason"],
                              registry=self.registry)
        self.latency = Histogram("mwt_request_seconds", "Time to answer /predict", registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
        self.batch = Histogram("mwt_batch_size", "Samples per onnxruntime call", registry=self.registry,
                               buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))


# A .npy body this small is read on the event loop: parsing it is a header check and a copy, and
# the hand-off to a decoding thread cost more (0.35 ms of a 2.4 ms request, measured).
INLINE_NPY_BYTES = 64 * 1024


class _HTTPError(Exception):
    def __init__(self, status: int, message: str, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.reason, self.headers = status, reason, headers


def is_npy(body: bytes | bytearray, content_type: str) -> bool:
    """Whether a request body is a .npy array (by its magic bytes or its declared type)."""
    return body.startswith(NPY_MAGIC) or "npy" in content_type


def decode_body(body: bytes | bytearray, content_type: str, clf: ComposedClassifier, limits: InputLimits) -> np.ndarray:
    """A request body as a prepared float32 batch: a .npy array, or one encoded image."""
    if not body:
        raise MwtError("the request body is empty; send an image or a .npy array")
    if is_npy(body, content_type):
        array = read_npy(body, clf.input_spec, "the body", limits)
    else:
        array = decode_image(body, clf.input_spec, "the request body", limits)
    return clf.prepare(array)


def _glibc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to tune
        return None


def _heap_trimmer() -> Callable[[], object] | None:
    """glibc's malloc_trim, or None elsewhere: hands the heaps' free pages back after heavy traffic."""
    libc = _glibc()
    trim = getattr(libc, "malloc_trim", None)
    return None if trim is None else (lambda: trim(0))


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port; MwtError (one line) when the address is bad or taken."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise MwtError(f"cannot listen on {host}:{port}: {getattr(e, 'strerror', None) or e}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        raise MwtError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.set_inheritable(True)
    return sock


def create_app(clf: ComposedClassifier, config: ServerConfig = ServerConfig()) -> Starlette:
    """The Starlette app serving `clf`; the batcher and the warm-up run start with the app."""
    metrics = _Metrics()
    state: dict[str, Any] = {"ready": False}
    decoder = ThreadPoolExecutor(config.decode_threads, thread_name_prefix="mwt-decode")
    first = clf.modules[0].meta
    info = {
        "classes": clf.classes,
        "input": first.input.to_dict(),
        "source_sha256": sorted({m.source for m in clf.modules}),
        "krr": first.krr if len(clf.modules) == 1 else None,
        "flops": clf.flops,
        "full_flops": first.full_flops,
        "plain_flops": first.plain_flops,
        "modules": [{"classes": m.classes, "krr": m.meta.krr, "flops": m.flops, "precision": m.meta.precision.value}
                    for m in clf.modules],
        "providers": clf.providers,
        "batching": asdict(config.batching),
        "limits": {**asdict(config.limits), "max_body_bytes": config.max_body_bytes,
                   "body_timeout_s": config.body_timeout_s},
    }

    trim = _heap_trimmer()
    state["heavy_bytes"] = 0  # body bytes handled since memory was last handed back

    async def trim_heap() -> None:
        while True:
            await asyncio.sleep(1.0)
            if state["heavy_bytes"] > 1 << 20:
                state["heavy_bytes"] = 0
                # Failed requests leave their bodies in reference cycles (exception -> traceback ->
                # frame -> body) that only a full collection frees; then the heap can shrink.
                gc.collect()
                if trim is not None:
                    await asyncio.get_running_loop().run_in_executor(decoder, trim)

    @asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        batcher = Batcher(clf.logits, config.batching, on_batch=lambda n: metrics.batch.observe(n))
        batcher.start()
        state["batcher"] = batcher
        await batcher.submit(np.zeros((1, *clf.input_shape), np.float32))  # warm-up through the real path
        trimmer = asyncio.get_running_loop().create_task(trim_heap())
        state["ready"] = True
        yield
        state["ready"] = False
        trimmer.cancel()
        await batcher.stop()
        decoder.shutdown(wait=False, cancel_futures=True)

    async def read_body(request: Request) -> bytes | bytearray:
        declared = request.headers.get("content-length", "")
        length = int(declared) if declared.isdigit() else None
        # A body of known size goes straight into one buffer of that size (a large one is its own
        # mapping, handed back whole when freed); a body declared too large is drained unkept.
        buffer = bytearray(length) if length is not None and length <= config.max_body_bytes else None
        keep = length is None or buffer is not None
        chunks: list[bytes] = []
        received = 0

        async def read() -> None:
            nonlocal received
            async for chunk in request.stream():
                end = received + len(chunk)
                if buffer is not None and end <= len(buffer):
                    buffer[received:end] = chunk
                elif keep and buffer is None and end <= config.max_body_bytes:
                    chunks.append(chunk)
                received = end
                if received > 16 * config.max_body_bytes:
                    break  # far too large: stop reading; the connection closes after the answer

        try:
            await asyncio.wait_for(read(), config.body_timeout_s)
        except asyncio.TimeoutError:
            raise _HTTPError(408, f"the body did not arrive within {config.body_timeout_s:g} s", "timeout") from None
        finally:
            request.state.received = received
        if received > config.max_body_bytes or (buffer is not None and received != len(buffer)):
            if received <= config.max_body_bytes:
                raise _HTTPError(400, f"the body has {received} bytes but its Content-Length says {len(buffer)}",
                                 "bad_input")
            # An oversized body is read and dropped (up to a cap) so the client, still sending,
            # gets this answer instead of a broken pipe.
            raise _HTTPError(413, f"the body is over {config.max_body_bytes} bytes", "too_large")
        return buffer if buffer is not None else b"".join(chunks)

    async def predict(request: Request) -> Response:
        try:
            return await answer(request)
        finally:  # counted once the request's buffers are garbage, for the next heap trim
            state["heavy_bytes"] += getattr(request.state, "received", 0)

    async def answer(request: Request) -> Response:
        start = time.perf_counter()
        body = await read_body(request)
        content_type = request.headers.get("content-type", "")
        loop = asyncio.get_running_loop()
        try:
            if len(body) <= INLINE_NPY_BYTES and is_npy(body, content_type):
                x = decode_body(body, content_type, clf, config.limits)  # a copy: cheaper than a thread hop
            else:  # images (decompression) and large arrays: off the event loop
                x = await loop.run_in_executor(decoder, decode_body, body, content_type, clf, config.limits)
        except TooLarge as e:
            raise _HTTPError(413, str(e), "too_large") from None
        except MwtError as e:
            raise _HTTPError(400, str(e), "bad_input") from None
        del body
        try:
            logits = check_finite(await state["batcher"].submit(x))
        except QueueFull:
            raise _HTTPError(503, "the server is busy; retry shortly", "queue_full", {"Retry-After": "1"}) from None
        probs = softmax(logits)
        out = [
            {"label": clf.classes[int(row.argmax())],
             "probabilities": {c: float(p) for c, p in zip(clf.classes, prob_row)},
             "logits": [float(v) for v in row]}
            for row, prob_row in zip(logits, probs)
        ]
        metrics.latency.observe(time.perf_counter() - start)
        return JSONResponse({"predictions": out})

    async def health(_: Request) -> Response:
        ready = state["ready"]
        return JSONResponse({"status": "ready" if ready else "starting"}, status_code=200 if ready else 503)

    async def info_endpoint(_: Request) -> Response:
        return Response(json.dumps(info), media_type="application/json")

    async def metrics_endpoint(_: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    routes = [
        Route("/predict", predict, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/info", info_endpoint, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    known = {r.path for r in routes}

    async def count_and_answer(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        # Every answer is counted by endpoint and status, errors included; an error is one JSON line.
        endpoint = request.url.path if request.url.path in known else "other"
        try:
            response = await call_next(request)
        except _HTTPError as e:
            metrics.errors.labels(e.reason).inc()
            response = JSONResponse({"error": str(e)}, status_code=e.status, headers=e.headers)
        except Exception as e:  # a bug: answer 500 with one line, keep serving, keep counting
            metrics.errors.labels("internal").inc()
            response = JSONResponse({"error": f"internal error ({type(e).__name__})"}, status_code=500)
        else:
            if response.status_code >= 400:  # answered by the router: no such endpoint or method
                metrics.errors.labels(f"http_{response.status_code}").inc()
        metrics.requests.labels(endpoint, str(response.status_code)).inc()
        return response

    return Starlette(routes=routes, lifespan=lifespan,
                     middleware=[Middleware(BaseHTTPMiddleware, dispatch=count_and_answer)])
