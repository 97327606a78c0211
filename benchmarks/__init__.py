"""Measured tables, run from the repository as scripts (`python -m benchmarks.NAME --help`); they
only call mwt, exporter and runtime (and the tests' helpers). Not installed with mwt."""
