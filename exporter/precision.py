"""Lower-precision modules, after the compiler's passes: INT8 (static, QDQ) and FP16.

INT8 uses onnxruntime's static quantization: QDQ format (Quantize/DequantizeLinear pairs around
each op, which onnxruntime fuses into integer kernels), per-channel weight scales, unsigned 8-bit
activations and signed 8-bit weights (the pairing onnxruntime's x86 kernels run fastest),
activation ranges calibrated (min/max) on real images of the module's own classes. FP16 converts
weights and compute to half precision and keeps float32 inputs and outputs, so a caller sees no
difference in types. Both keep the module's graph inputs, outputs and metadata.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from exporter.errors import ExportError
from mwt.core.errors import first_line
from mwt.core.metadata import INPUT, ModuleMetadata, Precision

if TYPE_CHECKING:
    from mwt.data import AnySplit

CALIBRATION_SEED = 0  # of the sample of training images INT8 calibrates on


def calibration_images(train: AnySplit, count: int) -> np.ndarray:
    """`count` images of `train` (a seeded sample), float32 in [0, 1] as training saw them."""
    images = train.sample(count, seed=CALIBRATION_SEED).materialize().images
    return images.numpy().astype(np.float32) / 255.0


def lower(module: onnx.ModelProto, precision: Precision, calibration: np.ndarray | None = None) -> onnx.ModelProto:
    """A compiled module at `precision` (FP32: the module itself). INT8 needs `calibration`
    images of the module's classes (`calibration_images`); its metadata records which."""
    if precision is Precision.fp32:
        return module
    if precision is Precision.fp16:
        return convert_fp16(module)
    if precision is not Precision.int8:
        raise ExportError(f"a module cannot be lowered to {precision.value}")
    if calibration is None:
        raise ExportError("INT8 export needs calibration images")
    lowered = quantize_int8(module, calibration)
    meta = ModuleMetadata.read(lowered)
    info = {**(meta.calibration or {}), "classes": list(meta.classes), "dataset": meta.input.dataset,
            "seed": CALIBRATION_SEED}
    replace(meta, calibration=info).write(lowered)
    return lowered


class _Batches:
    """onnxruntime's CalibrationDataReader protocol over an in-memory array of images."""

    def __init__(self, images: np.ndarray, batch: int = 64) -> None:
        self._batches: Iterator[np.ndarray] = (images[i:i + batch] for i in range(0, len(images), batch))

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._batches, None)
        return None if x is None else {INPUT: np.ascontiguousarray(x, dtype=np.float32)}


def quantize_int8(model: onnx.ModelProto, calibration: np.ndarray, *, per_channel: bool = True) -> onnx.ModelProto:
    """The module with INT8 weights and activations (QDQ), ranges calibrated on `calibration`
    (N, C, H, W) float32 images in [0, 1]."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if len(calibration) == 0:
        raise ExportError("INT8 calibration needs at least one image")
    meta = ModuleMetadata.read(model)
    with tempfile.TemporaryDirectory(prefix="mwt-int8-") as work:
        src, pre, dst = Path(work) / "fp32.onnx", Path(work) / "pre.onnx", Path(work) / "int8.onnx"
        onnx.save(model, src)
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)  # folds and fuses before quantizing
        quantize_static(
            str(pre), str(dst), _Batches(calibration), quant_format=QuantFormat.QDQ, per_channel=per_channel,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=float_nodes(onnx.load(str(pre))),
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
        quantized = onnx.load(str(dst))
    quantized.producer_name = "mwt-export"
    _keep_metadata(quantized, meta, Precision.int8, {"images": int(len(calibration)), "method": "minmax",
                                                     "format": "QDQ", "per_channel": per_channel,
                                                     "activations": "uint8", "weights": "int8"})
    return quantized


def float_nodes(model: onnx.ModelProto, least: int = 8) -> list[str]:
    """Nodes that stay FP32 in an INT8 module:

    - convs reading fewer than `least` channels (the first conv reads the image; a module's early
      convs may keep only a few): integer kernels pack channels in blocks, and below a block they
      ran slower than float ones (measured: the 1-channel first conv took 10x longer in INT8);
    - the input's preprocessing before the first conv (padding, normalization), which feeds a
      float conv anyway;
    - the ReLU and pooling ops that only pass a float conv's output on: quantized, onnxruntime runs
      their uint8 pooling in NCHW layout, 6x slower than the float one (measured), so the
      quantization starts right before the first integer conv instead.
    """
    weights = {t.name: list(t.dims) for t in model.graph.initializer}
    nodes = list(model.graph.node)
    narrow = {n.name for n in nodes if n.op_type == "Conv" and len(n.input) > 1 and n.input[1] in weights
              and weights[n.input[1]][1] < least}
    first_conv = next((i for i, n in enumerate(nodes) if n.op_type == "Conv"), len(nodes))
    keep = set(narrow) | {n.name for n in nodes[:first_conv]}
    producer = {out: n.name for n in nodes for out in n.output}
    for n in nodes:  # in topological order, so a chain Relu -> MaxPool after a float conv is kept whole
        if n.op_type in ("Relu", "MaxPool") and producer.get(n.input[0]) in keep:
            keep.add(n.name)
    return [n.name for n in nodes if n.name in keep]


def convert_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """The module with float16 weights and compute, float32 inputs and outputs."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    meta = ModuleMetadata.read(model)
    try:
        half = convert_float_to_float16(model, keep_io_types=True)
    except Exception as e:  # the converter raises plain exceptions for ops it cannot handle
        raise ExportError(f"cannot convert the module to FP16: {first_line(e, 160)}") from None
    # The converter appends its input casts at the end of the node list: sort the graph again.
    half = gs.export_onnx(gs.import_onnx(half).toposort())
    half.producer_name = "mwt-export"
    _keep_metadata(half, meta, Precision.fp16, None)
    onnx.checker.check_model(half)
    return half


def _keep_metadata(model: onnx.ModelProto, meta: ModuleMetadata, precision: Precision,
                   calibration: dict | None) -> None:
    replace(meta, precision=precision, calibration=calibration).write(model)
