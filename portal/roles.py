"""Who may do what in the portal: the roles, what each holds, who may grant which role, and the
permission every route needs -- one table, enforced by ``portal.auth`` and walked completely by
``tests/integration/test_portal/test_roles.py`` (every route × every role × own/other tenant;
a route without an entry here fails that test, and is refused at run time).

Roles, from the least to the most (each holds everything the one before holds):

* ``enterprise`` -- a user of one key energy-using unit, bound to its 18-character unified
  social credit code; reads only that enterprise (row-level security underneath);
* ``operator`` -- runs the platform: reads every enterprise and the region views, but does not
  acknowledge alerts (acknowledging is a regulatory act of the inspectorate);
* ``inspector`` -- provincial energy-conservation inspector: the region, the live alert board,
  acknowledging alerts;
* ``admin`` -- the inspectors' administrators: what an inspector does, and the only role that
  creates portal users.

Granting: only a role holding ``manage_users`` creates users, and never with a role holding
anything the granting role does not hold (no role grants a role above its own).

Visibility (which enterprises' rows a transaction sees) is not decided here but by
``portal.db.tenant_of``: an ``enterprise`` user its own enterprise, every other role all.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

Role = Literal["enterprise", "operator", "inspector", "admin"]
#: Every role, from the least to the most.
ROLES: Final[tuple[Role, ...]] = get_args(Role)

Permission = Literal["read", "region", "acknowledge", "manage_users"]

#: What each role holds. ``read``: sign in and read what the tenant binding shows (one's own
#: enterprise for an enterprise user, everything for the others); ``region``: region-wide views
#: (overview, alert board); ``acknowledge``: acknowledge alerts; ``manage_users``: list and
#: create portal users.
PERMISSIONS: Final[dict[Role, frozenset[Permission]]] = {
    "enterprise": frozenset({"read"}),
    "operator": frozenset({"read", "region"}),
    "inspector": frozenset({"read", "region", "acknowledge"}),
    "admin": frozenset({"read", "region", "acknowledge", "manage_users"}),
}

_BY_NAME: Final[dict[str, frozenset[Permission]]] = {str(k): v for k, v in PERMISSIONS.items()}

#: The permission each route needs, by (method, path template as routed); ``None``: open to
#: anyone, signed in or not. ``GET`` covers ``HEAD``. ``/static`` is the mounted folder.
ROUTES: Final[dict[tuple[str, str], Permission | None]] = {
    # open: sign-in, the API description, static files
    ("GET", "/login"): None,
    ("POST", "/login"): None,
    ("POST", "/api/v1/auth/token"): None,
    ("GET", "/api/v1/openapi.json"): None,
    ("GET", "/docs"): None,
    ("GET", "/static"): None,
    # probes and metrics (portal.health): no enterprise data, scraped without a session
    ("GET", "/healthz"): None,
    ("GET", "/readyz"): None,
    ("GET", "/metrics"): None,
    # any signed-in user (an enterprise user sees its own enterprise only)
    ("POST", "/api/v1/auth/logout"): "read",
    ("GET", "/api/v1/me"): "read",
    ("GET", "/api/v1/enterprises"): "read",
    ("GET", "/api/v1/sites"): "read",
    ("GET", "/api/v1/sites/{site_id}"): "read",
    ("GET", "/api/v1/meters"): "read",
    ("GET", "/api/v1/meters/{meter_id}/readings"): "read",
    ("GET", "/api/v1/sites/{site_id}/energy"): "read",
    ("GET", "/api/v1/sites/{site_id}/pue"): "read",
    ("GET", "/api/v1/sites/{site_id}/unit-product"): "read",
    ("GET", "/api/v1/alerts"): "read",
    ("GET", "/api/v1/alerts/stream"): "read",
    ("GET", "/api/v1/alerts/{alert_id}"): "read",
    ("GET", "/api/v1/export/{table}.csv"): "read",  # the overview table needs "region" (api.export)
    ("POST", "/logout"): "read",
    ("GET", "/"): "read",
    ("GET", "/alerts"): "read",
    ("GET", "/alerts/{alert_id}"): "read",
    ("GET", "/sites"): "read",
    ("GET", "/sites/{site_id}"): "read",
    # the region
    ("GET", "/api/v1/overview"): "region",
    ("GET", "/board"): "region",
    ("GET", "/overview"): "region",
    # regulatory acts
    ("POST", "/api/v1/alerts/{alert_id}/acknowledge"): "acknowledge",
    ("POST", "/alerts/{alert_id}/acknowledge"): "acknowledge",
    # user management
    ("GET", "/api/v1/users"): "manage_users",
    ("POST", "/api/v1/users"): "manage_users",
}


class NoRule(LookupError):
    """A route without an entry in ``ROUTES`` (refused: the table is the whole policy)."""


def has(role: str, permission: Permission) -> bool:
    """True when ``role`` holds ``permission`` (an unknown role holds nothing)."""
    return permission in _BY_NAME.get(role, frozenset())


def holders(permission: Permission) -> tuple[Role, ...]:
    """The roles holding ``permission``, from the least to the most."""
    return tuple(r for r in ROLES if permission in PERMISSIONS[r])


def can_grant(grantor: str, role: str) -> bool:
    """True when a user with role ``grantor`` may create a user with role ``role``: the grantor
    manages users and the new role holds nothing the grantor does not."""
    if role not in _BY_NAME or not has(grantor, "manage_users"):
        return False
    return _BY_NAME[role] <= _BY_NAME[grantor]


def route_permission(method: str, path: str) -> Permission | None:
    """The permission the route needs (``None``: open); ``NoRule`` when the table has none."""
    key = ("GET" if method == "HEAD" else method, path)
    if key not in ROUTES:
        raise NoRule(f"no access rule for {key[0]} {path}")
    return ROUTES[key]
