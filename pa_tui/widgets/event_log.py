"""The live event log: bounded, newest at the bottom, and re-drawn when the privacy mask flips."""

from __future__ import annotations

from collections import deque

from textual.reactive import reactive
from textual.widgets import RichLog


class EventLog(RichLog):
    """A bounded log of what happened. Each entry has a plain and a masked rendering."""

    DEFAULT_CSS = """
    EventLog { height: 1fr; }
    """

    masked: reactive[bool] = reactive(False)

    def __init__(self, *, max_lines: int = 500, **kwargs: object) -> None:
        super().__init__(max_lines=max_lines, wrap=False, markup=False, highlight=False, **kwargs)  # type: ignore[arg-type]
        self._entries: deque[tuple[str, str]] = deque(maxlen=max_lines)

    def add(self, plain: str, masked: str | None = None) -> None:
        entry = (plain, masked if masked is not None else plain)
        self._entries.append(entry)
        self.write(entry[1] if self.masked else entry[0])

    @property
    def texts(self) -> list[str]:
        """What the log shows now, oldest first."""
        return [m if self.masked else p for p, m in self._entries]

    def watch_masked(self) -> None:
        self.clear()
        for plain, masked in self._entries:
            self.write(masked if self.masked else plain)
