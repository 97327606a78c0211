"""HTTP (and gRPC) inference server for mwt modules: Starlette endpoints run by uvicorn.

mwt's own endpoints:

    POST /predict   one image (PNG/JPEG/... body) or a batch (.npy body) -> labels, probabilities, logits
    GET  /health    200 once the sessions are loaded and a warm-up run passed, else 503
    GET  /info      classes, input spec, source checkpoint hash, KRR and FLOPs from the metadata
    GET  /metrics   Prometheus text format: requests by endpoint and status, errors, latency, batch sizes

and the Open Inference Protocol (KServe v2, see `runtime.v2_protocol`), with the binary tensor
data and classification extensions, over REST here and over gRPC (`runtime.v2_grpc`):

    GET  /v2, /v2/health/live, /v2/health/ready, /v2/models/{name}[/versions/{v}][/ready]
    POST /v2/models/{name}[/versions/{v}]/infer

Bad input gets a 4xx with a one-line JSON `{"error": ...}` and the server keeps serving: the
body is bounded in bytes and in the time a client may take to send it, decoded images in pixels,
requests in samples, pixel values to the input's range; images and large arrays are decoded in
worker threads, never on the event loop, and no onnxruntime call is larger than the batching
limit. Connections are bounded too: a connection cap, a deadline for each request's head, and
an idle keep-alive timeout (see `guarded_protocol`). With a token, /predict and infer need
`Authorization: Bearer <token>`; health, metadata, /info and /metrics stay open.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import hmac
import json
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mwt.core.errors import MwtError
from mwt.core.images import InputLimits, TooLarge, decode_image, read_npy
from runtime.batching import Batcher, QueueFull, TooManySamples
from runtime.composed import ComposedClassifier, softmax
from runtime.module_file import ModuleFile
from runtime.server_config import ServerConfig, ServerMetrics
from runtime.v2_protocol import (
    OutputTensor,
    RequestedOutput,
    ServedModel,
    V2Error,
    answer,
    find_model,
    models_for,
    ready_model,
    requested_outputs,
    server_metadata,
)
from runtime.v2_rest import HEADER_LENGTH, parse_infer, encode_infer

NPY_MAGIC = b"\x93NUMPY"


# A .npy body this small is read on the event loop: parsing it is a header check and a copy, and
# the hand-off to a decoding thread cost more (0.35 ms of a 2.4 ms request, measured). The same
# holds for a v2 body: JSON of one 28x28 image parses in about 0.1 ms.
INLINE_BYTES = 64 * 1024


def is_npy(body: bytes | bytearray, content_type: str) -> bool:
    """Whether a request body is a .npy array (by its magic bytes or its declared type)."""
    return body.startswith(NPY_MAGIC) or "npy" in content_type


def decode_body(body: bytes | bytearray, content_type: str, clf: ComposedClassifier, limits: InputLimits) -> np.ndarray:
    """A request body as a prepared float32 batch: a .npy array, or one encoded image, in range."""
    if not body:
        raise MwtError("the request body is empty; send an image or a .npy array")
    if is_npy(body, content_type):
        array = read_npy(body, clf.input_spec, "the body", limits)
    else:
        array = decode_image(body, clf.input_spec, "the request body", limits)
    return clf.prepare(array)  # in range, or MwtError


def _heap_trimmer() -> Callable[[], object] | None:
    """glibc's malloc_trim, or None elsewhere: hands the heaps' free pages back after heavy traffic."""
    try:
        trim = getattr(ctypes.CDLL("libc.so.6"), "malloc_trim", None)
    except OSError:  # not glibc: nothing to tune
        return None
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


def read_token(path: Path) -> str:
    """The bearer token in a file (surrounding whitespace dropped); MwtError when unusable."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise MwtError(f"cannot read the token file {path}: {getattr(e, 'strerror', None) or type(e).__name__}") from None
    if not token or not token.isascii() or not token.isprintable() or " " in token:
        raise MwtError(f"the token file {path} must hold one token of printable ASCII without spaces")
    return token


def _endpoint(path: str) -> str:
    """The metrics label of a path: fixed paths as they are, model paths by their template."""
    if path in _FIXED_PATHS:
        return path
    if path.startswith("/v2/models/"):
        tail = path.rsplit("/", 1)[-1]
        return f"/v2/models/{{name}}/{tail}" if tail in ("infer", "ready") else "/v2/models/{name}"
    return "other"


_FIXED_PATHS = {"/predict", "/health", "/info", "/metrics", "/v2", "/v2/health/live", "/v2/health/ready",
                "/v2/models"}


class _Guard:
    """Pure ASGI middleware around the whole app (Starlette's BaseHTTPMiddleware ran every request
    through a task group and memory streams: most of the per-request overhead at one client).

    It counts every answer by endpoint and status, answers a bug with one JSON line (500) instead
    of a traceback, and refuses a request that has both Content-Length and Transfer-Encoding with
    400 and `Connection: close` (RFC 9112 §6.1: such a request may be a smuggling attempt)."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = False

        async def counting_send(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
            await send(message)

        names = {k for k, _ in scope["headers"]}
        try:
            if b"content-length" in names and b"transfer-encoding" in names:
                self.metrics.errors.labels("framing").inc()
                await JSONResponse({"error": "the request has both Content-Length and Transfer-Encoding"},
                                   status_code=400, headers={"Connection": "close"})(scope, receive, counting_send)
            else:
                await self.app(scope, receive, counting_send)
        except Exception as e:  # a bug: answer 500 with one line, keep serving, keep counting
            self.metrics.errors.labels("internal").inc()
            if not started:
                await JSONResponse({"error": f"internal error ({type(e).__name__})"},
                                   status_code=500)(scope, receive, counting_send)
        self.metrics.requests.labels(_endpoint(scope["path"]), str(status)).inc()


class InferenceServer:
    """The models, their batchers and the endpoints; `app` is the ASGI app to run.

    `models` are the v2 models by name; `default` is the one /predict, /info and /health serve
    (the composition when several modules are served). Batchers start with the app's lifespan,
    each after a warm-up run through the real path; the gRPC service, when started, shares them."""

    def __init__(self, models: dict[str, ServedModel], default: str, config: ServerConfig = ServerConfig()) -> None:
        self.models = models
        self.default = models[default]
        self.config = config
        self.metrics = ServerMetrics()
        self.ready = False
        self.decoder = ThreadPoolExecutor(config.decode_threads, thread_name_prefix="mwt-decode")
        self.heavy_bytes = 0  # body bytes handled since memory was last handed back
        self._token = config.token.encode() if config.token is not None else None
        self._trim = _heap_trimmer()
        self.on_start: list[Callable[[], Any]] = []  # awaitables run once the batchers are ready (gRPC)
        self.on_stop: list[Callable[[], Any]] = []
        self.info = self._info()
        self.app: ASGIApp = _Guard(self._starlette(), self.metrics)

    @classmethod
    def for_classifier(cls, clf: ComposedClassifier, config: ServerConfig = ServerConfig()) -> InferenceServer:
        """A server for one classifier (a module, a composed file, or modules composed in memory)."""
        models = models_for([clf], None) if len(clf.modules) == 1 else models_for([], clf)
        return cls(models, next(iter(models)), config)

    @classmethod
    def from_modules(cls, modules: Sequence[ModuleFile], config: ServerConfig = ServerConfig(),
                     **clf_options: Any) -> InferenceServer:
        """Each module as a model and, for several, their composition (the model /predict serves)."""
        parts = [ComposedClassifier([m], **clf_options) for m in modules]
        composition = ComposedClassifier(list(modules), **clf_options) if len(modules) > 1 else None
        models = models_for(parts, composition)
        return cls(models, list(models)[-1], config)

    def _info(self) -> dict[str, Any]:
        clf = self.default.clf
        first = clf.modules[0].meta
        config = self.config
        return {
            "classes": clf.classes,
            "input": first.input.to_dict(),
            "source_sha256": sorted({m.source for m in clf.modules}),
            "krr": first.krr if len(clf.modules) == 1 else None,
            "flops": clf.flops,
            "full_flops": first.full_flops,
            "plain_flops": first.plain_flops,
            "modules": [{"classes": m.classes, "krr": m.meta.krr, "flops": m.flops, "precision": m.meta.precision.value}
                        for m in clf.modules],
            "models": list(self.models),
            "providers": clf.providers,
            "batching": asdict(config.batching),
            "limits": {**asdict(config.limits), "max_body_bytes": config.max_body_bytes,
                       "body_timeout_s": config.body_timeout_s},
            "auth": "bearer" if config.token is not None else None,
        }

    # --- lifecycle --------------------------------------------------------------------------

    @asynccontextmanager
    async def lifespan(self, _: Starlette):  # type: ignore[no-untyped-def]
        for model in self.models.values():
            batcher = Batcher(model.clf.logits, self.config.batching, on_batch=self.metrics.batch.observe,
                              arriving=lambda model=model: model.arriving)
            batcher.start()
            await batcher.submit(np.zeros((1, *model.clf.input_shape), np.float32))  # warm-up through the real path
            model.batcher = batcher
        for start in self.on_start:
            await start()
        trimmer = asyncio.get_running_loop().create_task(self._trim_heap())
        self.ready = True
        yield
        self.ready = False
        for stop in self.on_stop:
            await stop()
        trimmer.cancel()
        for model in self.models.values():
            if model.batcher is not None:
                await model.batcher.stop()
                model.batcher = None
        self.decoder.shutdown(wait=False, cancel_futures=True)

    async def _trim_heap(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self.heavy_bytes > 1 << 20:
                self.heavy_bytes = 0
                # Failed requests leave their bodies in reference cycles (exception -> traceback ->
                # frame -> body) that only a full collection frees; then the heap can shrink.
                gc.collect()
                if self._trim is not None:
                    await asyncio.get_running_loop().run_in_executor(self.decoder, self._trim)

    # --- shared by REST and gRPC --------------------------------------------------------------

    def authorized(self, header: bytes | None) -> bool:
        """Whether an Authorization header carries the token (always, when none is set).
        Compared in constant time; a missing, malformed or wrong header is refused alike."""
        if self._token is None:
            return True
        scheme, _, given = (header or b"").partition(b" ")
        return hmac.compare_digest(given.strip(), self._token) and scheme.lower() == b"bearer"

    @contextmanager
    def arriving(self, model: ServedModel) -> Iterator[None]:
        """Mark a request for `model` as on its way to the batcher while it is read and checked."""
        model.arriving += 1
        try:
            yield
        finally:
            model.arriving -= 1

    async def run(self, model: ServedModel, x: np.ndarray) -> np.ndarray:
        """The model's logits for a prepared batch, through its batcher."""
        if model.batcher is None:
            raise V2Error(503, f"model '{model.name}' is not ready", "not_ready")
        try:
            logits = await model.batcher.submit(x)
        except QueueFull:
            raise V2Error(503, "the server is busy; retry shortly", "queue_full", {"Retry-After": "1"}) from None
        except TooManySamples as e:  # no retry would ever fit: 413, as for --max-samples
            batching = self.config.batching
            raise V2Error(413, f"the request holds {e.samples} samples, over the limit of {e.limit} "
                               f"(--max-batch {batching.max_batch} x --queue-size {batching.queue_size})",
                          "too_large") from None
        except MwtError as e:  # onnxruntime failed on a checked input: the model is damaged
            raise V2Error(500, str(e), "model") from None
        if not np.isfinite(logits).all():
            raise V2Error(500, "the model produced NaN or infinite logits on input in its range; its weights are "
                               "damaged", "model")
        return logits

    async def infer(self, model: ServedModel, x: np.ndarray, requested: list[RequestedOutput]) -> list[OutputTensor]:
        """The v2 output tensors for a checked request."""
        return answer(model, await self.run(model, x), requested)

    # --- REST ------------------------------------------------------------------------------

    def _require_token(self, request: Request) -> None:
        if not self.authorized(request.headers.get("authorization", "").encode("latin-1")):
            raise V2Error(401, "this endpoint needs 'Authorization: Bearer <token>'", "unauthorized",
                          {"WWW-Authenticate": "Bearer"})

    async def _read_body(self, request: Request) -> bytes | bytearray:
        limit = self.config.max_body_bytes
        declared = request.headers.get("content-length", "")
        length = int(declared) if declared.isdigit() else None
        # A body of known size goes straight into one buffer of that size (a large one is its own
        # mapping, handed back whole when freed); a body declared too large is drained unkept.
        buffer = bytearray(length) if length is not None and length <= limit else None
        keep = length is None or buffer is not None
        chunks: list[bytes] = []
        received = 0

        async def read() -> None:
            nonlocal received
            async for chunk in request.stream():
                end = received + len(chunk)
                if buffer is not None and end <= len(buffer):
                    buffer[received:end] = chunk
                elif keep and buffer is None and end <= limit:
                    chunks.append(chunk)
                received = end
                if received > 16 * limit:
                    break  # far too large: stop reading; the connection closes after the answer

        try:
            await asyncio.wait_for(read(), self.config.body_timeout_s)
        except asyncio.TimeoutError:
            raise V2Error(408, f"the body did not arrive within {self.config.body_timeout_s:g} s", "timeout") from None
        finally:
            self.heavy_bytes += received if received > INLINE_BYTES else 0
        if received > limit or (buffer is not None and received != len(buffer)):
            if received <= limit:
                raise V2Error(400, f"the body has {received} bytes but its Content-Length says {len(buffer)}")
            # An oversized body is read and dropped (up to a cap) so the client, still sending,
            # gets this answer instead of a broken pipe.
            raise V2Error(413, f"the body is over {limit} bytes", "too_large")
        return buffer if buffer is not None else b"".join(chunks)

    async def predict(self, request: Request) -> Response:
        start = time.perf_counter()
        self._require_token(request)
        with self.arriving(self.default):
            x = await self._predict_input(request)
        logits = await self.run(self.default, x)
        clf = self.default.clf
        probs = softmax(logits)
        out = [
            {"label": clf.classes[int(row.argmax())],
             "probabilities": {c: float(p) for c, p in zip(clf.classes, prob_row)},
             "logits": [float(v) for v in row]}
            for row, prob_row in zip(logits, probs)
        ]
        self.metrics.latency.labels("/predict").observe(time.perf_counter() - start)
        return JSONResponse({"predictions": out})

    async def _predict_input(self, request: Request) -> np.ndarray:
        body = await self._read_body(request)
        content_type = request.headers.get("content-type", "")
        clf, limits = self.default.clf, self.config.limits
        try:
            if len(body) <= INLINE_BYTES and is_npy(body, content_type):
                x = decode_body(body, content_type, clf, limits)  # a copy: cheaper than a thread hop
            else:  # images (decompression) and large arrays: off the event loop
                x = await asyncio.get_running_loop().run_in_executor(self.decoder, decode_body, body, content_type,
                                                                     clf, limits)
        except TooLarge as e:
            raise V2Error(413, str(e), "too_large") from None
        except MwtError as e:
            raise V2Error(400, str(e)) from None
        return x

    async def v2_infer(self, request: Request) -> Response:
        start = time.perf_counter()
        model = ready_model(self.models, request.path_params["name"], request.path_params.get("version", ""))
        self._require_token(request)
        with self.arriving(model):
            body = await self._read_body(request)
            header_length = request.headers.get(HEADER_LENGTH)
            max_samples = self.config.limits.max_samples
            if len(body) <= INLINE_BYTES:
                parsed = parse_infer(body, header_length, model, max_samples)
            else:
                parsed = await asyncio.get_running_loop().run_in_executor(self.decoder, parse_infer, body,
                                                                          header_length, model, max_samples)
            del body
        requested = requested_outputs(model, parsed.outputs, parsed.binary_output)
        tensors = await self.infer(model, parsed.x, requested)
        content, headers = encode_infer(model, parsed.id, tensors)
        self.metrics.latency.labels("/v2/models/{name}/infer").observe(time.perf_counter() - start)
        return Response(content, headers=headers)

    async def health(self, _: Request) -> Response:
        return JSONResponse({"status": "ready" if self.ready else "starting"}, status_code=200 if self.ready else 503)

    async def info_endpoint(self, _: Request) -> Response:
        return Response(json.dumps(self.info), media_type="application/json")

    async def metrics_endpoint(self, _: Request) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def v2_server(self, _: Request) -> Response:
        return JSONResponse(server_metadata())

    async def v2_live(self, _: Request) -> Response:
        return JSONResponse({"live": True})

    async def v2_ready(self, _: Request) -> Response:
        return JSONResponse({"ready": self.ready}, status_code=200 if self.ready else 503)

    async def v2_models(self, _: Request) -> Response:
        return JSONResponse({"models": list(self.models)})

    async def v2_model(self, request: Request) -> Response:
        model = find_model(self.models, request.path_params["name"], request.path_params.get("version", ""))
        return JSONResponse(model.metadata())

    async def v2_model_ready(self, request: Request) -> Response:
        model = find_model(self.models, request.path_params["name"], request.path_params.get("version", ""))
        return JSONResponse({"name": model.name, "ready": model.ready}, status_code=200 if model.ready else 503)

    async def _error(self, _: Request, exc: Exception) -> Response:
        # Our errors and the router's (404 no such path, 405 wrong method) as one JSON line each.
        if isinstance(exc, V2Error):
            status, message, reason, headers = exc.status, str(exc), exc.reason, exc.headers
        else:
            assert isinstance(exc, HTTPException)
            status, message, reason, headers = exc.status_code, exc.detail, f"http_{exc.status_code}", exc.headers
        self.metrics.errors.labels(reason).inc()
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    async def _internal(self, _: Request, exc: Exception) -> Response:
        # A bug. Starlette's outermost middleware answers it (in plain text, without this handler)
        # before _Guard sees it; then it re-raises it to _Guard, which counts it.
        return JSONResponse({"error": f"internal error ({type(exc).__name__})"}, status_code=500)

    def _starlette(self) -> Starlette:
        models = "/v2/models/{name}"
        versioned = "/v2/models/{name}/versions/{version}"
        routes = [
            Route("/predict", self.predict, methods=["POST"]),
            Route("/health", self.health, methods=["GET"]),
            Route("/info", self.info_endpoint, methods=["GET"]),
            Route("/metrics", self.metrics_endpoint, methods=["GET"]),
            Route("/v2", self.v2_server, methods=["GET"]),
            Route("/v2/health/live", self.v2_live, methods=["GET"]),
            Route("/v2/health/ready", self.v2_ready, methods=["GET"]),
            Route("/v2/models", self.v2_models, methods=["GET"]),
            *[r for base in (models, versioned) for r in (
                Route(base, self.v2_model, methods=["GET"]),
                Route(base + "/ready", self.v2_model_ready, methods=["GET"]),
                Route(base + "/infer", self.v2_infer, methods=["POST"]),
            )],
        ]
        return Starlette(routes=routes, lifespan=self.lifespan,
                         exception_handlers={V2Error: self._error, HTTPException: self._error,
                                             Exception: self._internal})


def create_app(clf: ComposedClassifier, config: ServerConfig = ServerConfig()) -> ASGIApp:
    """The ASGI app serving one classifier (see `InferenceServer.for_classifier`)."""
    return InferenceServer.for_classifier(clf, config).app


def guarded_protocol(config: ServerConfig) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (httptools when installed, else h11) with the connection bounds it
    lacks: uvicorn closes idle keep-alive connections, but never one that opens and sends nothing,
    or sends half a request head (about 20,000 of those exhausted the file limit).

    - beyond `max_connections` open connections, a new one is closed at once;
    - a connection must send each request's head within `header_timeout_s` of the first byte
      (of connecting, for the first request), or it is closed; bodies have `body_timeout_s`."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
    except ImportError:  # httptools is optional: uvicorn's pure-Python parser
        from uvicorn.protocols.http.h11_impl import H11Protocol as base  # type: ignore[assignment]

    class GuardedProtocol(base):  # type: ignore[valid-type,misc]
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > config.max_connections:
                transport.close()
                return
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._awaiting_head():
                if self._head_timer is None:
                    self._arm()
            elif self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def connection_lost(self, exc: Exception | None) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            super().connection_lost(exc)

        def send_400_response(self, msg: str) -> None:
            # The parser refused the request (bad framing, Content-Length with Transfer-Encoding):
            # the protocol's JSON error, as every other answer, then close (uvicorn's is plain text).
            body = json.dumps({"error": f"{msg.rstrip('.')}: the request's framing or headers are malformed"}).encode()
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
                                 b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body))
            self.transport.close()

        def _awaiting_head(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def _arm(self) -> None:
            self._head_timer = asyncio.get_running_loop().call_later(config.header_timeout_s, self._head_timeout)

        def _head_timeout(self) -> None:
            self._head_timer = None
            if self._awaiting_head() and not self.transport.is_closing():
                self.transport.close()

    return GuardedProtocol


def serve(server: InferenceServer, sock: socket.socket, grpc_address: str | None = None,
          graceful_s: float = 30.0) -> None:
    """Run the server on a listening socket until SIGINT/SIGTERM; gRPC too, on `grpc_address`."""
    import uvicorn

    config = server.config
    if grpc_address is not None:
        from runtime.v2_grpc import attach_grpc  # only here: its stubs clash with tritonclient's in one process

        attach_grpc(server, grpc_address)
    tls = config.tls
    uv = uvicorn.Config(server.app, log_level="warning", timeout_graceful_shutdown=graceful_s,
                        http=guarded_protocol(config), timeout_keep_alive=config.keepalive_s,  # type: ignore[arg-type]
                        ssl_certfile=str(tls.cert) if tls else None, ssl_keyfile=str(tls.key) if tls else None)
    uvicorn.Server(uv).run(sockets=[sock])
