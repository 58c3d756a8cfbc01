"""One line that names a problem and its fix; hidden while there is none."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static


class ProblemBanner(Static):
    DEFAULT_CSS = """
    ProblemBanner { height: 1; width: 1fr; display: none; }
    ProblemBanner.-shown { display: block; }
    """

    problem: reactive[str] = reactive("")

    def watch_problem(self, problem: str) -> None:
        self.set_class(bool(problem), "-shown")

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        if self.problem:
            text.append(" ⚠ ", style="bold reverse")
            text.append(" " + self.problem)
        return text
