"""What-if runs: the fixes BENCHMARKS.md recommends, applied *in the benchmark's process only*.

pa_tui/ is not edited by the benchmarks. To show what a recommended fix would buy,
``python -m bench --what-if NAME`` (or ``PA_TUI_BENCH_WHATIF=NAME``) patches the
classes in the console's process before the App is built, and the table says so.
The patches mirror the fixes described in BENCHMARKS.md; they are evidence for a
change in pa_tui, not a substitute for it.

- ``footer``: ConsoleScreen's ``call``/``match``/``patient`` reactives stop being
  ``bindings=True`` (which makes Textual's Footer recompose every key on *every*
  call event); the screen refreshes its bindings only when what ``check_action``
  reads changes (call active or not, match kind, a chosen patient or not).
- ``keybar``: the screens' Footer (one FooterKey widget per binding, all unmounted
  and mounted again on every bindings change — and, through Textual's data_bind
  watchers, never freed) is replaced by one Static that renders the same hints as text.
- ``other-calls``: ``PaTuiApp._refocus`` keeps the set of active calls as they change
  instead of counting them with ``CallBook.active()`` (a list of every call) per event.
- ``log-ref``: ``ConsoleScreen.log_line`` keeps its EventLog instead of querying the
  DOM for it on every event.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

ENV = "PA_TUI_BENCH_WHATIF"


def _footer() -> None:
    from pa_tui.screens.console import ConsoleScreen

    for name in ("call", "match", "patient"):
        ConsoleScreen.__dict__[name]._bindings = False

    def facts(screen: Any) -> tuple[Any, ...]:
        call, match = screen.call, screen.match
        return (call is not None and call.is_active, match.kind if match is not None else None, screen.patient is not None)

    def watch(self: Any) -> None:
        now = facts(self)
        if getattr(self, "_bench_binding_facts", None) != now:
            self._bench_binding_facts = now
            self.refresh_bindings()

    ConsoleScreen.watch_call = watch  # type: ignore[attr-defined]
    ConsoleScreen.watch_match = watch  # type: ignore[attr-defined]
    ConsoleScreen.watch_patient = watch  # type: ignore[attr-defined]


def _keybar() -> None:
    from rich.text import Text
    from textual.widgets import Static

    import importlib
    import pkgutil

    import pa_tui.screens

    class KeyBar(Static):
        """The console's key hints as one line of text: re-rendered, never recomposed."""

        DEFAULT_CSS = "KeyBar { dock: bottom; height: 1; background: $footer-background; }"

        def on_mount(self) -> None:
            self.screen.bindings_updated_signal.subscribe(self, self._changed)
            self._changed(self.screen)

        def on_unmount(self) -> None:
            self.screen.bindings_updated_signal.unsubscribe(self)

        def _changed(self, screen: Any) -> None:
            if screen is not self.screen:
                return
            text = Text(no_wrap=True, overflow="ellipsis")
            for _node, binding, enabled, _tooltip in screen.active_bindings.values():
                if binding.show:
                    text.append(f" {self.app.get_key_display(binding)} ", style="bold reverse" if enabled else "dim")
                    text.append(f" {binding.description} ", style="" if enabled else "dim")
            self.update(text, layout=False)

    for info in pkgutil.iter_modules(pa_tui.screens.__path__):
        module = importlib.import_module(f"pa_tui.screens.{info.name}")
        if hasattr(module, "Footer"):
            module.Footer = KeyBar  # type: ignore[attr-defined]


def _other_calls() -> None:
    from pa_tui.app import PaTuiApp
    from pa_tui.domain.calls import CallPhase
    from pa_tui.widgets.patient_card import LookupState

    def _refocus(self: Any, changed: Any) -> None:
        # PaTuiApp._refocus as of this writing, but the count of other active calls is kept
        # in a set updated with the call that changed (O(1)) instead of walking every call.
        active: set[str] = self.__dict__.setdefault("_bench_active", set())
        if changed.is_active:
            active.add(changed.id)
        else:
            active.discard(changed.id)
        current = self.book.calls.get(self.focused_call_id) if self.focused_call_id else None
        take = (
            current is None
            or current.id == changed.id
            or (not current.is_active and changed.is_active)
            or (changed.phase is CallPhase.ACTIVE and current.phase is not CallPhase.ACTIVE)
            or (changed.phase is CallPhase.RINGING and current.phase is not CallPhase.ACTIVE)
        )
        focus = changed if take else current
        if focus.id != self.focused_call_id:
            self.focused_call_id = focus.id
            self.home.caller = focus.ani
            self.home.patient = self.chosen.get(focus.id)
            self.home.verified = self.verified.get(focus.id, "")
            match = self.matches.get(focus.id)
            self.home.match = match
            if match is not None:
                self.home.lookup = LookupState.DONE
            elif focus.id in self.lookups_started:
                self.home.lookup = LookupState.SEARCHING
            else:
                self.home.lookup = LookupState.DONE if focus.ani is not None else LookupState.IDLE
        self.home.call = focus
        self.home.other_calls = len(active) - (1 if focus.id in active else 0)

    PaTuiApp._refocus = _refocus  # type: ignore[method-assign]


def _log_ref() -> None:
    from pa_tui.screens.console import ConsoleScreen
    from pa_tui.widgets.event_log import EventLog

    original = ConsoleScreen.log_line

    def log_line(self: Any, line: str, masked: str | None = None) -> None:
        log = self.__dict__.get("_bench_log")
        if log is None or not log.is_attached:
            logs = self.query(EventLog)
            if not logs:
                original(self, line, masked)
                return
            log = self.__dict__["_bench_log"] = logs.first()
        log.add(line, masked)

    ConsoleScreen.log_line = log_line  # type: ignore[method-assign]


PATCHES: dict[str, Callable[[], None]] = {
    "footer": _footer,
    "keybar": _keybar,
    "other-calls": _other_calls,
    "log-ref": _log_ref,
}


def apply_from_env() -> list[str]:
    names = [n.strip() for n in os.environ.get(ENV, "").split(",") if n.strip()]
    for name in names:
        if name not in PATCHES:
            raise SystemExit(f"unknown what-if {name!r}; known: {', '.join(PATCHES)}")
        PATCHES[name]()
    return names


__all__ = ["ENV", "PATCHES", "apply_from_env"]
