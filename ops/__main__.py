"""``python -m ops``: the same command line as the ``nxem`` script."""

from ops.cli import main

main()
