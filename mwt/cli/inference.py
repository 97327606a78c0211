"""`mwt compose`, `mwt predict` and `mwt serve`: the runtime's commands (no torch needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from mwt.cli.options import ParallelismOption, choices, number
from runtime.batching import BatchingConfig
from runtime.composed import Composition
from runtime.session import Parallelism, Provider

app = typer.Typer()
TritonInstance = choices(["cpu", "gpu"])

Mode = Annotated[Composition, typer.Option(
    help="merged: one graph; sessions: one session per module, in turn; sessions-parallel: in a thread pool.")]
Threads = Annotated[int, typer.Option(help="onnxruntime intra-op threads (0: one per core).", min=0, max=1024)]
ProviderOption = Annotated[Provider, typer.Option(
    "--provider", help="Where to run: auto (CUDA when this onnxruntime has it, else CPU), cpu, cuda, tensorrt.")]


@app.command()
def compose(
    modules: Annotated[list[Path], typer.Argument(help="Module files from mwt-export (or composed files).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the composed ONNX file.")] = Path("composed.onnx"),
    allow_mixed_sources: Annotated[bool, typer.Option(
        "--allow-mixed-sources", help="Allow modules from different checkpoints (their logits are not on one scale).")] = False,
) -> None:
    """Compose modules into one classifier: one ONNX file with logits, probabilities and label outputs."""
    from mwt.core.atomic import write_bytes_atomic
    from runtime.composed import check_compatible
    from runtime.merge import merge_modules
    from runtime.module_file import read_module

    parts = [read_module(p) for p in modules]
    check_compatible(parts, allow_mixed_sources)  # a mixed-sources warning prints as one line
    model = merge_modules(parts)
    write_bytes_atomic(out, model.SerializeToString(deterministic=True))
    for p in parts:
        typer.echo(f"{p.name:<32} {', '.join(p.classes)}")
    typer.echo(f"wrote {out}: {sum(len(p.classes) for p in parts)} classes")


@app.command()
def predict(
    model: Annotated[Path, typer.Argument(help="A module or composed file.")],
    inputs: Annotated[list[Path], typer.Argument(help="Images (PNG, JPEG, ...), folders of them, or .npy batches.")],
    mode: Mode = Composition.merged,
    threads: Threads = 0,
    parallelism: ParallelismOption = Parallelism.ops,
    provider: ProviderOption = Provider.auto,
    top: Annotated[int, typer.Option(help="Show this many most likely classes per image.", min=1)] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Classify images with a module or a composed classifier, converting them to its input spec."""
    from runtime.composed import ComposedClassifier
    from mwt.core.images import load_inputs
    from mwt.core.names import printable
    from runtime.session import SessionSettings, providers_for

    settings = SessionSettings(intra_op_threads=threads, providers=providers_for(provider), parallelism=parallelism)
    clf = ComposedClassifier.from_files([model], mode=mode, settings=settings)
    batch, names = load_inputs(inputs, clf.input_spec)
    result = clf.predict(batch)
    if as_json:
        typer.echo(json.dumps([
            {"input": n, "label": lab, "probabilities": dict(zip(result.classes, map(float, p)))}
            for n, lab, p in zip(names, result.labels, result.probabilities)
        ], indent=2))
        return
    names = [printable(n) for n in names]  # a file named "x\nbag 100%" must not forge a row of the table
    width = max(len(n) for n in names)
    typer.echo(f"{'input':<{width}}  prediction")
    for name, probs in zip(names, result.probabilities):
        order = probs.argsort()[::-1][:top]
        typer.echo(f"{name:<{width}}  " + "  ".join(f"{result.classes[i]} {100 * probs[i]:.1f}%" for i in order))


@app.command()
def serve(
    modules: Annotated[list[Path], typer.Argument(help="Module files (each served as a model, and composed for "
                                                  "/predict), or one composed file.")],
    host: Annotated[str, typer.Option(help="Address to bind; loopback unless you mean otherwise.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (REST: /predict and the Open Inference Protocol).",
                                      min=1, max=65535)] = 8000,
    grpc_port: Annotated[Optional[int], typer.Option(help="Also serve the Open Inference Protocol over gRPC "
                                                     "on this port.", min=1, max=65535)] = None,
    max_batch: Annotated[int, typer.Option(help="Most samples per onnxruntime call (1: no batching).",
                                           min=1, max=65536)] = BatchingConfig.max_batch,
    max_wait_ms: Annotated[float, typer.Option(help="How long a request waits for others to batch with.",
                                               callback=number(0, 10_000))] = 5.0,
    queue_size: Annotated[int, typer.Option(help="Most requests (pieces of --max-batch samples) waiting; beyond "
                                            "it the server answers 503. A request of more than --max-batch x "
                                            "--queue-size samples could never wait in it: 413.",
                                            min=1, max=1_000_000)] = 256,
    inline_max_ms: Annotated[float, typer.Option(
        help="A lone request (nothing queued or arriving) runs on the event loop, skipping the hop to the "
        "onnxruntime thread, when its run should take at most this long, judged by the last run's time per "
        "sample (0: never).",
        callback=number(0, 1000))] = BatchingConfig.inline_max_ms,
    max_body_mb: Annotated[float, typer.Option(help="Largest request body (or gRPC message) accepted, in MiB.",
                                               callback=number(0, 1024, low_open=True))] = 8.0,
    max_samples: Annotated[int, typer.Option(help="Most samples in one request (a .npy batch); beyond it: 413.",
                                             min=1, max=1_000_000)] = 1024,
    max_pixels: Annotated[int, typer.Option(help="Most pixels of one uploaded image, read from its header; "
                                            "beyond it: 413.", min=1, max=1 << 31)] = 4096 * 4096,
    body_timeout: Annotated[float, typer.Option(help="Seconds a client may take to send its request body; "
                                                "beyond it: 408.", callback=number(0, 3600, low_open=True))] = 10.0,
    header_timeout: Annotated[float, typer.Option(help="Seconds a connection may take to send a request's "
                                                  "headers; beyond it the connection is closed.",
                                                  callback=number(0, 3600, low_open=True))] = 10.0,
    max_connections: Annotated[int, typer.Option(help="Most open HTTP connections; more are closed as they "
                                                 "arrive.", min=1, max=1_000_000)] = 1024,
    token_file: Annotated[Optional[Path], typer.Option(help="A file holding a bearer token that /predict and "
                                                       "infer (REST and gRPC) require.")] = None,
    tls_cert: Annotated[Optional[Path], typer.Option(help="PEM certificate: serve HTTPS (and gRPC over TLS).")] = None,
    tls_key: Annotated[Optional[Path], typer.Option(help="PEM private key of --tls-cert.")] = None,
    mode: Mode = Composition.merged,
    threads: Threads = 0,
    parallelism: ParallelismOption = Parallelism.ops,
    provider: ProviderOption = Provider.auto,
    allow_mixed_sources: Annotated[bool, typer.Option(
        "--allow-mixed-sources", help="Allow modules from different checkpoints (their logits are not on one scale).")] = False,
) -> None:
    """Serve over HTTP: POST /predict, GET /health, /info, /metrics, and the Open Inference Protocol (v2)."""
    from mwt.core.errors import MwtError
    from mwt.core.images import InputLimits
    from runtime.module_file import read_module
    from runtime.server import InferenceServer, listen, read_token, serve as run_server
    from runtime.server_config import ServerConfig, TLSFiles
    from runtime.session import SessionSettings, providers_for

    if (tls_cert is None) != (tls_key is None):
        raise MwtError("give --tls-cert and --tls-key together")
    tls = TLSFiles(tls_cert, tls_key) if tls_cert is not None and tls_key is not None else None
    if tls is not None:
        import ssl

        try:  # here, in one line, rather than as a traceback when the server starts
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(tls.cert, tls.key)
        except (OSError, ssl.SSLError) as e:
            raise MwtError(f"cannot use {tls.cert} and {tls.key} for TLS: {getattr(e, 'strerror', None) or e}") from None
    token = read_token(token_file) if token_file is not None else None
    # No spin-waiting: the event loop, the decoding threads and onnxruntime share the cores, and
    # spinning threads took them from the others (32 clients: 743 against 449 requests/s, measured).
    settings = SessionSettings(intra_op_threads=threads, providers=providers_for(provider), spin_wait=False,
                               parallelism=parallelism)
    parts = [read_module(p) for p in modules]
    config = ServerConfig(BatchingConfig(max_batch, max_wait_ms, queue_size, inline_max_ms),
                          int(max_body_mb * (1 << 20)),
                          InputLimits(max_pixels=max_pixels, max_samples=max_samples), body_timeout,
                          token=token, header_timeout_s=header_timeout, max_connections=max_connections, tls=tls)
    server = InferenceServer.from_modules(parts, config, mode=mode, settings=settings,
                                          allow_mixed_sources=allow_mixed_sources)
    sock = listen(host, port)  # before saying so: a port in use or a bad host fails here, in one line
    if grpc_port is not None:
        listen(host, grpc_port).close()  # the same check for the gRPC port, which binds once the models are warm
    scheme = "https" if tls else "http"
    clf = server.default.clf
    typer.echo(f"serving {', '.join(clf.classes)} on {scheme}://{host}:{port}"
               + (f" and gRPC {host}:{grpc_port}" if grpc_port else "")
               + f" ({clf.providers[0]}); models: {', '.join(server.models)}", err=True)
    grpc_host = f"[{host}]" if ":" in host else host
    run_server(server, sock, f"{grpc_host}:{grpc_port}" if grpc_port is not None else None)


@app.command("triton-repo")
def triton_repo(
    modules: Annotated[list[Path], typer.Argument(help="Module files from mwt-export (or composed files).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The model repository folder to write.")],
    merged: Annotated[bool, typer.Option("--merged", help="One model: the composition of all modules.")] = False,
    max_batch_size: Annotated[int, typer.Option(help="Triton's max_batch_size.", min=1, max=65536)] = 32,
    instance: Annotated[TritonInstance, typer.Option(help="Where Triton runs each model instance.")  # type: ignore[valid-type]
                        ] = TritonInstance("cpu"),
    instances: Annotated[int, typer.Option(help="Model instances per model.", min=1, max=1024)] = 1,
    max_queue_delay_us: Annotated[int, typer.Option(help="Dynamic batching: longest wait for company, in µs.",
                                                    min=0, max=10_000_000)] = 5000,
    force: Annotated[bool, typer.Option("--force", help="Replace OUT if it exists and is not empty.")] = False,
) -> None:
    """Write a Triton Inference Server model repository (onnxruntime_onnx models) for the modules."""
    from runtime.module_file import read_module
    from runtime.triton import TritonSettings, write_repository

    parts = [read_module(p) for p in modules]
    settings = TritonSettings(max_batch_size, instance.value, instances, max_queue_delay_us)
    names = write_repository(parts, out, settings, merged=merged, force=force)
    for name in names:
        typer.echo(f"{out}/{name}: config.pbtxt, labels.txt, 1/model.onnx")
    typer.echo(f"serve it with: docker run --rm -p8000:8000 -v {out.resolve()}:/models nvcr.io/nvidia/tritonserver:<version>-py3 "
               "tritonserver --model-repository=/models")
