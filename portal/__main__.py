"""``python -m portal``: serve the portal with uvicorn on ``NXEM_PORTAL_HOST:NXEM_PORTAL_PORT``.

Users are added with ``nxem portal-user NAME ROLE [ENTERPRISE_ID]`` (ops/cli.py: it connects
as the database superuser, which the portal never holds).
"""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn

from portal.app import create_app
from portal.settings import PortalSettings

log = logging.getLogger("portal")


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m portal", description=__doc__).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = PortalSettings()  # fails here, naming the variable, on a bad value
    app = create_app(settings)
    log.info("portal listening url=http://%s:%s/", settings.portal_host, settings.portal_port)
    # Forwarded headers are believed only from NXEM_PORTAL_TRUSTED_PROXIES, by the app itself
    # (portal.app): uvicorn's own handling would trust 127.0.0.1 by default.
    uvicorn.run(app, host=settings.portal_host, port=settings.portal_port, log_level="info",
                proxy_headers=False, server_header=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
