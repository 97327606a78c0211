"""mwt: modularizing-while-training for CNNs.

This top-level module imports nothing heavy, so that the torch-free `runtime` package can use
`mwt.errors` and `mwt.atomic` without pulling in torch.
"""

__version__ = "0.1.0"
