"""exporter: compiles a modularized mwt checkpoint into a compact per-module ONNX file.

Submodules are imported on use: `exporter.compile.ModuleCompiler` is the entry point.
"""
