"""`python -m mwt` runs the `mwt` command (as torchrun needs: `torchrun ... -m mwt train ...`)."""

from mwt.cli import main

main()
