"""``python -m simulators …``: the ``simulate`` commands without the ``nxem`` wrapper."""

from simulators.cli import main

main()
