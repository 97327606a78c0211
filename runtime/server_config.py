"""What a server is configured with and counts, and what its protocol front ends use of it.

`InferenceHost` is the part of `runtime.server.InferenceServer` that the gRPC service
(`runtime.v2_grpc`) calls: it names no server class, so the service and the server each depend
on this module, not on each other.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram

from mwt.core.images import InputLimits
from runtime.batching import BatchingConfig
from runtime.v2_protocol import OutputTensor, RequestedOutput, ServedModel


@dataclass(frozen=True)
class TLSFiles:
    """A PEM certificate (chain) and its private key, for REST and gRPC alike."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class ServerConfig:
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    max_body_bytes: int = 8 << 20
    limits: InputLimits = field(default_factory=lambda: InputLimits(max_pixels=4096 * 4096, max_samples=1024))
    body_timeout_s: float = 10.0  # a client must send its whole body within this
    decode_threads: int = 2
    token: str | None = None  # bearer token for /predict and infer; None: open
    header_timeout_s: float = 10.0  # a connection must send each request's head within this
    keepalive_s: float = 5.0  # an idle keep-alive connection is closed after this
    max_connections: int = 1024  # connections beyond it are closed as they arrive
    tls: TLSFiles | None = None


class ServerMetrics:
    """The Prometheus counters and histograms /metrics exposes, REST and gRPC alike."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("mwt_requests", "Requests by endpoint and status", ["endpoint", "status"],
                                registry=self.registry)
        self.errors = Counter("mwt_errors", "Requests answered with an error, by reason", ["reason"],
                              registry=self.registry)
        self.latency = Histogram("mwt_request_seconds", "Time to answer /predict and infer", ["endpoint"],
                                 registry=self.registry,
                                 buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
        self.batch = Histogram("mwt_batch_size", "Samples per onnxruntime call", registry=self.registry,
                               buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))


class InferenceHost(Protocol):
    """What a protocol front end needs of the server: its models, settings, counters, token check,
    request accounting and inference, and hooks run at its start and stop."""

    models: dict[str, ServedModel]
    config: ServerConfig
    metrics: ServerMetrics
    ready: bool
    on_start: list[Callable[[], Any]]
    on_stop: list[Callable[[], Any]]

    def authorized(self, header: bytes | None) -> bool: ...

    def arriving(self, model: ServedModel) -> AbstractContextManager[None]: ...

    async def infer(self, model: ServedModel, x: np.ndarray, requested: list[RequestedOutput]
                    ) -> list[OutputTensor]: ...
