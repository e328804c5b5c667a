"""Raw tables and their CSV downloads (pure)."""

from __future__ import annotations

import csv
import io

from reporting import tables


def test_the_csv_of_a_table_holds_its_header_and_every_row_as_shown():
    # Given rows as a raw table shows them (times already labelled UTC text, a URL with a comma)
    rows = [{"window start (UTC)": "2026-01-15 10:00:00 UTC", "page_url": "/a,b", "views": 3},
            {"window start (UTC)": "2026-01-15 10:01:00 UTC", "page_url": "/é", "views": 0}]
    # When it is written as CSV
    text = tables.csv_bytes(tables.frame(rows)).decode("utf-8")
    # Then reading it back gives the same columns and values, in order
    assert list(csv.DictReader(io.StringIO(text))) == [{k: str(v) for k, v in r.items()} for r in rows]


def test_a_downloaded_file_is_named_after_its_table():
    assert tables.file_name("top-users") == "clickpulse-top-users.csv"
