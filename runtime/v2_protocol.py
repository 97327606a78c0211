"""The Open Inference Protocol (KServe v2), transport-neutral: the models `mwt serve` offers, their
tensors, and the checks and answers that REST (`runtime.v2_rest`) and gRPC (`runtime.v2_grpc`) share.

Each model is described exactly as `mwt triton-repo` writes it for Triton, so a client sees the
same names, datatypes and shapes from `mwt serve` and from a Triton server fed that repository:

- one module file: model `model_name(module)`, input `[-1, C, H, W]` FP32, output `logits [-1, K]`;
- several module files: each of them as above, plus their composition as `triton-repo --merged`
  names and describes it: outputs `logits`, `probabilities` (FP32 `[-1, K]`) and `label` (INT64
  `[-1, 1]`, the index of the most likely class).

Class names come through the classification extension (`parameters.classification: k` on a
requested output), answered as Triton does: BYTES strings `"value:index:label"`, highest first.

Inputs are checked before anything runs: name, datatype (FP32 as the module's input spec says, or
UINT8 pixels, scaled to its range), rank and shape, element count, and values: FP32 data must be
finite and inside the input spec's range (`[0, 1]` for every mwt module); NaN, infinity or a value
outside the range is refused with 400 rather than clamped.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import onnx

from mwt import __version__
from mwt.core.errors import MwtError
from mwt.core.metadata import LABEL, LOGITS, PROBABILITIES
from runtime.batching import Batcher
from runtime.composed import ComposedClassifier, range_problem
from runtime.module_file import ModuleFile
from runtime.triton import model_name

SERVER_NAME = "mwt"
EXTENSIONS = ("binary_tensor_data", "classification")  # as Triton names them in server metadata
VERSION = "1"  # the one version `mwt triton-repo` writes (REPO/<name>/1/model.onnx)
PLATFORM = "onnxruntime_onnx"

# numpy dtypes of the datatypes an input may have; outputs are FP32, INT64 and BYTES.
INPUT_DTYPES: dict[str, np.dtype] = {"FP32": np.dtype("<f4"), "UINT8": np.dtype("u1")}
ITEMSIZE = {"FP32": 4, "FP64": 8, "FP16": 2, "BF16": 2, "INT8": 1, "INT16": 2, "INT32": 4, "INT64": 8,
            "UINT8": 1, "UINT16": 2, "UINT32": 4, "UINT64": 8, "BOOL": 1}


class V2Error(Exception):
    """A request the protocol refuses: `status` is the HTTP status (gRPC maps it to a code)."""

    def __init__(self, status: int, message: str, reason: str = "bad_input",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.reason, self.headers = status, reason, headers


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of a model's metadata: `shape` with -1 for the batch dimension."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass(frozen=True)
class RequestedOutput:
    """An output a request asks for: `classification` > 0 asks for the top-k class strings."""

    name: str
    classification: int = 0
    binary: bool = False


@dataclass
class OutputTensor:
    """One answered tensor: numbers in `array`, or BYTES strings in `strings`."""

    name: str
    datatype: str
    shape: list[int]
    array: np.ndarray | None = None
    strings: list[bytes] = field(default_factory=list)
    binary: bool = False

    def raw(self) -> bytes:
        """The tensor in the binary format both protocols use (BYTES: 4-byte little-endian length + bytes)."""
        if self.array is not None:
            return np.ascontiguousarray(self.array).tobytes()
        return b"".join(len(s).to_bytes(4, "little") + s for s in self.strings)

    def data(self) -> list[object]:
        """The tensor as JSON's flat, row-major `data` list."""
        if self.array is not None:
            return self.array.ravel().tolist()
        return [s.decode() for s in self.strings]


@dataclass
class ServedModel:
    """One v2 model: a classifier, how it is described, and its batcher (set when the server starts)."""

    name: str
    clf: ComposedClassifier
    composed: bool  # described as `triton-repo --merged` describes a composition
    batcher: Batcher | None = None
    arriving: int = 0  # requests being read and checked for this model, not yet in its batcher

    @property
    def input(self) -> TensorSpec:
        return TensorSpec(self.clf.input_spec.name, "FP32", (-1, *self.clf.input_shape))

    @property
    def outputs(self) -> list[TensorSpec]:
        k = len(self.clf.classes)
        out = [TensorSpec(LOGITS, "FP32", (-1, k))]
        if self.composed:
            out += [TensorSpec(PROBABILITIES, "FP32", (-1, k)), TensorSpec(LABEL, "INT64", (-1, 1))]
        return out

    @property
    def ready(self) -> bool:
        return self.batcher is not None

    def metadata(self) -> dict[str, object]:
        """The model metadata response."""
        return {"name": self.name, "versions": [VERSION], "platform": PLATFORM,
                "inputs": [self.input.to_dict()], "outputs": [o.to_dict() for o in self.outputs]}


def composition_name(clf: ComposedClassifier) -> str:
    """The model name `mwt triton-repo --merged` gives the composition of the classifier's modules."""
    first = clf.modules[0]
    return model_name(ModuleFile(None, onnx.ModelProto(), replace(first.meta, classes=tuple(clf.classes))))


def models_for(parts: list[ComposedClassifier], composition: ComposedClassifier | None) -> dict[str, ServedModel]:
    """The served models by name: each part, and the composition of several parts."""
    models: dict[str, ServedModel] = {}
    for clf in parts:
        name = model_name(clf.modules[0]) if len(clf.modules) == 1 else composition_name(clf)
        if name in models:
            raise MwtError(f"two module files would both be the model '{name}'")
        models[name] = ServedModel(name, clf, composed=False)
    if composition is not None:
        name = composition_name(composition)
        if name in models:
            raise MwtError(f"the composition and a module would both be the model '{name}'")
        models[name] = ServedModel(name, composition, composed=True)
    return models


def server_metadata() -> dict[str, object]:
    return {"name": SERVER_NAME, "version": __version__, "extensions": list(EXTENSIONS)}


def find_model(models: dict[str, ServedModel], name: str, version: str = "") -> ServedModel:
    """The model `name` (at `version`, when given); 404 for an unknown model or version."""
    model = models.get(name)
    if model is None:
        raise V2Error(404, f"unknown model '{name[:100]}'; this server has: {', '.join(models)}", "unknown_model")
    if version and version != VERSION:
        raise V2Error(404, f"model '{name}' has no version '{version[:20]}'; it has version {VERSION}",
                      "unknown_model")
    return model


def ready_model(models: dict[str, ServedModel], name: str, version: str = "") -> ServedModel:
    """The model for an infer request: 404 when unknown, 503 when it is not ready."""
    model = find_model(models, name, version)
    if not model.ready:
        raise V2Error(503, f"model '{name}' is not ready", "not_ready")
    return model


def check_input_head(model: ServedModel, name: str, datatype: str, shape: list[int], max_samples: int) -> int:
    """Check an input's name, datatype and shape before its data is read; the element count."""
    spec = model.input
    if name != spec.name:
        raise V2Error(400, f"model '{model.name}' has input '{spec.name}', not '{name[:100]}'")
    if datatype not in INPUT_DTYPES:
        raise V2Error(400, f"input '{name}' must be FP32 (or UINT8 pixels), not {datatype[:20]}")
    if (not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape)):
        raise V2Error(400, f"input '{name}' has a shape that is not a list of integers")
    if len(shape) != len(spec.shape):
        raise V2Error(400, f"input '{name}' must have rank {len(spec.shape)} {list(spec.shape)}, "
                           f"not rank {len(shape)}")
    if list(shape[1:]) != list(spec.shape[1:]) or shape[0] < 1:
        raise V2Error(400, f"input '{name}' must have shape {list(spec.shape)}, not {shape}")
    if shape[0] > max_samples:
        raise V2Error(413, f"input '{name}' holds {shape[0]} samples, over the limit of {max_samples}", "too_large")
    return int(np.prod(shape, dtype=np.int64))


def prepare_input(model: ServedModel, name: str, datatype: str, shape: list[int], values: np.ndarray) -> np.ndarray:
    """A checked input as the float32 batch the model runs: data in range, UINT8 scaled to it."""
    x = values.reshape(shape)
    low, high = model.clf.input_spec.range
    if datatype == "UINT8":
        return (x.astype(np.float32) * np.float32((high - low) / 255.0) + np.float32(low)).astype(np.float32)
    x = x.astype(np.float32, copy=False)
    check_range(x, low, high, f"input '{name}'")
    return np.ascontiguousarray(x)


def check_range(x: np.ndarray, low: float, high: float, label: str) -> None:
    """V2Error (400) unless every value of a float array is finite and inside [low, high]."""
    problem = range_problem(x, low, high, label)
    if problem is not None:
        raise V2Error(400, problem)


def requested_outputs(model: ServedModel, requested: list[RequestedOutput] | None, binary: bool) -> list[RequestedOutput]:
    """The outputs to answer: those requested, checked, or all of the model's."""
    names = [o.name for o in model.outputs]
    if not requested:
        return [RequestedOutput(n, 0, binary) for n in names]
    seen = set()
    for r in requested:
        if r.name not in names:
            raise V2Error(400, f"model '{model.name}' has no output '{r.name[:100]}'; it has {', '.join(names)}")
        if r.name in seen:
            raise V2Error(400, f"output '{r.name}' is requested twice")
        seen.add(r.name)
        if r.classification < 0:
            raise V2Error(400, f"output '{r.name}': classification must be a positive count")
        if r.classification and r.name == LABEL:
            raise V2Error(400, f"output '{LABEL}' holds class indices; ask for classification on '{LOGITS}'")
    return requested


def classify(values: np.ndarray, k: int, classes: list[str]) -> list[bytes]:
    """Triton's classification answer: per row the top-k `"value:index:label"`, highest first."""
    k = min(k, values.shape[1])
    top = np.argsort(-values, axis=1, kind="stable")[:, :k]
    return [f"{values[r, i]:f}:{i}:{classes[i]}".encode() for r in range(values.shape[0]) for i in top[r]]


def answer(model: ServedModel, logits: np.ndarray, requested: list[RequestedOutput]) -> list[OutputTensor]:
    """The output tensors for a batch's logits."""
    n, k = logits.shape
    out = []
    for r in requested:
        if r.name == LOGITS:
            values = logits
        elif r.name == PROBABILITIES:
            from runtime.composed import softmax

            values = softmax(logits)
        else:
            out.append(OutputTensor(LABEL, "INT64", [n, 1], logits.argmax(axis=1).astype(np.int64)[:, None],
                                    binary=r.binary))
            continue
        if r.classification:
            top = min(r.classification, k)
            out.append(OutputTensor(r.name, "BYTES", [n, top], strings=classify(values, top, model.clf.classes),
                                    binary=r.binary))
        else:
            out.append(OutputTensor(r.name, "FP32", [n, k], values.astype(np.float32, copy=False), binary=r.binary))
    return out
