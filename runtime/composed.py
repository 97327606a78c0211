"""ComposedClassifier: several modules served as one multi-class classifier."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from mwt.core.errors import MwtError, MwtWarning, first_line
from runtime.merge import merge_modules
from mwt.core.metadata import LOGITS
from runtime.module_file import ModuleFile, logits_mismatch, read_module
from runtime.session import SessionSettings, make_session
from runtime.sliced import SlicedSession


class Composition(str, Enum):
    """How composed modules run."""

    merged = "merged"  # one ONNX graph holding every module behind one input
    sessions = "sessions"  # one onnxruntime session per module, in turn
    sessions_parallel = "sessions-parallel"  # one session per module, in a thread pool


class MixedSourcesWarning(MwtWarning):
    """Modules from different checkpoints were composed: their logits are not on one scale."""


def range_problem(x: np.ndarray, low: float, high: float, label: str) -> str | None:
    """What is wrong with a float batch's values (NaN, infinity, outside [low, high]), or None: the
    one rule for inputs, whichever caller (predict, the server's endpoints) reports it."""
    lo, hi = float(x.min()), float(x.max())  # NaN propagates into both
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{label} holds NaN or infinite values"
    if lo < low or hi > high:
        return f"{label} holds values from {lo:.6g} to {hi:.6g}, outside the model's input range [{low:g}, {high:g}]"
    return None


@dataclass
class Prediction:
    """What `predict` returns for a batch of N images over K classes."""

    logits: np.ndarray  # (N, K) float32
    probabilities: np.ndarray  # (N, K) float32, softmax over the composed logits
    indices: np.ndarray  # (N,) int64
    classes: list[str]  # the K class names, in column order

    @property
    def labels(self) -> list[str]:
        return [self.classes[i] for i in self.indices]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, float32, stable for large logits."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)


def check_compatible(modules: Sequence[ModuleFile], allow_mixed_sources: bool = False) -> None:
    """Raise MwtError unless the modules can be composed: same input spec, disjoint classes, one source."""
    if not modules:
        raise MwtError("no modules given")
    first = modules[0]
    for m in modules[1:]:
        a, b = m.input, first.input
        if (a.shape, a.range, a.dtype) != (b.shape, b.range, b.dtype):
            raise MwtError(
                f"{m.name} takes input {list(a.shape)} {a.dtype} in {list(a.range)} "
                f"but {first.name} takes {list(b.shape)} {b.dtype} in {list(b.range)}"
            )
    seen: dict[str, str] = {}
    for m in modules:
        for c in m.classes:
            if c in seen:
                raise MwtError(f"class '{c}' is in both {seen[c]} and {m.name}; composed modules must not share classes")
            seen[c] = m.name
    sources = {m.source for m in modules}
    if len(sources) > 1:
        if not allow_mixed_sources:
            raise MwtError(
                "the modules come from different checkpoints, whose logits are not on one scale; "
                "allow mixed sources to compose them anyway", options=("allow_mixed_sources",)
            )
        warnings.warn("composing modules from different checkpoints: their logits are not on one scale",
                      MixedSourcesWarning, stacklevel=3)


def check_finite(logits: np.ndarray) -> np.ndarray:
    """The logits, unless the model produced NaN or infinity (damaged weights): then MwtError."""
    if not np.isfinite(logits).all():
        raise MwtError("the model produced NaN or infinite logits; its weights are damaged")
    return logits


class ComposedClassifier:
    """Modules run as one classifier, in one merged graph or one session per module."""

    def __init__(self, modules: Sequence[ModuleFile], *, mode: Composition | str = Composition.merged,
                 settings: SessionSettings = SessionSettings(), allow_mixed_sources: bool = False) -> None:
        try:
            self.mode = Composition(mode)
        except ValueError:
            raise MwtError(f"unknown mode '{mode}'; choose one of: {', '.join(c.value for c in Composition)}") from None
        check_compatible(modules, allow_mixed_sources)
        self.modules = list(modules)
        self.classes = [c for m in self.modules for c in m.classes]
        self.input_spec = self.modules[0].input
        self.input_shape: tuple[int, int, int] = self.input_spec.shape  # (C, H, W)
        self.flops = sum(m.flops for m in self.modules)
        self._merged: onnx.ModelProto | None = None
        if self.mode is Composition.merged:
            self._sessions = [make_session(self.merged_model().SerializeToString(), settings)]
        else:
            if len(self.modules) > 1:  # sessions that take turns must not spin (see SessionSettings)
                settings = replace(settings, spin_wait=False)
            self._sessions = [make_session(m.model.SerializeToString(), settings) for m in self.modules]
        self._inputs = [s.get_inputs()[0].name for s in self._sessions]
        self._columns = [len(self.classes)] if self.mode is Composition.merged else [len(m.classes) for m in self.modules]
        self._pool = ThreadPoolExecutor(len(self._sessions)) if self.mode is Composition.sessions_parallel else None
        probe = np.zeros((1, *self.input_shape), np.float32)
        for i in range(len(self._sessions)):  # the logits' width against the metadata, before any answer
            self._run(i, probe)

    @classmethod
    def from_files(cls, paths: Sequence[str | Path], **kwargs: object) -> ComposedClassifier:
        """Read, check and compose module files (a composed file counts as one module)."""
        if not paths:
            raise MwtError("no module files given")
        return cls([read_module(p) for p in paths], **kwargs)  # type: ignore[arg-type]

    @property
    def sessions(self) -> tuple[ort.InferenceSession | SlicedSession, ...]:
        """The onnxruntime sessions it runs: one for a merged composition, else one per module
        (for inspecting their providers and options; run them through `logits`)."""
        return tuple(self._sessions)

    @property
    def providers(self) -> list[str]:
        """The onnxruntime execution providers the sessions actually use, in preference order."""
        return list(self._sessions[0].get_providers())

    def merged_model(self) -> onnx.ModelProto:
        """The single ONNX graph of the composition (built once)."""
        if self._merged is None:
            try:
                self._merged = merge_modules(self.modules)
            except MwtError:
                raise
            except Exception as e:  # onnx's checker and compose raise their own types for a damaged module
                raise MwtError(f"cannot merge the modules into one graph: {first_line(e)}") from None
        return self._merged

    def prepare(self, batch: np.ndarray) -> np.ndarray:
        """Check a batch against the input spec and convert it to float32 in [0, 1].

        Takes (N, C, H, W) or one image (C, H, W); float arrays in [0, 1] or uint8 in [0, 255].
        """
        if not isinstance(batch, np.ndarray):
            raise MwtError(f"expected a numpy array, got {type(batch).__name__}")
        expected = self.input_shape
        if batch.ndim == len(expected):
            batch = batch[None]
        if batch.ndim != len(expected) + 1 or tuple(batch.shape[1:]) != expected:
            raise MwtError(f"expected images of shape (N, {', '.join(map(str, expected))}), got {tuple(batch.shape)}")
        if batch.shape[0] == 0:
            raise MwtError("the batch is empty")
        if batch.dtype == np.uint8:
            return batch.astype(np.float32) / 255.0
        if batch.dtype.kind != "f":
            raise MwtError(f"expected float32 in [0, 1] or uint8 images, got dtype {batch.dtype}")
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        problem = range_problem(batch, *self.input_spec.range, "the batch")
        if problem is not None:  # say 0..255 floats: the module would answer, wrongly
            raise MwtError(problem)
        return batch

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Composed logits of a prepared float32 batch."""
        if self.mode is Composition.merged:
            return self._run(0, x)
        if self._pool is not None:
            parts = list(self._pool.map(lambda i: self._run(i, x), range(len(self._sessions))))
        else:
            parts = [self._run(i, x) for i in range(len(self._sessions))]
        return np.concatenate(parts, axis=1)

    def _run(self, i: int, x: np.ndarray) -> np.ndarray:
        try:
            logits = self._sessions[i].run([LOGITS], {self._inputs[i]: x})[0]
        except Exception as e:  # onnxruntime's error types; a module that loads but cannot run
            raise MwtError(f"onnxruntime failed to run the model: {first_line(e)}") from None
        if logits.ndim != 2 or logits.shape != (x.shape[0], self._columns[i]):
            name = "the composition" if self.mode is Composition.merged else self.modules[i].name
            raise MwtError(logits_mismatch(name, logits.shape[-1] if logits.ndim else "?", self._columns[i]))
        return logits

    def predict(self, batch: np.ndarray) -> Prediction:
        """Logits, probabilities and predicted class names for a batch."""
        logits = check_finite(self.logits(self.prepare(batch)))
        return Prediction(logits, softmax(logits), logits.argmax(axis=1), list(self.classes))

    def close(self) -> None:
        """Stop its threads (the parallel sessions' pool, the batch slices' workers)."""
        if self._pool is not None:
            self._pool.shutdown()
        for session in self._sessions:
            if isinstance(session, SlicedSession):
                session.close()
