"""A table printed with its columns as wide as their widest cell, whose rows wait in
temporary files until it is printed: `hotline400 rate` prints every price it set or changed,
a row a call, and a month of a million calls must not keep a million rows in memory."""

import io
import os
import tracemalloc

from router.commands.spooled_table import spooled_table

HEADER = ("call id", "total", "tariff")


def test_groups_follow_the_header_in_order_aligned_on_their_widest_cells() -> None:
    """Rows of the second group added before those of the first still come after them; a
    column is as wide as its widest cell in any group or the header; lines end at their last
    character."""
    out = io.StringIO()
    with spooled_table(HEADER, groups=2) as table:
        table.add(("r1", "0.82 -> 0.62", "office@v1 -> office@v2"), group=1)
        table.add(("p1", "- -> 0.32", ""), group=0)
        table.add(("a-long-call-id", "- -> 0.22", "office@v2"), group=0)
        table.add(("r2", "0.10 -> 0.20", "office@v2"), group=1)
        table.write(out)
    assert out.getvalue().splitlines() == [
        "call id         total         tariff",
        "p1              - -> 0.32",
        "a-long-call-id  - -> 0.22     office@v2",
        "r1              0.82 -> 0.62  office@v1 -> office@v2",
        "r2              0.10 -> 0.20  office@v2",
    ]


def test_a_table_without_rows_prints_nothing() -> None:
    out = io.StringIO()
    with spooled_table(HEADER, groups=2) as table:
        table.write(out)
    assert out.getvalue() == ""


def test_cells_come_back_as_they_were_added() -> None:
    """Whatever a tariff id or call id holds (tabs, a line break, Chinese, quotes) is
    printed as the in-memory table printed it."""
    odd = ("c\t1", '"引号"\\', "a\nb")
    out = io.StringIO()
    with spooled_table(HEADER) as table:
        table.add(odd)
        table.write(out)
    assert out.getvalue() == 'call id  total  tariff\nc\t1      "引号"\\  a\nb\n'


def test_rows_wait_on_disk_not_in_memory_and_no_file_is_left_open() -> None:
    """Adding 50,000 more rows moves the memory Python holds by less than 64 KiB (a list
    of them would take some 20 MB); once the table is closed, its files are too."""
    before = len(os.listdir("/proc/self/fd"))
    row = ("1764547200.123456", "0.82 -> 0.62", "office@v1 -> office@v2")
    tracemalloc.start()
    try:
        with spooled_table(HEADER, groups=2) as table:
            for n in range(1000):
                table.add(row, group=n % 2)
            held = tracemalloc.get_traced_memory()[0]
            for n in range(50_000):
                table.add(row, group=n % 2)
            grown = tracemalloc.get_traced_memory()[0] - held
            out = io.StringIO()
            table.write(out)
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024
    assert len(out.getvalue().splitlines()) == 51_001
    assert len(os.listdir("/proc/self/fd")) == before
