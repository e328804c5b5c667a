"""Streamlit entry point: `streamlit run reporting/app.py [-- --mongo-uri URI --database NAME]`."""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> None:
    # `streamlit run reporting/app.py` puts reporting/ (not the repository) on sys.path; add the repository so
    # the `reporting` and `storage` packages import the same way as under pytest or `python -m reporting`.
    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    from reporting.page import main as render

    render()


if __name__ == "__main__":
    main()
