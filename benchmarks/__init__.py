"""Measured tables. Each module is a script (`python benchmarks/NAME.py --help`) and, where the
command line uses it (`mwt bench`), a library; all of them only call mwt, exporter and runtime."""
