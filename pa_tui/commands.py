"""The command palette (Ctrl+P): every action of the current context, with or without a key.

Command titles never contain PHI: they name the action, not the patient.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from pa_tui.app import PaTuiApp

Command = tuple[str, str, Callable[[], object]]  # title, help, callback


class ContextCommands(Provider):
    """Commands that fit the screen in front of the agent."""

    def _commands(self) -> list[Command]:
        from pa_tui.screens.console import ConsoleScreen
        from pa_tui.screens.patient import PatientScreen

        app: PaTuiApp = self.app  # type: ignore[assignment]
        screen = self.screen
        commands: list[Command] = []
        if isinstance(screen, ConsoleScreen):
            call = screen.call
            active = call is not None and call.is_active
            caller_known = screen.patient is not None or (screen.match is not None and screen.match.kind == "single")
            if caller_known:
                commands += [
                    ("Open the caller's record", "Show the record (after verification)",
                     partial(app.run_intent, "open-record")),
                    ("Verify the caller", "Ask for date of birth and one more identifier",
                     partial(app.run_intent, "verify")),
                ]
            if screen.match is not None and screen.match.kind == "household":
                commands.append(("Choose the household member who is calling", "Pick from the patients on this number",
                                 partial(app.run_intent, "choose")))
            commands.append(("Search patients", "By name, phone, date of birth or patient ID",
                             partial(app.run_intent, "search")))
            commands.append(("Dial a number", "Call out from your Dialpad devices", partial(app.run_intent, "dial")))
            if active:
                commands += [
                    ("Transfer the call", "The patient context follows the call", partial(app.run_intent, "transfer")),
                    ("Hang up the call", "End the current call", partial(app.run_intent, "hangup")),
                ]
            if call is not None:
                commands += [
                    ("Set wrap-up codes", "Dialpad call labels for this call", partial(app.run_intent, "wrapup")),
                    ("Queue a call back", "To this caller, in the call center", partial(app.run_intent, "callback")),
                ]
            commands += [
                ("Change duty status", "On or off duty, with a reason", partial(app.run_intent, "status")),
                ("Open the Dialpad mini dialer", "In the browser, which carries the call audio",
                 partial(app.run_intent, "mini-dialer")),
            ]
        elif isinstance(screen, PatientScreen):
            for key, label in (("summary", "Summary"), ("appointments", "Appointments"), ("referrals", "Referrals"),
                               ("billing", "Billing"), ("prescriptions", "Prescriptions"),
                               ("care-team", "Care team"), ("notes", "Notes")):
                commands.append((f"Show {label}", f"Switch to the {label} tab", partial(screen.action_tab, key)))
            commands += [
                ("Save the note", "Save the note being written", screen.action_save_note),
                ("Open the chart in the EHR", "Uses the site's chart link", screen.action_open_chart),
                ("Back to the console", "The note draft is kept", screen.action_back),
            ]
            if screen.call_id is not None and not screen.verification:
                commands.append(("Verify the caller", "Unlock the record", screen.action_verify))
        commands += [
            ("Toggle the privacy mask", "Hide PHI on screen for screen sharing", app.action_toggle_mask),
            ("Show keys", "Every binding on this screen", app.action_help),
            ("Diagnostics", "Event link, websocket expiry, rate budgets, listener, outbox", app.action_diagnostics),
        ]
        return commands

    async def discover(self) -> Hits:
        for title, help_text, callback in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)
