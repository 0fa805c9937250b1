"""``python -m nxem``: the same command line as the ``nxem`` script."""

from nxem.cli import app

app(prog_name="nxem")
