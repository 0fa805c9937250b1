"""``python -m portal``: serve the portal with uvicorn on ``NXEM_PORTAL_HOST:NXEM_PORTAL_PORT``.

``python -m portal create-user NAME ROLE [ENTERPRISE_ID]`` adds a user (password read from the
terminal or stdin, never from the command line); it connects as the database superuser.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys

import uvicorn

from portal.app import create_app
from portal.roles import ROLES
from portal.settings import PortalSettings

log = logging.getLogger("portal")


def _create_user(args: argparse.Namespace) -> int:
    import psycopg

    from nxem.services import ServiceSettings, admin_dsn
    from portal.users import UserError, create_user

    password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    with psycopg.connect(admin_dsn(ServiceSettings())) as conn:
        try:
            user = create_user(conn, args.username, password, args.role, args.enterprise_id)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    print(f"created {user.username} ({user.role})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m portal", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    cu = sub.add_parser("create-user", help="add a portal user")
    cu.add_argument("username")
    cu.add_argument("role", choices=list(ROLES))
    cu.add_argument("enterprise_id", nargs="?")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.command == "create-user":
        return _create_user(args)
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
