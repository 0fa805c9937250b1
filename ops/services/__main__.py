"""``python -m ops.services``: run the services sub-app on its own (same as ``nxem services``)."""

from __future__ import annotations

import logging

from ops.services.cli import services_app

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    services_app(prog_name="nxem services")
