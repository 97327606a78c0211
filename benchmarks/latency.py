"""Latency benchmark: full model vs union module vs composed single-class modules (onnxruntime CPU).

    python benchmarks/latency.py results/training/modular.pt --classes sneaker,bag --out results/latency

The same as `mwt bench latency`; prints the table and writes latency.json and latency.png.
"""

import sys

from mwt.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "latency", *sys.argv[1:]]))
