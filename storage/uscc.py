"""Unified social credit code (统一社会信用代码) validation per GB 32100-2015. Pure.

Layout of the 18 characters: 1 registration authority, 2 entity type, 3-8 administrative
division (GB/T 2260), 9-17 organisation code (GB 11714), 18 check character. The check
character C18 satisfies ``(sum(value(c_i) * W_i for i in 1..17) + value(C18)) % 31 == 0``
with ``W_i = 3^(i-1) mod 31`` (§5) over the 31-character set without I, O, Z, S, V (§4.2).
"""

from __future__ import annotations

from typing import Final

#: GB 32100-2015 §4.2: the code's character set; a character's value is its index here.
CHARSET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE: Final[dict[str, int]] = {c: i for i, c in enumerate(CHARSET)}
#: GB 32100-2015 §5: weight of position i (1-based) is 3^(i-1) mod 31.
WEIGHTS: Final[tuple[int, ...]] = tuple(pow(3, i, 31) for i in range(17))


def check_character(first17: str) -> str:
    """The 18th character for the given first 17 characters (ValueError when not computable)."""
    if len(first17) != 17:
        raise ValueError(f"need 17 characters, got {len(first17)}")
    total = 0
    for pos, (ch, weight) in enumerate(zip(first17, WEIGHTS, strict=True), start=1):
        value = _VALUE.get(ch)
        if value is None:
            raise ValueError(f"character {ch!r} at position {pos} is not in the GB 32100 character set")
        total += value * weight
    return CHARSET[(31 - total % 31) % 31]


def problem(code: str) -> str | None:
    """Why ``code`` is not a valid USCC, or None when it is."""
    if len(code) != 18:
        return f"must be 18 characters, got {len(code)}"
    for pos, ch in enumerate(code, start=1):
        if ch not in _VALUE:
            return f"character {ch!r} at position {pos} is not in the GB 32100 character set"
    expected = check_character(code[:17])
    if code[17] != expected:
        return f"check character is {code[17]!r}, expected {expected!r}"
    return None


def is_valid(code: str) -> bool:
    """True when ``code`` is 18 GB 32100 characters with a correct check character."""
    return problem(code) is None
