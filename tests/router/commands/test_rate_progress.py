"""`hotline400 rate` redraws its progress bar on a terminal only: in a log or a pipe the
carriage-return redraws would be noise."""

import io

from router.commands.rate import ProgressBar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_is_drawn_on_a_terminal() -> None:
    terminal = Terminal()
    bar = ProgressBar(terminal, width=4)
    bar(1, 2)
    bar(2, 2)
    assert terminal.getvalue() == "\r[##  ] 1/2\r[####] 2/2\n"


def test_nothing_is_drawn_into_a_file_or_a_pipe() -> None:
    piped = io.StringIO()
    bar = ProgressBar(piped)
    bar(1, 2)
    bar(2, 2)
    assert piped.getvalue() == ""
