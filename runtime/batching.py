"""Dynamic batching: requests that arrive together run as one onnxruntime call, off the event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np


class QueueFull(Exception):
    """The batching queue is at its bound; the caller should answer 503 and ask to retry."""


class TooManySamples(Exception):
    """A request in more pieces of `max_batch` than the queue holds: it could never be queued,
    even on an idle server, so the caller should answer 413, not ask to retry."""

    def __init__(self, samples: int, limit: int) -> None:
        super().__init__(f"{samples} samples, over the {limit} one request may hold")
        self.samples, self.limit = samples, limit


@dataclass(frozen=True)
class BatchingConfig:
    # Samples per onnxruntime call (1 turns batching off). 8, not 32: at 32 gRPC clients a 15%-FLOPs
    # sneaker/bag module served 2185-2338 req/s with p99 22.5-24.9 ms at 8, against 2040-2188 req/s
    # and p99 28.5 ms at 32 (M4, stop 25): a smaller batch waits less for the one ahead of it.
    max_batch: int = 8
    max_wait_ms: float = 5.0  # how long the first request of a batch waits for company
    queue_size: int = 256  # requests waiting at most; beyond that: QueueFull
    # A request that finds the batcher idle, nothing queued and nobody else on the way runs on the
    # event loop itself, as KServe's predictors do, when its run should take at most this long
    # (the last run's time per sample, times its samples): the hop to the onnxruntime thread and
    # back costs more than a small module's run (0 turns it off; a slow model never blocks the loop).
    inline_max_ms: float = 1.0


class Batcher:
    """Collects (N_i, ...) arrays from concurrent requests into batches of at most `max_batch`
    samples, runs `run` on each batch in a worker thread, and hands each request its rows. A
    request alone with a small model runs on the event loop instead (`inline_max_ms`).

    How long a batch waits for company (never more than `max_wait_ms`): with `arriving` (the
    number of requests the server has begun reading for this batcher but not yet submitted), a
    batch waits only while such requests exist, and runs as soon as none is on its way, so 8
    clients no longer wait out the whole window for a 32-sample batch that cannot fill (p50 at
    8 clients was 5 ms of waiting). Without it, a batch waits the window whenever the last batch
    held more than one request."""

    def __init__(self, run: Callable[[np.ndarray], np.ndarray], config: BatchingConfig,
                 on_batch: Callable[[int], None] | None = None, arriving: Callable[[], int] | None = None) -> None:
        self._run = run
        self.config = config
        self._on_batch = on_batch
        self._arriving = arriving
        self._queue: asyncio.Queue[tuple[np.ndarray, asyncio.Future[np.ndarray]]] = asyncio.Queue(config.queue_size)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="mwt-onnxruntime")
        self._task: asyncio.Task[None] | None = None
        self._carry: tuple[np.ndarray, asyncio.Future[np.ndarray]] | None = None  # did not fit the last batch
        self._busy = False  # a batch is being gathered or run
        self._deciding = 0  # requests taking their turn of the event loop before running inline
        self._per_sample_s = float("inf")  # the last onnxruntime call's time per sample (unknown: never inline)
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Finish every queued request, then stop."""
        self._stopping = True
        while self._deciding:  # requests taking their turn go to the queue now, and join() waits for them
            await asyncio.sleep(0)
        await self._queue.join()
        if self._task is not None:
            self._task.cancel()
        self._executor.shutdown(wait=True)

    @property
    def max_samples(self) -> int:
        """The most samples one request may hold: all its pieces must fit in the empty queue."""
        return self.config.max_batch * self.config.queue_size

    async def submit(self, x: np.ndarray) -> np.ndarray:
        """Rows of `run`'s output for `x`; raises QueueFull when the queue is at its bound (a
        request run inline never waits in it), TooManySamples when `x` could never fit in it.

        An `x` of more than `max_batch` samples goes in pieces, so no onnxruntime call (and no
        buffer it allocates) is ever larger than `max_batch`."""
        if self._lone(x):
            # One turn of the event loop first: requests that arrived together (gRPC hands them
            # over one by one, already read) show themselves here and then go to the queue as a
            # batch; only a request still alone after it runs inline.
            self._deciding += 1
            try:
                await asyncio.sleep(0)
            finally:
                self._deciding -= 1
            if self._deciding == 0 and self._lone(x):
                out = self._timed_run(x)
                if self._on_batch:
                    self._on_batch(x.shape[0])
                return out
        step = self.config.max_batch
        if x.shape[0] > self.max_samples:
            raise TooManySamples(x.shape[0], self.max_samples)
        pieces = [x[i:i + step] for i in range(0, x.shape[0], step)]
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[np.ndarray]] = []
        for piece in pieces:
            future: asyncio.Future[np.ndarray] = loop.create_future()
            try:
                self._queue.put_nowait((piece, future))
            except asyncio.QueueFull:
                for f in futures:
                    f.cancel()
                raise QueueFull from None
            futures.append(future)
        results = [await f for f in futures]
        return results[0] if len(results) == 1 else np.concatenate(results)

    def _lone(self, x: np.ndarray) -> bool:
        """Whether `x` may run on the event loop now: small model, nothing else in or on the way."""
        return (x.shape[0] <= self.config.max_batch and not self._busy and not self._stopping
                and self._carry is None and self._queue.empty()
                and (self._arriving is None or self._arriving() == 0)
                and self._per_sample_s * x.shape[0] * 1000 <= self.config.inline_max_ms)

    def _timed_run(self, batch: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        out = self._run(batch)
        self._per_sample_s = (time.perf_counter() - start) / max(batch.shape[0], 1)
        return out

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        concurrent = False  # did the last batch hold more than one request?
        while True:
            items = [self._carry if self._carry is not None else await self._queue.get()]
            self._carry = None
            self._busy = True
            size = items[0][0].shape[0]
            # Wait for company only under concurrency: a lone client never pays max_wait.
            waits = concurrent or self._arriving is not None
            deadline = time.perf_counter() + (self.config.max_wait_ms / 1000 if waits else 0.0)
            while size < self.config.max_batch:
                if not self._queue.empty():
                    item = self._queue.get_nowait()
                else:
                    timeout = deadline - time.perf_counter()
                    if timeout <= 0 or (self._arriving is not None and self._arriving() == 0):
                        break
                    if self._arriving is not None:  # re-check who is on the way each 0.5 ms
                        timeout = min(timeout, 0.0005)
                    try:
                        item = await asyncio.wait_for(self._queue.get(), timeout)
                    except asyncio.TimeoutError:
                        continue
                if size + item[0].shape[0] > self.config.max_batch:
                    self._carry = item  # first in the next batch
                    break
                items.append(item)
                size += item[0].shape[0]
            concurrent = len(items) > 1
            batch = np.concatenate([x for x, _ in items]) if len(items) > 1 else items[0][0]
            try:
                out = await loop.run_in_executor(self._executor, self._timed_run, batch)
            except Exception as e:  # a failing batch fails its requests, never the server
                for _, future in items:
                    if not future.done():
                        future.set_exception(e)
            else:
                if self._on_batch:
                    self._on_batch(batch.shape[0])
                start = 0
                for x, future in items:
                    if not future.done():
                        future.set_result(out[start:start + x.shape[0]])
                    start += x.shape[0]
            finally:
                self._busy = False
                for _ in items:
                    self._queue.task_done()
