"""Open Inference Protocol over REST: the JSON infer request and response, with Triton's binary
tensor data extension (`Inference-Header-Content-Length`: a JSON header, then raw tensors).

Only the codec lives here; the endpoints are `runtime.server.InferenceServer`'s.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import chain

import numpy as np

try:  # orjson parses a 28x28 image's JSON floats about 5x faster than the standard library
    from orjson import dumps as _dumps
    from orjson import loads as _loads
except ImportError:  # optional (the `serve` extra installs it): the standard library, slower
    _loads = json.loads

    def _dumps(value: object) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()

from runtime.v2_protocol import (
    INPUT_DTYPES,
    VERSION,
    OutputTensor,
    RequestedOutput,
    ServedModel,
    V2Error,
    check_input_head,
    prepare_input,
)

HEADER_LENGTH = "inference-header-content-length"


@dataclass
class InferRequest:
    """A checked infer request: the prepared float32 batch and what to answer."""

    id: str | None
    x: np.ndarray
    outputs: list[RequestedOutput] | None
    binary_output: bool  # the request-level default for outputs that do not say


def _header(body: bytes | bytearray, header_length: str | None) -> tuple[dict, memoryview]:
    """The JSON header and the binary part after it."""
    view = memoryview(body)
    if header_length is None:
        split = len(body)
    else:
        if not (header_length.isascii() and header_length.isdigit()):  # isdigit() alone takes "²", int() not
            raise V2Error(400, "Inference-Header-Content-Length is not a byte count")
        split = int(header_length)
        if split > len(body):
            raise V2Error(400, f"Inference-Header-Content-Length says {split} bytes but the body has {len(body)}")
    try:
        header = _loads(view[:split].tobytes())
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise V2Error(400, f"the request is not JSON ({str(e)[:80]})") from None
    if not isinstance(header, dict):
        raise V2Error(400, "the request must be a JSON object with 'inputs'")
    return header, view[split:]


def _params(value: object, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise V2Error(400, f"{where} 'parameters' must be an object")
    return value


def _flag(params: dict, key: str, where: str) -> bool:
    value = params.get(key, False)
    if not isinstance(value, bool):
        raise V2Error(400, f"{where} parameter '{key}' must be true or false")
    return value


def _count(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise V2Error(400, f"{where} must be a non-negative integer")
    return value


def _flat(data: list, ndim: int) -> list:
    """The scalars of `ndim`-deep nested lists, row-major."""
    for _ in range(ndim - 1):
        data = list(chain.from_iterable(data))
    return data


def _values(data: object, datatype: str, count: int, name: str) -> np.ndarray:
    """JSON `data` (flat or nested, row-major) as an array of `count` elements."""
    if not isinstance(data, list):
        raise V2Error(400, f"input '{name}' has no 'data' list (nor binary_data_size)")
    try:
        values = np.asarray(data)  # no dtype: a float64 one would parse strings ("0.5") and booleans
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise V2Error(400, f"input '{name}' data are not all numbers in a regular array") from None
    # The protocol's JSON data for FP32 and UINT8 are numbers. Booleans among numbers hide in an
    # int or float array (numpy promotes them), so look at the elements' types too: C-speed.
    if values.dtype.kind not in "iuf" or bool in set(map(type, _flat(data, values.ndim))):
        raise V2Error(400, f"input '{name}' data are not all numbers (as {datatype} needs; strings, booleans and "
                           "null are not)")
    values = values.astype(np.float64, copy=False)
    if values.size != count:
        raise V2Error(400, f"input '{name}' has {values.size} values; its shape needs {count}")
    values = values.ravel()
    if datatype == "UINT8":
        if not (np.isfinite(values).all() and (values == np.round(values)).all()
                and values.min() >= 0 and values.max() <= 255):
            raise V2Error(400, f"input '{name}' is UINT8 but holds values that are not integers in [0, 255]")
        return values.astype(np.uint8)
    with np.errstate(over="ignore"):  # beyond float32: infinite, refused by the range check
        return values.astype(np.float32)


def parse_infer(body: bytes | bytearray, header_length: str | None, model: ServedModel,
                max_samples: int) -> InferRequest:
    """Check and decode an infer request for `model`; V2Error (400/413) names what is wrong."""
    header, binary = _header(body, header_length)
    request_id = header.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise V2Error(400, "the request 'id' must be a string")
    params = _params(header.get("parameters"), "the request's")
    binary_output = _flag(params, "binary_data_output", "the request's")
    inputs = header.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise V2Error(400, f"model '{model.name}' takes one input, '{model.input.name}'; send 'inputs' with one tensor")
    tensor = inputs[0]
    name, datatype, shape = tensor.get("name"), tensor.get("datatype"), tensor.get("shape")
    if not isinstance(name, str) or not isinstance(datatype, str):
        raise V2Error(400, "an input needs a 'name' and a 'datatype' (strings)")
    count = check_input_head(model, name, datatype, shape, max_samples)  # type: ignore[arg-type]
    tparams = _params(tensor.get("parameters"), f"input '{name}'")
    if "binary_data_size" in tparams:
        size = _count(tparams["binary_data_size"], f"input '{name}' binary_data_size")
        if size != len(binary):
            raise V2Error(400, f"input '{name}' says binary_data_size {size} but {len(binary)} bytes follow the header")
        dtype = INPUT_DTYPES[datatype]
        if size != count * dtype.itemsize:
            raise V2Error(400, f"input '{name}' has {size} bytes of {datatype}; its shape needs {count * dtype.itemsize}")
        values = np.frombuffer(binary, dtype=dtype)
    else:
        if len(binary):
            raise V2Error(400, f"{len(binary)} bytes follow the JSON header but no input says binary_data_size")
        values = _values(tensor.get("data"), datatype, count, name)
    x = prepare_input(model, name, datatype, shape, values)  # type: ignore[arg-type]
    outputs = header.get("outputs")
    requested = None
    if outputs is not None:
        if not isinstance(outputs, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str)
                                                    for o in outputs):
            raise V2Error(400, "'outputs' must be a list of objects with a 'name'")
        requested = []
        for o in outputs:
            op = _params(o.get("parameters"), f"output '{o['name']}'")
            k = _count(op.get("classification", 0), f"output '{o['name']}' classification")
            binary_flag = _flag(op, "binary_data", f"output '{o['name']}'") if "binary_data" in op else binary_output
            requested.append(RequestedOutput(o["name"], k, binary_flag))
    return InferRequest(request_id, x, requested, binary_output)


def encode_infer(model: ServedModel, request_id: str | None, tensors: list[OutputTensor]) -> tuple[bytes, dict[str, str]]:
    """The response body and its extra headers: JSON, then the binary outputs in order."""
    outputs, chunks = [], []
    for t in tensors:
        entry: dict[str, object] = {"name": t.name, "datatype": t.datatype, "shape": t.shape}
        if t.binary:
            raw = t.raw()
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            entry["data"] = t.data()
        outputs.append(entry)
    response: dict[str, object] = {"model_name": model.name, "model_version": VERSION, "outputs": outputs}
    if request_id is not None:
        response["id"] = request_id
    head = _dumps(response)
    if not chunks:
        return head, {"content-type": "application/json"}
    return b"".join([head, *chunks]), {"content-type": "application/octet-stream",
                                       HEADER_LENGTH: str(len(head))}
