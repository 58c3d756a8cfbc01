"""Diagnostics: the event link, the websocket URL's age and expiry, rate budgets left, the
inbound listener and the Store's outbox. Support staff read this over SSH."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import Footer, Static


def _seconds(value: Any) -> str:
    if value is None:
        return "—"
    value = float(value)
    if abs(value) >= 3600:
        return f"{value / 3600:.1f} h"
    if abs(value) >= 60:
        return f"{value / 60:.1f} min"
    return f"{value:.0f} s"


class DiagnosticsView(Static):
    info: reactive[dict[str, Any]] = reactive(dict, always_update=True)

    def render(self) -> RenderableType:
        info = self.info
        tel = info.get("telephony") or {}
        link = Table.grid(padding=(0, 2))
        link.add_column(style="dim", no_wrap=True)
        link.add_column()
        link.add_row("Event link", f"{tel.get('status') or 'unknown'} ({tel.get('mode') or '?'})")
        if tel.get("detail"):
            link.add_row("Detail", str(tel["detail"]))
        link.add_row("Websocket", str(tel.get("websocket_id") or "—"))
        link.add_row("URL age", _seconds(tel.get("websocket_url_age_s")))
        link.add_row("URL expires in", _seconds(tel.get("websocket_url_expires_in_s")))
        link.add_row("Connections open", str(tel.get("connections_open", "—")))
        link.add_row("Reconnects", str(tel.get("reconnects", "—")))
        link.add_row("Events / duplicates dropped", f"{tel.get('events', '—')} / {tel.get('duplicates_dropped', '—')}")
        link.add_row("Calls to reconcile", str(tel.get("calls_to_reconcile", "—")))
        budgets = Table(title="Dialpad rate budgets", title_justify="left", box=None, header_style="dim")
        for column in ("operation", "left", "limit", "per", "retry in"):
            budgets.add_column(column)
        for name, b in sorted((tel.get("budgets") or {}).items()):
            left = f"{b.get('remaining')}" + (" (Dialpad said wait)" if b.get("blocked_by_dialpad") else "")
            budgets.add_row(name, left, str(b.get("limit")), _seconds(b.get("period_s")),
                            _seconds(b.get("retry_in_s")) if b.get("retry_in_s") else "—")
        other = Table.grid(padding=(0, 2))
        other.add_column(style="dim", no_wrap=True)
        other.add_column()
        other.add_row("Inbound listener", str(info.get("inbound") or "not running"))
        outbox = info.get("outbox")
        other.add_row("Store outbox", ", ".join(f"{k}: {v}" for k, v in outbox.items()) if outbox else "—")
        other.add_row("Store", str(info.get("store") or "—"))
        return Group(Text("Telephony", style="bold underline"), link, Text(""), budgets, Text(""),
                     Text("Console", style="bold underline"), other)


class DiagnosticsScreen(ModalScreen[None]):
    """Read-only; the App refreshes ``info`` every second while this is open."""

    BINDING_GROUP_TITLE = "Diagnostics"
    BINDINGS = [
        Binding("escape", "close", "Close", id="diagnostics-close", tooltip="Back to where you were"),
        Binding("q", "close", "Close", show=False, id="diagnostics-close-q", tooltip="Back to where you were"),
    ]
    DEFAULT_CSS = """
    DiagnosticsScreen { align: center middle; }
    DiagnosticsScreen > VerticalScroll { width: 90%; max-width: 110; height: 90%; border: round $primary;
                                         background: $panel; padding: 0 1; }
    """

    class RefreshRequested(Message):
        pass

    info: reactive[dict[str, Any]] = reactive(dict, always_update=True)

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield DiagnosticsView().data_bind(DiagnosticsScreen.info)
        yield Footer()

    def on_mount(self) -> None:
        self.post_message(self.RefreshRequested())
        self.set_interval(1.0, lambda: self.post_message(self.RefreshRequested()), name="diagnostics-refresh")

    def action_close(self) -> None:
        self.dismiss(None)
