"""RowCache: a reload reuses the object of every unchanged row and rebuilds changed ones."""

from __future__ import annotations

from storage.registry import RowCache


def test_unchanged_rows_keep_their_objects_and_changed_rows_are_rebuilt() -> None:
    made: list[tuple[object, ...]] = []

    def make(r: tuple[object, ...]) -> dict[str, object]:
        made.append(r)
        return {"id": r[0], "unit": r[1]}

    cache: RowCache[object, dict[str, object]] = RowCache(make, lambda r: r[0])
    first = cache.build([(1, "kWh"), (2, "kWh"), (3, "t")])
    second = cache.build([(1, "kWh"), (2, "MWh"), (4, "GJ")])  # 2 changed, 3 gone, 4 new
    assert second[1] is first[1]
    assert second[2] is not first[2] and second[2]["unit"] == "MWh"
    assert set(second) == {1, 2, 4}
    assert made == [(1, "kWh"), (2, "kWh"), (3, "t"), (2, "MWh"), (4, "GJ")]  # 5 builds, not 6
