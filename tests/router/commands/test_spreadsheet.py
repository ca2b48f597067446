"""CSV cells of the exports: text a spreadsheet would run is kept as text, numbers stay
numbers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from router.commands.spreadsheet import spreadsheet_cell


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("-1+1", "'-1+1"),
        ("+8613800138000", "'+8613800138000"),
        (Decimal("-618.00"), "-618.00"),
        (-3, -3),
        ("01062345678", "01062345678"),
        (None, ""),
    ],
)
def test_text_that_would_run_is_quoted_and_a_negative_amount_is_not(
    value: object, cell: object
) -> None:
    assert spreadsheet_cell(value) == cell
