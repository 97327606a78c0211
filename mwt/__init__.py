"""mwt: modularizing-while-training for CNNs.

The layers, lowest first (tests/test_layers.py holds every module to them):
- `mwt.core`: errors, atomic writes, the module file format, image decoding; torch-free;
- `runtime`: modules on onnxruntime, composed and served; torch-free, stands on the core;
- `mwt` (models, data, training, modularization): torch, on the core;
- `exporter`: the compiler, from a checkpoint to a module file;
- `mwt.cli` and `mwt.module_latency`: the commands, which may use everything.
This top-level module imports nothing, so the torch-free layers can use `mwt.core` without torch.
"""

__version__ = "0.1.0"
