"""Running a typer app as a console script: user errors become one line on stderr, never a traceback."""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
import warnings
from importlib.metadata import PackageNotFoundError, metadata

import typer

from mwt.core.errors import Interrupted, MwtError, MwtWarning

# Import names that differ from their distribution's name; the rest are the same (with _ as -).
DISTRIBUTIONS = {"PIL": "pillow", "google": "protobuf"}
# Extras that only bundle others: a message names the extra that brings the one package.
BUNDLES = ("all", "dev")


def extra_providing(module: str) -> str | None:
    """The extra of mwt's installed metadata whose requirements bring the distribution that
    provides the import name `module` (None when no extra does, or mwt is not installed)."""
    try:
        requires = metadata("mwt").get_all("Requires-Dist") or []
    except PackageNotFoundError:
        return None
    wanted = _normalized(DISTRIBUTIONS.get(module, module))
    found = []
    for requirement in requires:
        name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
        extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", requirement)
        if name and extra and _normalized(name.group(1)) == wanted:
            found.append(extra.group(1))
    specific = [e for e in found if e not in BUNDLES]
    return (specific or found or [None])[0]


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def missing_extra_message(error: ModuleNotFoundError) -> str | None:
    """'this command needs X; install it with ...' when `error` is a missing optional dependency."""
    top = (error.name or "").split(".")[0]
    extra = extra_providing(top)
    if extra is None:
        return None
    return f"this command needs {top}, which is not installed; install it with: pip install 'mwt[{extra}]'"


def run_app(app: typer.Typer, argv: list[str] | None = None, prog_name: str = "mwt") -> int:
    """Run `app` with `argv` and return the exit code.

    MwtError, a missing optional dependency and command-line usage errors print `error: <message>`
    on stderr and return 2; Ctrl-C prints `interrupted` and returns 130. Anything else is a bug
    and keeps its traceback.
    """
    speak = speaks()
    previous = _terminate_as_interrupt()
    show_warnings = warnings.showwarning
    warnings.showwarning = _one_line_warning
    try:
        result = app(args=argv, prog_name=prog_name, standalone_mode=False)
    except MwtError as e:
        if speak or getattr(e, "every_rank", False):  # a failure of this process alone (its rendezvous)
            print(f"error: {e}{flags(e.options)}", file=sys.stderr)
        else:  # torchrun stops the group when the first process exits: let rank 0 say why first
            time.sleep(2.0)
        return 2
    except Interrupted as e:
        if speak:
            print(f"interrupted: {e}{flags(e.options)}", file=sys.stderr)
        return e.code
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
        message = format_message() if format_message else str(e)
        print(f"error: {message.replace('Value error, ', '')}", file=sys.stderr)  # typer's validator prefix
        return 2
    except (typer.Abort, KeyboardInterrupt):
        result = 130
    finally:
        warnings.showwarning = show_warnings
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if result == 130 and speak:  # typer turns Ctrl-C into this exit code without a word
        print("interrupted", file=sys.stderr)
    return int(result) if isinstance(result, int) else 0


def speaks() -> bool:
    """Whether this process reports a user error. Under torchrun every process meets the same bad
    input and rank 0 says so; every other process keeps quiet only when it is a valid non-zero
    rank of a valid world. An environment that is not one (RANK=x, RANK=5 of 2) speaks: no other
    process will."""
    try:
        rank = int(os.environ.get("RANK", "0"))
        world = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return True
    return not (world > 1 and 0 < rank < world)


def flags(options: tuple[str, ...]) -> str:
    """The command-line flags of library parameters, as a hint after a message: ` (--a, --b)`."""
    return f" ({', '.join('--' + o.replace('_', '-') for o in options)})" if options else ""


def _one_line_warning(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
    if issubclass(category, MwtWarning):
        print(f"warning: {message}{flags(getattr(message, 'options', ()))}", file=sys.stderr)
    else:
        print(f"warning: {category.__name__}: {message}", file=sys.stderr)


def _raise_terminated(_signum: int, _frame: object) -> None:
    raise Interrupted("terminated", 143)


def _terminate_as_interrupt() -> object | None:
    """SIGTERM (a cluster's preemption, `kill`) ends a command like Ctrl-C does: cleanly, in one
    line, exit 143. Training defers it to the next step boundary and saves first."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_terminated)


def exit_process(code: int) -> None:
    """Exit a console script with `code`. After Ctrl-C or SIGTERM (130, 143) the interpreter is left
    at once: an interrupted torch run can otherwise end in a second, silent death by SIGINT at
    shutdown; so it is after a failed rendezvous, whose C++ threads abort or block the shutdown."""
    distributed = sys.modules.get("mwt.distributed")  # never imported here: it brings torch
    if code in (130, 143) or getattr(distributed, "rendezvous_failed", False):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
