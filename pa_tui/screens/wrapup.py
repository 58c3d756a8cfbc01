"""Wrap-up codes for a call (Dialpad call labels): pick one or more, Enter sets them."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, SelectionList, Static


class WrapupScreen(ModalScreen[tuple[str, ...] | None]):
    """Returns the chosen codes, or None when cancelled."""

    BINDING_GROUP_TITLE = "Wrap-up"
    BINDINGS = [
        Binding("enter", "done", "Set codes", priority=True, id="wrapup-set", tooltip="Set the chosen codes on the call"),
        Binding("escape", "cancel", "Cancel", id="wrapup-cancel", tooltip="Close without setting codes"),
        Binding("q", "cancel", "Cancel", show=False, id="wrapup-cancel-q", tooltip="Close without setting codes"),
    ]
    DEFAULT_CSS = """
    WrapupScreen { align: center middle; }
    WrapupScreen > Vertical { width: 60; height: auto; max-height: 90%; border: round $primary;
                              background: $panel; padding: 0 1; }
    WrapupScreen SelectionList { height: auto; max-height: 16; }
    """

    def __init__(self, codes: Sequence[str], chosen: Sequence[str] = ()) -> None:
        super().__init__()
        self.codes = tuple(codes)
        self.chosen = set(chosen)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Wrap-up codes for this call — space to tick, Enter to set")
            yield SelectionList[str](*((code, code, code in self.chosen) for code in self.codes), id="wrapup-codes")
        yield Footer()

    def action_done(self) -> None:
        picked = tuple(self.query_one(SelectionList).selected)
        if not picked:
            self.notify("Tick at least one code (space), or Esc to cancel.", severity="warning")
            return
        self.dismiss(picked)

    def action_cancel(self) -> None:
        self.dismiss(None)
