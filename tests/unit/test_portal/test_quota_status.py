"""The portal's quota status is the rules' judgment (analytics.quotas.level_of), not a copy."""

from __future__ import annotations

import pytest

from portal.figures import quota_status

CARBIDE = {"level1": 805.0, "level2": 823.0, "level3": 940.0}  # GB 21343-2023 表1, kgce/t


@pytest.mark.parametrize(("value", "status"), [
    (805.4, "level 1 (advanced)"),  # 805.4 -> 805 at whole kgce/t: within 1级
    (823.0, "level 2 (new-build)"),
    (940.0, "level 3 (within limit)"),  # on the limit is compliant
    (940.4, "level 3 (within limit)"),  # 940.4 -> 940 (a plain comparison called it over the limit)
    (940.6, "exceeds limit"),  # 941 > 940
    (None, "no data"),
])
def test_quota_status_at_the_standards_precision(value: float | None, status: str) -> None:
    assert quota_status(value, CARBIDE, "calcium_carbide") == status


def test_unknown_product_or_levels_is_no_data() -> None:
    assert quota_status(900.0, {}, "calcium_carbide") == "no data"
    assert quota_status(900.0, CARBIDE, "steel") == "no data"
