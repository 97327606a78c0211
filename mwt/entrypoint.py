"""Running a typer app as a console script: user errors become one line on stderr, never a traceback."""

from __future__ import annotations

import sys

import typer

from mwt.errors import MwtError

TRAIN_EXTRA = {"torch", "torchvision", "onnx_graphsurgeon", "tqdm"}


def run_app(app: typer.Typer, argv: list[str] | None = None, prog_name: str = "mwt") -> int:
    """Run `app` with `argv` and return the exit code.

    MwtError and command-line usage errors print `error: <message>` on stderr and return 2;
    Ctrl-C returns 130. Anything else is a bug and keeps its traceback.
    """
    try:
        result = app(args=argv, prog_name=prog_name, standalone_mode=False)
    except MwtError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        if e.name in TRAIN_EXTRA:
            print(f"error: this command needs {e.name}; install the training extra: pip install 'mwt[train]'", file=sys.stderr)
            return 2
        raise
    except typer.TyperException as e:  # usage errors: unknown option, missing argument, bad value
        if type(e).__name__ == "NoArgsIsHelpError":  # typer has already printed the help
            return 0
        print(f"error: {e.format_message()}", file=sys.stderr)
        return 2
    except (typer.Abort, KeyboardInterrupt):
        print("error: interrupted", file=sys.stderr)
        return 130
    return int(result) if isinstance(result, int) else 0
