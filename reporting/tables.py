"""The report's raw tables: each shown as a dataframe with a CSV download of exactly its rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

Row = dict[str, Any]


def frame(rows: Sequence[Row]) -> pd.DataFrame:
    # A DataFrame, not the list: Streamlit would otherwise inspect every row to guess the format (a third of a
    # render's time, measured with py-spy).
    return pd.DataFrame.from_records(list(rows))


def csv_bytes(table: pd.DataFrame) -> bytes:
    """The table as UTF-8 CSV with a header row (times are already labelled UTC text)."""
    return table.to_csv(index=False).encode("utf-8")


def file_name(name: str) -> str:
    return f"clickpulse-{name}.csv"


def show(rows: Sequence[Row], name: str, empty: str = "no rows") -> None:
    """The rows as a table with a "Download CSV" button (`name` keys the button and names the file), or `empty`."""
    if not rows:
        st.caption(empty)
        return
    table = frame(rows)
    st.dataframe(table, hide_index=True)
    # "ignore": downloading does not rerun the page (a rerun would reread MongoDB for nothing).
    st.download_button("Download CSV", csv_bytes(table), file_name=file_name(name), mime="text/csv",
                       key=f"csv_{name}", on_click="ignore", icon=":material/download:")
