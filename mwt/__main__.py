"""`python -m mwt` runs the `mwt` command (as torchrun needs: `torchrun ... -m mwt train ...`)."""

from cli import main

main()
