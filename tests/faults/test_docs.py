"""docs/reliability.md shows the catalogue's matrix exactly.

Regenerate the table after a change to the catalogue with
``python tests/faults/test_docs.py`` (it rewrites the part between the markers).
"""

from __future__ import annotations

import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
BEGIN = "<!-- matrix: generated from tests/faults/fault_catalogue.py -->\n"
END = "<!-- end of matrix -->\n"


def _parts(text: str) -> tuple[str, str, str]:
    head, rest = text.split(BEGIN, 1)
    table, tail = rest.split(END, 1)
    return head, table, tail


def test_the_docs_table_is_the_catalogue() -> None:
    from fault_catalogue import markdown_table

    _, table, _ = _parts(DOC.read_text())
    assert table == markdown_table(), "run: python tests/faults/test_docs.py"


if __name__ == "__main__":
    sys.path[:0] = [str(DOC.parents[1] / "tests"), str(DOC.parents[1] / "tests" / "faults")]
    from fault_catalogue import markdown_table

    head, _, tail = _parts(DOC.read_text())
    DOC.write_text(head + BEGIN + markdown_table() + END + tail)
