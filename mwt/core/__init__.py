"""mwt's torch-free core: what every layer stands on and that imports nothing of ours above it.

errors (the user-facing error types), atomic (writes that never leave half a file), metadata
(the module file format and its input spec), images (the one image decoder) and unionfind (the
disjoint sets behind both channel-stream analyses). `runtime`, `mwt.data` and `exporter` all
build on these; this package imports only the standard library, numpy, onnx and Pillow.
"""
