"""The HTTP server, started for real on a loopback port, with real requests."""

from __future__ import annotations

import asyncio
import io
import json
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from tests.hostile_bytes import npy, npy_claiming, png_claiming
from runtime import ComposedClassifier
from runtime.batching import Batcher, BatchingConfig, QueueFull
from tests.local_server import local_server
from tests.conftest import compiler_for


@pytest.fixture(scope="module")
def module_file(tmp_path_factory):
    compiler = compiler_for("vgg11", seed=7)
    proto, _ = compiler.compile(compiler.select((7, 8)))
    path = tmp_path_factory.mktemp("serve") / "module.onnx"
    path.write_bytes(proto.SerializeToString())
    return path


@pytest.fixture(scope="module")
def server(module_file):
    with local_server([module_file], "--max-body-mb", "0.5", "--max-wait-ms", "20", "--max-batch", "8",
                      "--max-samples", "64", "--body-timeout", "1") as s:
        yield s.url
    # uvicorn drains in-flight requests on SIGTERM, then re-raises the signal as its exit status.
    assert s.process.returncode in (0, 143, -signal.SIGTERM)
    assert "Traceback" not in s.final_stderr


def post(url: str, body: bytes, content_type: str = "application/octet-stream") -> tuple[int, dict, dict]:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read()), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), dict(e.headers)


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
    (npy(np.zeros((2, 3, 28, 28), np.float32)), "application/x-npy", 400, "expected (N, 1, 28, 28)"),
    (npy(np.zeros((2, 1, 28, 28), np.int64)), "application/x-npy", 400, "dtype int64"),
    (npy(np.full((1, 1, 28, 28), np.inf, np.float32)), "application/x-npy", 400, "NaN or infinite"),
    (npy(np.zeros((0, 1, 28, 28), np.float32)), "application/x-npy", 400, "empty"),
    (b"\x93NUMPY broken", "application/x-npy", 400, ".npy"),
    (b"x" * (600 * 1024), "image/png", 413, "over"),
    (png_claiming(30000, 30000), "image/png", 413, "limit"),
    (png_claiming(13000, 13000), "image/png", 413, "limit"),
    (npy(np.array(["a", "b"])), "application/x-npy", 400, "not numbers"),
    (npy_claiming((100_000_000, 1, 28, 28)), "application/x-npy", 413, "100000000 samples"),
    (npy(np.zeros((65, 1, 28, 28), np.float32)), "application/x-npy", 413, "65 samples"),
    (npy_claiming((2, 1, 28, 28), data=b"\0" * 10), "application/x-npy", 400, "truncated"),
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


@pytest.mark.parametrize("inline_max_ms", [1000.0, 0.0])
def test_a_lone_request_runs_on_the_event_loop_and_company_batches_off_it(module_file, inline_max_ms):
    # The thread hop costs more than a small module's run, so a request that finds nothing else
    # queued runs where it is; requests that arrive together still batch on the onnxruntime thread.
    clf = ComposedClassifier.from_files([module_file])
    calls: list[tuple[str, int]] = []

    def run(x):
        calls.append((threading.current_thread().name, x.shape[0]))
        return clf.logits(x)

    on_the_way = [0]  # requests being read, as the server counts them

    async def request(batcher, x):
        await asyncio.sleep(0)  # read ...
        on_the_way[0] -= 1  # ... and handed over
        return await batcher.submit(x)

    async def scenario():
        batcher = Batcher(run, BatchingConfig(max_batch=8, max_wait_ms=50, inline_max_ms=inline_max_ms),
                          arriving=lambda: on_the_way[0])
        batcher.start()
        x = np.random.default_rng(0).random((1, 1, 28, 28), dtype=np.float32)
        await batcher.submit(x)  # the first run's time is unknown: through the thread
        lone = await batcher.submit(x)
        on_the_way[0] = 3
        together = await asyncio.gather(*[request(batcher, x) for _ in range(3)])
        # gRPC hands requests over already read (nothing counted as on the way): still one batch
        together += await asyncio.gather(*[batcher.submit(x) for _ in range(3)])
        await batcher.stop()
        return x, lone, together

    x, lone, together = asyncio.run(scenario())
    expected = clf.logits(x)
    assert np.allclose(lone, expected, atol=1e-6) and all(np.allclose(t, expected, atol=1e-6) for t in together)
    main = threading.main_thread().name
    assert [n for _, n in calls] == [1, 1, 3, 3]
    assert calls[0][0] != main and calls[2][0] != main and calls[3][0] != main  # the unknown first run; company
    assert (calls[1][0] == main) == bool(inline_max_ms)


def test_stopping_finishes_requests_taking_their_turn_before_running_inline(module_file):
    clf = ComposedClassifier.from_files([module_file])

    async def scenario():
        batcher = Batcher(clf.logits, BatchingConfig(inline_max_ms=1000))
        batcher.start()
        x = np.zeros((1, 1, 28, 28), np.float32)
        await batcher.submit(x)
        pending = [asyncio.ensure_future(batcher.submit(x)) for _ in range(2)]
        await asyncio.sleep(0)  # both are now taking their turn of the event loop
        await batcher.stop()
        return await asyncio.wait_for(asyncio.gather(*pending), 10)

    assert [r.shape for r in asyncio.run(scenario())] == [(1, 2), (1, 2)]


def metric(server, line_start: str) -> float:
    text = urllib.request.urlopen(server + "/metrics").read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start))


def test_every_answer_is_counted_by_status(server):
    before_404 = metric(server, 'mwt_requests_total{endpoint="other",status="404"}')
    before_405 = metric(server, 'mwt_requests_total{endpoint="/predict",status="405"}')
    for path in ("/nope", "/predict"):
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(server + path)
    assert metric(server, 'mwt_requests_total{endpoint="other",status="404"}') == before_404 + 1
    assert metric(server, 'mwt_requests_total{endpoint="/predict",status="405"}') == before_405 + 1
    assert metric(server, 'mwt_errors_total{reason="http_404"}') >= 1


def test_a_large_request_runs_in_batches_no_larger_than_max_batch(server, module_file):
    x = np.random.default_rng(5).random((50, 1, 28, 28), dtype=np.float32)
    status, body, _ = post(server + "/predict", npy(x))
    assert status == 200 and len(body["predictions"]) == 50
    np.testing.assert_allclose([p["logits"] for p in body["predictions"]],
                               ComposedClassifier.from_files([module_file]).predict(x).logits, atol=1e-5)
    assert metric(server, 'mwt_batch_size_bucket{le="8.0"}') == metric(server, "mwt_batch_size_count")


def test_a_client_that_stops_sending_is_dropped(server):
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                     b"Content-Length: 1000\r\n\r\n" + b"x" * 10)
        start = time.monotonic()
        answer = b""
        while b"did not arrive" not in answer:
            chunk = conn.recv(4096)
            if not chunk:
                break
            answer += chunk
        answer = answer.decode(errors="replace")
    assert answer.startswith("HTTP/1.1 408") and "did not arrive" in answer
    assert time.monotonic() - start < 5
    ok, _, _ = post(server + "/predict", npy(np.zeros((1, 1, 28, 28), np.float32)))
    assert ok == 200


# --- connections and framing (issue 20, item 14) ---------------------------------------------------


@pytest.mark.parametrize("value", [3e38, -1e6, 1e20, 1.5])
def test_pixels_outside_the_input_range_are_refused(server, value):
    status, payload, _ = post(server + "/predict", npy(np.full((1, 1, 28, 28), value, np.float32)))
    assert status == 400 and "outside the model's input range [0, 1]" in payload["error"]


def test_unknown_paths_and_methods_answer_json(server):
    for path, method, status in (("/nope", "GET", 404), ("/predict", "GET", 405), ("/health", "POST", 405)):
        req = urllib.request.Request(server + path, method=method, data=b"" if method == "POST" else None)
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req)
        assert e.value.code == status and e.value.headers["Content-Type"] == "application/json"
        assert set(json.loads(e.value.read())) == {"error"}


def raw_exchange(server: str, request: bytes, wait: float = 5.0) -> tuple[bytes, bool]:
    """Send raw bytes; (what came back, whether the server closed the connection within `wait`)."""
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as conn:
        if request:
            conn.sendall(request)
        answer = b""
        try:
            while chunk := conn.recv(65536):
                answer += chunk
        except (socket.timeout, TimeoutError):
            return answer, False
        except ConnectionResetError:
            pass
    return answer, True


def test_content_length_with_transfer_encoding_is_refused_and_the_connection_closed(server):
    answer, closed = raw_exchange(server, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                                          b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b"connection: close" in head.lower() and closed
    assert "error" in json.loads(body)


@pytest.fixture(scope="module")
def strict_server(module_file):
    with local_server([module_file], "--header-timeout", "1", "--max-connections", "8", "--threads", "1") as s:
        yield s.url


def test_connections_that_send_nothing_or_half_a_head_are_dropped(strict_server):
    start = time.monotonic()
    assert raw_exchange(strict_server, b"", wait=5) == (b"", True)
    assert raw_exchange(strict_server, b"GET /health HTTP/1.1\r\nHost:", wait=5) == (b"", True)
    assert time.monotonic() - start < 6
    answer, _ = raw_exchange(strict_server, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200")


def test_connections_beyond_the_cap_are_closed_and_the_server_keeps_serving(strict_server):
    host, port = strict_server.removeprefix("http://").split(":")
    idle = [socket.create_connection((host, int(port))) for _ in range(8)]
    try:
        time.sleep(0.2)
        assert raw_exchange(strict_server, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", wait=0.9) == (b"", True)
    finally:
        for conn in idle:
            conn.close()
    time.sleep(0.2)
    answer, _ = raw_exchange(strict_server, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200")
