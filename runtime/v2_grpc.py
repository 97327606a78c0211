"""Open Inference Protocol over gRPC (`inference.GRPCInferenceService`), on grpcio's asyncio server.

It runs on the REST server's event loop and shares its models, batchers, limits, token, metrics
and shutdown: `attach_grpc` hooks it into the server's lifespan (an `InferenceHost`). Implemented: ServerLive,
ServerReady, ModelReady, ServerMetadata, ModelMetadata and ModelInfer (raw_input_contents or
typed contents in; raw_output_contents out, as Triton answers); the repository RPCs answer
UNIMPLEMENTED. A message over `--max-body-mb` is refused by grpcio with RESOURCE_EXHAUSTED.

Import this module only in the serving process: its stubs define the `inference.*` protobuf
messages, and tritonclient's gRPC stubs define the same names in the same default descriptor
pool, so one process cannot import both (protobuf refuses a duplicate symbol).
"""

from __future__ import annotations

import time

import grpc
import numpy as np

from runtime.server_config import InferenceHost
from runtime.v2 import grpc_predict_v2_pb2 as pb
from runtime.v2 import grpc_predict_v2_pb2_grpc as pb_grpc
from runtime.v2_protocol import (
    INPUT_DTYPES,
    RequestedOutput,
    V2Error,
    check_input_head,
    find_model,
    prepare_input,
    ready_model,
    requested_outputs,
    server_metadata,
)

_CODES = {400: grpc.StatusCode.INVALID_ARGUMENT, 401: grpc.StatusCode.UNAUTHENTICATED,
          404: grpc.StatusCode.NOT_FOUND, 408: grpc.StatusCode.DEADLINE_EXCEEDED,
          413: grpc.StatusCode.RESOURCE_EXHAUSTED, 500: grpc.StatusCode.INTERNAL,
          503: grpc.StatusCode.UNAVAILABLE}
# Typed `contents` fields by input datatype (UINT8 travels in uint_contents, as the proto says).
_CONTENTS = {"FP32": "fp32_contents", "UINT8": "uint_contents"}


def _decode_input(server: InferenceHost, request: pb.ModelInferRequest) -> tuple[np.ndarray, list[RequestedOutput]]:
    model = ready_model(server.models, request.model_name, request.model_version)
    if len(request.inputs) != 1:
        raise V2Error(400, f"model '{model.name}' takes one input, '{model.input.name}'")
    tensor = request.inputs[0]
    shape = list(tensor.shape)
    count = check_input_head(model, tensor.name, tensor.datatype, shape, server.config.limits.max_samples)
    dtype = INPUT_DTYPES[tensor.datatype]
    if request.raw_input_contents:
        if tensor.HasField("contents"):  # two sources of data for one input: refused, as Triton does
            raise V2Error(400, f"input '{tensor.name}' has both raw_input_contents and typed contents; send one")
        if len(request.raw_input_contents) != 1:
            raise V2Error(400, f"{len(request.raw_input_contents)} raw_input_contents for one input")
        raw = request.raw_input_contents[0]
        if len(raw) != count * dtype.itemsize:
            raise V2Error(400, f"input '{tensor.name}' has {len(raw)} bytes of {tensor.datatype}; "
                               f"its shape needs {count * dtype.itemsize}")
        values = np.frombuffer(raw, dtype=dtype)
    else:
        typed = getattr(tensor.contents, _CONTENTS[tensor.datatype])
        if len(typed) != count:
            raise V2Error(400, f"input '{tensor.name}' has {len(typed)} values in contents; its shape needs {count}")
        values = np.asarray(typed, dtype=np.float32 if tensor.datatype == "FP32" else np.int64)
        if tensor.datatype == "UINT8":
            if values.size and (values.min() < 0 or values.max() > 255):
                raise V2Error(400, f"input '{tensor.name}' is UINT8 but holds values outside [0, 255]")
            values = values.astype(np.uint8)
    x = prepare_input(model, tensor.name, tensor.datatype, shape, values)
    wanted = []
    for o in request.outputs:
        k = 0
        if "classification" in o.parameters:
            param = o.parameters["classification"]
            # A bool or string parameter is refused, not read as 0, as REST refuses a non-integer.
            if param.WhichOneof("parameter_choice") != "int64_param" or param.int64_param < 0:
                raise V2Error(400, f"output '{o.name}' classification must be a non-negative integer (int64_param)")
            k = param.int64_param
        wanted.append(RequestedOutput(o.name, int(k), binary=True))
    return x, requested_outputs(model, wanted, binary=True)


class Servicer(pb_grpc.GRPCInferenceServiceServicer):
    """The v2 service over an `InferenceHost`'s models."""

    def __init__(self, server: InferenceHost) -> None:
        self.server = server

    async def _fail(self, context: grpc.aio.ServicerContext, method: str, e: V2Error) -> None:
        self.server.metrics.errors.labels(e.reason).inc()
        self._count(method, _CODES.get(e.status, grpc.StatusCode.UNKNOWN))
        await context.abort(_CODES.get(e.status, grpc.StatusCode.UNKNOWN), str(e))

    def _count(self, method: str, code: grpc.StatusCode) -> None:
        self.server.metrics.requests.labels(f"grpc/{method}", code.name).inc()

    async def ServerLive(self, request, context):  # type: ignore[no-untyped-def]
        self._count("ServerLive", grpc.StatusCode.OK)
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request, context):  # type: ignore[no-untyped-def]
        self._count("ServerReady", grpc.StatusCode.OK)
        return pb.ServerReadyResponse(ready=self.server.ready)

    async def ModelReady(self, request, context):  # type: ignore[no-untyped-def]
        # An unknown model or version is simply not ready, as REST's 404 reads to a client.
        model = self.server.models.get(request.name)
        ready = model is not None and model.ready and request.version in ("", "1")
        self._count("ModelReady", grpc.StatusCode.OK)
        return pb.ModelReadyResponse(ready=ready)

    async def ServerMetadata(self, request, context):  # type: ignore[no-untyped-def]
        self._count("ServerMetadata", grpc.StatusCode.OK)
        return pb.ServerMetadataResponse(**server_metadata())

    async def ModelMetadata(self, request, context):  # type: ignore[no-untyped-def]
        try:
            model = find_model(self.server.models, request.name, request.version)
        except V2Error as e:
            await self._fail(context, "ModelMetadata", e)
        meta = model.metadata()
        self._count("ModelMetadata", grpc.StatusCode.OK)
        return pb.ModelMetadataResponse(
            name=model.name, versions=meta["versions"], platform=meta["platform"],
            inputs=[pb.ModelMetadataResponse.TensorMetadata(**t.to_dict()) for t in [model.input]],
            outputs=[pb.ModelMetadataResponse.TensorMetadata(**t.to_dict()) for t in model.outputs])

    async def ModelInfer(self, request, context):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        server = self.server
        try:
            auth = dict(context.invocation_metadata() or ()).get("authorization")
            model = ready_model(server.models, request.model_name, request.model_version)
            if not server.authorized(auth.encode("latin-1", "replace") if isinstance(auth, str) else auth):
                raise V2Error(401, "ModelInfer needs the metadata 'authorization: Bearer <token>'", "unauthorized")
            with server.arriving(model):
                x, requested = _decode_input(server, request)
            tensors = await server.infer(model, x, requested)
        except V2Error as e:
            await self._fail(context, "ModelInfer", e)
        response = pb.ModelInferResponse(model_name=model.name, model_version="1", id=request.id)
        for t in tensors:
            response.outputs.add(name=t.name, datatype=t.datatype, shape=t.shape)
            response.raw_output_contents.append(t.raw())
        server.metrics.latency.labels("grpc/ModelInfer").observe(time.perf_counter() - start)
        self._count("ModelInfer", grpc.StatusCode.OK)
        return response


def attach_grpc(server: InferenceHost, address: str) -> None:
    """Serve gRPC on `address` (host:port) alongside `server`'s REST side, from its start to its stop."""
    limit = server.config.max_body_bytes
    options = [("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", max(limit, 4 << 20)),
               ("grpc.max_concurrent_streams", 1024)]
    holder: dict[str, grpc.aio.Server] = {}

    async def start() -> None:
        grpc_server = grpc.aio.server(options=options, maximum_concurrent_rpcs=server.config.batching.queue_size)
        pb_grpc.add_GRPCInferenceServiceServicer_to_server(Servicer(server), grpc_server)
        tls = server.config.tls
        if tls is None:
            bound = grpc_server.add_insecure_port(address)
        else:
            credentials = grpc.ssl_server_credentials([(tls.key.read_bytes(), tls.cert.read_bytes())])
            bound = grpc_server.add_secure_port(address, credentials)
        if not bound:
            raise RuntimeError(f"cannot listen for gRPC on {address}")
        await grpc_server.start()
        holder["server"] = grpc_server

    async def stop() -> None:
        if "server" in holder:
            await holder.pop("server").stop(grace=5.0)

    server.on_start.append(start)
    server.on_stop.append(stop)
