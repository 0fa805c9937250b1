"""Unified social credit codes (统一社会信用代码, GB 32100-2015) for simulated enterprises.

Pure. Written here on purpose (not imported from ``storage``) so the simulators stay an
independent source of truth. Layout of the 18 characters:

* 1: registration authority (``9`` = market regulation / industry and commerce)
* 2: entity type (``1`` = enterprise)
* 3-8: administrative division code (GB/T 2260), e.g. ``640500`` 中卫
* 9-17: organisation code (GB 11714-1997), whose 9th character is its own check digit
* 18: check character over 1-17, weights 3^i mod 31, charset without I, O, Z, S, V.
"""

from __future__ import annotations

import random
from typing import Final

#: GB 32100-2015 §4.2 character set (31 characters; I, O, Z, S, V are never used).
CHARSET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE: Final = {c: i for i, c in enumerate(CHARSET)}
#: GB 32100-2015 §5: weight of position i (1-based) = 3^(i-1) mod 31.
WEIGHTS: Final = tuple(pow(3, i, 31) for i in range(17))
#: GB 11714-1997 organisation-code check weights.
_ORG_WEIGHTS: Final = (3, 7, 9, 10, 5, 8, 4, 2)

#: GB/T 2260 division codes used for the simulated fleet. 宁东 lies in 灵武 (640181, 银川).
DIVISIONS: Final[dict[str, str]] = {
    "银川": "640100",
    "石嘴山": "640200",
    "吴忠": "640300",
    "固原": "640400",
    "中卫": "640500",
    "宁东": "640181",
}


def check_char(first17: str) -> str:
    """The 18th character of a USCC whose first 17 characters are given.

    >>> check_char("91350100M000100Y4")
    '3'
    """
    if len(first17) != 17:
        raise ValueError(f"need 17 characters, got {len(first17)}")
    try:
        total = sum(_VALUE[c] * w for c, w in zip(first17, WEIGHTS, strict=True))
    except KeyError as err:
        raise ValueError(f"character {err.args[0]!r} is not in the GB 32100 charset") from err
    return CHARSET[(31 - total % 31) % 31]


def is_valid(code: str) -> bool:
    """True when ``code`` has 18 GB 32100 characters and a correct check character."""
    if len(code) != 18 or any(c not in _VALUE for c in code):
        return False
    return check_char(code[:17]) == code[17]


def _org_check(body8: str) -> str | None:
    """GB 11714 check character of an 8-character organisation-code body, or None if unusable."""
    total = sum((int(c) if c.isdigit() else ord(c) - 55) * w for c, w in zip(body8, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    ch = "X" if check == 10 else "0" if check == 11 else str(check)
    return ch if ch in _VALUE else None


def generate(rng: random.Random, city: str) -> str:
    """A realistic, valid USCC for an enterprise registered in ``city``."""
    division = DIVISIONS[city]
    body_chars = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    while True:
        # Newer organisation codes start with "MA" (assigned after the 2015 reform).
        body = "MA" + "".join(rng.choice(body_chars) for _ in range(6))
        org_check = _org_check(body)
        if org_check is not None:
            break
    first17 = "91" + division + body + org_check
    return first17 + check_char(first17)
