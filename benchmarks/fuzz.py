"""Fuzzing every loader of untrusted input, with many more examples than the tests draw.

The targets (tests/fuzz_targets.py) are the tests' own: each loader must end in one MwtError or
a valid result, the server in a 4xx or 200, never a 5xx. This script runs each with a large
fresh example budget and reports cases tried and failures.

    python -m benchmarks.fuzz --examples 2000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from tests.fuzz_targets import properties, run_property, seeds
from tests.local_server import local_server


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--examples", type=int, default=1000, help="examples per target")
    p.add_argument("--no-server", action="store_true", help="skip the server target")
    args = p.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="mwt-fuzz-"))
    seed = seeds(work)
    (work / "module.onnx").write_bytes(seed["module"])  # type: ignore[arg-type]
    failures = 0
    print(f"{'target':<22} {'examples':>8} {'seconds':>8}  result")
    with local_server([work / "module.onnx"]) as server:
        for name, prop in properties(seed, work, None if args.no_server else server.url).items():
            start = time.perf_counter()
            try:
                run_property(prop, args.examples)
                result = "held"
            except Exception as e:  # hypothesis re-raises the shrunk failing example
                failures += 1
                result = "FAILED: " + str(e).splitlines()[0][:200]
            print(f"{name:<22} {args.examples:>8} {time.perf_counter() - start:>8.1f}  {result}", flush=True)
        if "Traceback" in server.stderr():
            failures += 1
            print("the server wrote a traceback:\n" + server.stderr()[-2000:])
    print(f"{failures} target(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
