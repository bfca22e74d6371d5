"""`store/literal_sql`: row literals cut into statements within the size limit."""

from __future__ import annotations

from coffeeshop.store.literal_sql import _sized, in_list


def test_rows_in_a_list_within_the_limit_go_in_one_statement() -> None:
    rows = [f"({n})" for n in range(100)]
    assert list(_sized(rows, limit=10_000)) == [rows]
    assert list(_sized([], limit=10)) == []


def test_rows_over_the_limit_are_cut_whether_listed_or_streamed() -> None:
    rows = [f"({n:04d})" for n in range(100)]  # 6 characters and a comma each
    for given in (rows, iter(rows)):
        chunks = list(_sized(given, limit=70))
        assert [row for chunk in chunks for row in chunk] == rows
        assert all(len(",".join(chunk)) <= 70 for chunk in chunks)
        assert len(chunks) == 10


def test_a_row_over_the_limit_goes_alone() -> None:
    rows = ["(1)", "(" + "9" * 100 + ")", "(2)"]
    assert list(_sized(rows, limit=50)) == [["(1)"], [rows[1]], ["(2)"]]


def test_key_lists_are_hex_literals_within_the_limit() -> None:
    keys = [bytes([n]) * 3 for n in range(20)]
    lists = list(in_list(keys, limit=40))
    assert ",".join(lists).split(",") == [f"X'{k.hex()}'" for k in keys]
    assert all(len(text) <= 40 for text in lists)
