"""Which pg_hba lines could let a client in as the password-less schema owner."""

from __future__ import annotations

from storage.roles import owner_hba_exposure

OWNER = "nxem_owner"


def test_the_docker_images_default_lines_expose_only_local_trust() -> None:
    # timescale/timescaledb (postgres image): local trust, host scram for everyone
    rules = [(1, "local", ["all"], ["all"], None, "trust"), (2, "host", ["all"], ["all"], "all", "scram-sha-256")]
    assert owner_hba_exposure(rules) == ["pg_hba.conf line 1: local all all trust"]


def test_reject_lines_first_shadow_everything_after_them() -> None:
    rules = [(1, "local", ["all"], [OWNER], None, "reject"), (2, "host", ["all"], [OWNER], "all", "reject"),
             (3, "local", ["all"], ["all"], None, "peer"), (4, "hostssl", ["all"], ["all"], "all", "cert")]
    assert owner_hba_exposure(rules) == []


def test_a_narrow_reject_shadows_nothing() -> None:
    rules = [(1, "hostssl", ["all"], [OWNER], "all", "reject"),  # TCP without SSL is still open
             (2, "host", ["nxem"], [OWNER], "all", "reject"),  # one database only
             (3, "host", ["all"], ["all"], "10.0.0.0/8", "ldap"),
             (4, "local", ["all"], ["nxem_portal"], None, "trust")]  # not the owner
    assert owner_hba_exposure(rules) == ["pg_hba.conf line 3: host all all 10.0.0.0/8 ldap"]
