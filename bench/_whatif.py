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
- ``keybar``: the console's Footer (one FooterKey widget per binding, all unmounted
  and mounted again on every bindings change) is replaced by one Static that renders
  the same hints as text.
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

    import pa_tui.screens.console as console

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
            self.update(text)

    console.Footer = KeyBar  # type: ignore[attr-defined,misc]


PATCHES: dict[str, Callable[[], None]] = {"footer": _footer, "keybar": _keybar}


def apply_from_env() -> list[str]:
    names = [n.strip() for n in os.environ.get(ENV, "").split(",") if n.strip()]
    for name in names:
        if name not in PATCHES:
            raise SystemExit(f"unknown what-if {name!r}; known: {', '.join(PATCHES)}")
        PATCHES[name]()
    return names


__all__ = ["ENV", "PATCHES", "apply_from_env"]
