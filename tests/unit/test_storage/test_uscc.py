"""GB 32100-2015 check character, with hand-worked rows."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage import uscc


def test_weights_are_powers_of_three_mod_31() -> None:
    # 3^0..3^16 mod 31: 1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28
    assert uscc.WEIGHTS == (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def test_worked_example() -> None:
    # 91350100M000100Y4 -> values 9 1 3 5 0 1 0 0 M=21 0 0 0 1 0 0 Y=30 4
    # Σ value×weight = 9·1 + 1·3 + 3·9 + 5·27 + 0 + 1·26 + 0 + 0 + 21·20 + 0 + 0 + 0 + 1·8 + 0 + 0
    #                 + 30·30 + 4·28 = 9+3+27+135+26+420+8+900+112 = 1640
    # 1640 mod 31 = 28 (31·52 = 1612); 31 − 28 = 3 -> '3'
    assert uscc.check_character("91350100M000100Y4") == "3"
    assert uscc.is_valid("91350100M000100Y43")


@pytest.mark.parametrize(("code", "why"), [
    ("91640500MA76L8XK3A", None),
    ("91640181MA76L8XK30", None),  # 宁东 (灵武 640181)
    ("91640500MA76L8XK3Q", "check character is 'Q', expected 'A'"),
    ("91640500MA76L8XK3", "must be 18 characters, got 17"),
    ("91640500MA76L8XK3AA", "must be 18 characters, got 19"),
    ("91640500MA76L8XKIA", "character 'I' at position 17 is not in the GB 32100 character set"),
    ("91640500ma76l8xk3a", "character 'm' at position 9 is not in the GB 32100 character set"),
    ("", "must be 18 characters, got 0"),
])
def test_problem(code: str, why: str | None) -> None:
    assert uscc.problem(code) == why


def test_check_character_needs_17_valid_characters() -> None:
    with pytest.raises(ValueError, match="17"):
        uscc.check_character("123")
    with pytest.raises(ValueError, match="'O'"):
        uscc.check_character("9164050OMA76L8XK3")


@given(st.text(alphabet=uscc.CHARSET, min_size=17, max_size=17))
def test_appending_the_check_character_makes_a_valid_code(first17: str) -> None:
    code = first17 + uscc.check_character(first17)
    assert uscc.is_valid(code)
    # the weighted sum including the check character is a multiple of 31 (GB 32100 §5)
    values = [uscc.CHARSET.index(c) for c in code]
    assert (sum(v * w for v, w in zip(values, uscc.WEIGHTS, strict=False)) + values[17]) % 31 == 0


@given(st.text(alphabet=uscc.CHARSET, min_size=17, max_size=17), st.sampled_from(uscc.CHARSET))
def test_any_other_last_character_is_invalid(first17: str, last: str) -> None:
    assert uscc.is_valid(first17 + last) == (last == uscc.check_character(first17))
