"""The ACL text generated from the registry (pure part of collector.access)."""

from __future__ import annotations

import pytest

from collector.access import GatewayAccount, render_acl
from nxem.errors import ConfigError

ENT_A, ENT_B = "91640500MA76L8XK3A", "91640500MA76L8XL15"


def _blocks(text: str) -> list[list[str]]:
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    out: list[list[str]] = []
    for ln in lines:
        if ln.startswith("user "):
            out.append([ln])
        else:
            out[-1].append(ln)
    return out


def test_each_gateway_writes_only_its_own_topic_and_collectors_only_read() -> None:
    acl = render_acl([GatewayAccount("gw-2", ENT_B), GatewayAccount("gw-1", ENT_A)], ["nxem-collector-1"])
    assert _blocks(acl) == [
        ["user nxem-collector-1", "topic read nxem/v1/+/+/readings"],
        ["user gw-1", f"topic write nxem/v1/{ENT_A}/gw-1/readings"],  # sorted by gateway id
        ["user gw-2", f"topic write nxem/v1/{ENT_B}/gw-2/readings"],
    ]
    # nothing is granted to everyone: no 'pattern' lines, no top-level 'topic' before a 'user'
    assert "pattern" not in acl
    assert acl.split("user ", 1)[0].count("topic") == 0


@pytest.mark.parametrize("bad", ["gw 1", "gw/1", "gw+", "#", "gw\ntopic readwrite #", "", "-gw", "g" * 65])
def test_ids_that_could_widen_the_acl_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="cannot be an MQTT user"):
        render_acl([GatewayAccount(bad, ENT_A)], ["nxem-collector-1"])


def test_a_user_listed_twice_is_refused() -> None:
    with pytest.raises(ConfigError, match="listed twice"):
        render_acl([GatewayAccount("nxem-collector-1", ENT_A)], ["nxem-collector-1"])
