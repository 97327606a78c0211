"""`mwt bench`: measured benchmarks (the library behind them is `benchmarks/`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mwt.cli.options import Align, Classes, DataDir, ParallelismOption, number, numbers
from mwt.defaults import DEFAULT_ALIGN
from runtime.session import Parallelism, Provider

app = typer.Typer(help="Measured benchmarks: latency of modules against the full model.", no_args_is_help=True)


@app.command("latency")
def latency(
    checkpoint: Annotated[Path, typer.Argument(help="A modularized checkpoint.")],
    classes: Classes,
    batch: Annotated[list[int], typer.Option(help="Batch sizes (repeat the option).",
                                             callback=numbers(1, 65536))] = [1, 32, 256],  # noqa: B006
    threads: Annotated[int, typer.Option(help="onnxruntime intra-op threads.", min=0, max=1024)] = 2,
    parallelism: ParallelismOption = Parallelism.ops,
    align: Align = DEFAULT_ALIGN,
    seconds: Annotated[float, typer.Option(help="Minimum measuring time per batch size.",
                                           callback=number(0, 3600, low_open=True))] = 2.0,
    calls_per_turn: Annotated[int, typer.Option(
        help="Calls of each configuration in a row before the next one's. 1 alternates call by call, so "
        "each call starts with the others' weights in the caches; more time each warm, as it runs deployed "
        "(turns of 20 put small modules 4-10% further ahead of the plain model on an AVX-512 Xeon; "
        "docs/results.md, stop 48).", min=1, max=10000)] = 1,
    out: Annotated[Path, typer.Option(help="Folder for latency.json and latency.png.")] = Path("results/latency"),
    provider: Annotated[Provider, typer.Option(help="onnxruntime execution provider (auto: the best there is).")
                        ] = Provider.cpu,
    module: Annotated[list[Path], typer.Option(
        help="Also time this module file of the same classes (e.g. a fine-tuned one; repeat the option).")
                      ] = [],  # noqa: B006
    data_dir: DataDir = None,
) -> None:
    """Latency and accuracy of the full models, the union module and composed single-class modules, side by side."""
    from mwt.module_latency import check_output_folder, latency_benchmark, save_result
    from runtime.module_file import read_module

    check_output_folder(out)
    extra = {path.name: read_module(path) for path in module}
    result = latency_benchmark(checkpoint, classes, batches=tuple(batch), threads=threads, align=align,
                               parallelism=parallelism, calls_per_turn=calls_per_turn,
                               min_seconds=seconds, data_dir=data_dir, provider=provider.value, extra=extra)
    print(result.table())
    paths = save_result(result, out)
    print("wrote " + ", ".join(str(p) for p in paths if p))
