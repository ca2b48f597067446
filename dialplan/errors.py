"""Configuration problems, reported all at once so an admin fixes a file in one pass."""

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a configuration file, located to the line an editor can jump to."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line} {self.field}: {self.message}"


class ConfigError(Exception):
    """A configuration file was refused; carries every problem found, not just the first."""

    problems: list[Problem]

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))

    def summary(self) -> str:
        """One line for a command's error: the first problem, and how many more there are."""
        if not self.problems:
            return "configuration refused"
        more = len(self.problems) - 1
        return f"{self.problems[0]}" + (f" (and {more} more: hotline400 check)" if more else "")
