"""mwt: modularizing-while-training for CNNs.

The layers, lowest first (tests/test_layers.py holds every module to them):
- `mwt.core`: errors, atomic writes, the module file format, image decoding; torch-free;
- `runtime`: modules on onnxruntime, composed and served; torch-free, stands on the core;
- `mwt` (models, data, training, modularization, the module selection, evaluation): torch, on the core;
- `exporter`: the compiler (a selection's graph in, a module out) and the export step around it;
- `mwt.cli` and `mwt.module_latency`: the commands, which may use everything.
This top-level module imports nothing, so the torch-free layers can use `mwt.core` without torch.
"""

__version__ = "0.1.0"
