"""Running a typer app as a console script: user errors become one line on stderr, never a traceback."""

from __future__ import annotations

import sys

import typer

from mwt.errors import MwtError

# Optional dependencies and the extra of pyproject.toml that installs each.
EXTRAS = {
    "torch": "train", "torchvision": "train", "onnx_graphsurgeon": "train", "tqdm": "train",
    "starlette": "serve", "uvicorn": "serve", "prometheus_client": "serve",
    "matplotlib": "bench", "tritonclient": "triton", "onnxconverter_common": "train",
}


def missing_extra_message(error: ModuleNotFoundError) -> str | None:
    """'this command needs X; install it with ...' when `error` is a missing optional dependency."""
    top = (error.name or "").split(".")[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return None
    return f"this command needs {top}, which is not installed; install it with: pip install 'mwt[{extra}]'"


def run_app(app: typer.Typer, argv: list[str] | None = None, prog_name: str = "mwt") -> int:
    """Run `app` with `argv` and return the exit code.

    MwtError, a missing optional dependency and command-line usage errors print `error: <message>`
    on stderr and return 2; Ctrl-C prints `interrupted` and returns 130. Anything else is a bug
    and keeps its traceback.
    """
    try:
        result = app(args=argv, prog_name=prog_name, standalone_mode=False)
    except MwtError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        message = missing_extra_message(e)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2
    except typer.TyperException as e:  # usage errors: unknown option, missing argument, bad value
        if type(e).__name__ == "NoArgsIsHelpError":  # the help has been printed
            return 0
        format_message = getattr(e, "format_message", None)
        print(f"error: {format_message() if format_message else e}", file=sys.stderr)
        return 2
    except (typer.Abort, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        return 130
    return int(result) if isinstance(result, int) else 0
