"""The live event log: bounded, newest at the bottom."""

from __future__ import annotations

from textual.widgets import RichLog


class EventLog(RichLog):
    """A bounded log of what happened. Callers write one line per fact."""

    DEFAULT_CSS = """
    EventLog { height: 1fr; }
    """

    def __init__(self, *, max_lines: int = 500, **kwargs: object) -> None:
        super().__init__(max_lines=max_lines, wrap=False, markup=False, highlight=False, **kwargs)  # type: ignore[arg-type]
