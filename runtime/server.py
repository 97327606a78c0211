"""HTTP inference server for a composed classifier (Starlette app, run by uvicorn).

POST /predict   one image (PNG/JPEG/... body) or a batch (.npy body) -> labels, probabilities, logits
GET  /health    200 once the session is loaded and a warm-up run passed, else 503
GET  /info      classes, input spec, source checkpoint hash, KRR and FLOPs from the metadata
GET  /metrics   Prometheus text format: requests, errors, latency histogram, batch sizes
"""

from __future__ import annotations

import io
import json
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mwt.errors import MwtError
from runtime.batching import Batcher, BatchingConfig, QueueFull
from runtime.composed import ComposedClassifier, softmax
from runtime.images import decode_image

NPY_MAGIC = b"\x93NUMPY"


@dataclass(frozen=True)
class ServerConfig:
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    max_body_bytes: int = 8 << 20


class _Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("mwt_requests", "HTTP requests", ["endpoint", "status"], registry=self.registry)
        self.errors = Counter("mwt_errors", "Requests answered with an error", ["reason"], registry=self.registry)
        self.latency = Histogram("mwt_request_seconds", "Time to answer /predict", registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
        self.batch = Histogram("mwt_batch_size", "Samples per onnxruntime call", registry=self.registry,
                               buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))


def _error(status: int, message: str, metrics: _Metrics, reason: str, headers: dict[str, str] | None = None) -> Response:
    metrics.errors.labels(reason).inc()
    metrics.requests.labels("/predict", str(status)).inc()
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def decode_body(body: bytes, content_type: str, clf: ComposedClassifier) -> np.ndarray:
    """A request body as a prepared float32 batch: a .npy array, or one encoded image."""
    if not body:
        raise MwtError("the request body is empty; send an image or a .npy array")
    if body.startswith(NPY_MAGIC) or "npy" in content_type:
        try:
            array = np.load(io.BytesIO(body), allow_pickle=False)
        except (ValueError, OSError) as e:
            raise MwtError(f"the body is not a readable .npy array ({e})") from None
    else:
        array = decode_image(body, clf.input_shape, "the request body")
    return clf.prepare(array)


def create_app(clf: ComposedClassifier, config: ServerConfig = ServerConfig()) -> Starlette:
    """The Starlette app serving `clf`; the batcher and the warm-up run start with the app."""
    metrics = _Metrics()
    state: dict[str, Any] = {"ready": False}
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
        "batching": config.batching.__dict__,
    }

    @asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        batcher = Batcher(clf.logits, config.batching, on_batch=lambda n: metrics.batch.observe(n))
        batcher.start()
        state["batcher"] = batcher
        await batcher.submit(np.zeros((1, *clf.input_shape), np.float32))  # warm-up through the real path
        state["ready"] = True
        yield
        state["ready"] = False
        await batcher.stop()

    async def predict(request: Request) -> Response:
        start = time.perf_counter()
        chunks: list[bytes] = []
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received <= config.max_body_bytes:
                chunks.append(chunk)
            elif received > 16 * config.max_body_bytes:
                break  # far too large: stop reading; the connection closes after the answer
        if received > config.max_body_bytes:
            # An oversized body is read and dropped (up to a cap) so the client, still sending,
            # gets this answer instead of a broken pipe.
            return _error(413, f"the body is over {config.max_body_bytes} bytes", metrics, "too_large")
        body = b"".join(chunks)
        try:
            x = decode_body(body, request.headers.get("content-type", ""), clf)
        except MwtError as e:
            return _error(400, str(e), metrics, "bad_input")
        try:
            logits = await state["batcher"].submit(x)
        except QueueFull:
            return _error(503, "the server is busy; retry shortly", metrics, "queue_full", {"Retry-After": "1"})
        probs = softmax(logits)
        out = [
            {"label": clf.classes[int(row.argmax())],
             "probabilities": {c: float(p) for c, p in zip(clf.classes, prob_row)},
             "logits": [float(v) for v in row]}
            for row, prob_row in zip(logits, probs)
        ]
        metrics.latency.observe(time.perf_counter() - start)
        metrics.requests.labels("/predict", "200").inc()
        return JSONResponse({"predictions": out})

    async def health(_: Request) -> Response:
        ready = state["ready"]
        metrics.requests.labels("/health", "200" if ready else "503").inc()
        return JSONResponse({"status": "ready" if ready else "starting"}, status_code=200 if ready else 503)

    async def info_endpoint(_: Request) -> Response:
        metrics.requests.labels("/info", "200").inc()
        return Response(json.dumps(info), media_type="application/json")

    async def metrics_endpoint(_: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    routes = [
        Route("/predict", predict, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/info", info_endpoint, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
