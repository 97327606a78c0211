"""The HTTP server, started for real on a loopback port, with real requests."""

from __future__ import annotations

import asyncio
import io
import json
import signal
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from exporter.compile import ExportOptions
from runtime import ComposedClassifier
from runtime.batching import Batcher, BatchingConfig, QueueFull
from runtime.local_server import local_server
from tests.conftest import compiler_for


@pytest.fixture(scope="module")
def module_file(tmp_path_factory):
    proto, _ = compiler_for("vgg11", seed=7).compile(ExportOptions((7, 8)))
    path = tmp_path_factory.mktemp("serve") / "module.onnx"
    path.write_bytes(proto.SerializeToString())
    return path


@pytest.fixture(scope="module")
def server(module_file):
    with local_server([module_file], "--max-body-mb", "0.5", "--max-wait-ms", "20") as s:
        yield s.url
    # uvicorn drains in-flight requests on SIGTERM, then re-raises the signal as its exit status.
    assert s.process.returncode in (0, -signal.SIGTERM)
    assert "Traceback" not in s.final_stderr


def post(url: str, body: bytes, content_type: str = "application/octet-stream") -> tuple[int, dict, dict]:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read()), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), dict(e.headers)


def npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def test_health_info_metrics(server):
    assert json.loads(urllib.request.urlopen(server + "/health").read()) == {"status": "ready"}
    info = json.loads(urllib.request.urlopen(server + "/info").read())
    assert info["classes"] == ["sneaker", "bag"] and info["input"]["shape"] == [1, 28, 28] and info["flops"] > 0
    text = urllib.request.urlopen(server + "/metrics").read().decode()
    assert "mwt_requests_total" in text and "mwt_batch_size_bucket" in text


def test_predict_image_and_npy_match_the_runtime(server, module_file):
    clf = ComposedClassifier.from_files([module_file])
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (28, 28), dtype=np.uint8)
    png = io.BytesIO()
    Image.fromarray(img).save(png, format="PNG")
    status, body, _ = post(server + "/predict", png.getvalue(), "image/png")
    assert status == 200
    expected = clf.predict(img[None, None])
    np.testing.assert_allclose(body["predictions"][0]["logits"], expected.logits[0], atol=1e-5)
    assert body["predictions"][0]["label"] == expected.labels[0]
    batch = rng.random((3, 1, 28, 28), dtype=np.float32)
    status, body, _ = post(server + "/predict", npy(batch))
    assert status == 200 and len(body["predictions"]) == 3


def test_concurrent_clients_get_their_own_answers(server, module_file):
    clf = ComposedClassifier.from_files([module_file])
    inputs = [np.random.default_rng(i).random((1 + i % 3, 1, 28, 28), dtype=np.float32) for i in range(24)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda x: post(server + "/predict", npy(x)), inputs))
    for x, (status, body, _) in zip(inputs, results):
        assert status == 200
        np.testing.assert_allclose([p["logits"] for p in body["predictions"]], clf.predict(x).logits, atol=1e-5)
    text = urllib.request.urlopen(server + "/metrics").read().decode()
    assert "mwt_batch_size_count" in text


@pytest.mark.parametrize("body, content_type, status, message", [
    (b"", "image/png", 400, "empty"),
    (b"garbage bytes", "image/png", 400, "cannot decode"),
    (npy(np.zeros((2, 3, 28, 28), np.float32)), "application/x-npy", 400, "expected images of shape"),
    (npy(np.zeros((2, 1, 28, 28), np.int64)), "application/x-npy", 400, "dtype int64"),
    (npy(np.full((1, 1, 28, 28), np.inf, np.float32)), "application/x-npy", 400, "NaN or infinite"),
    (npy(np.zeros((0, 1, 28, 28), np.float32)), "application/x-npy", 400, "empty"),
    (b"\x93NUMPY broken", "application/x-npy", 400, ".npy"),
    (b"x" * (600 * 1024), "image/png", 413, "over"),
])
def test_bad_requests_get_4xx_and_the_server_keeps_serving(server, body, content_type, status, message):
    got, payload, _ = post(server + "/predict", body, content_type)
    assert got == status and message in payload["error"] and "\n" not in payload["error"]
    ok, _, _ = post(server + "/predict", npy(np.zeros((1, 1, 28, 28), np.float32)))
    assert ok == 200


def test_full_queue_raises_instead_of_growing(module_file):
    clf = ComposedClassifier.from_files([module_file])

    async def scenario():
        batcher = Batcher(clf.logits, BatchingConfig(max_batch=4, max_wait_ms=1, queue_size=2))
        x = np.zeros((1, 1, 28, 28), np.float32)
        waiting = [asyncio.ensure_future(batcher.submit(x)) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(QueueFull):
            await batcher.submit(x)  # worker not started: the queue stays full
        batcher.start()
        results = await asyncio.gather(*waiting)
        await batcher.stop()
        return results

    results = asyncio.run(scenario())
    assert [r.shape for r in results] == [(1, 2), (1, 2)]
