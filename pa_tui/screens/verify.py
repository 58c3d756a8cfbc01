"""Verify the caller before PHI shows.

The agent asks, types what the caller says, and sees only ✓ or ✗ per field —
never the value on file, so nothing can be read back to the caller. Enter
checks the answers and, once they pass, returns the :class:`Verification`.
A caller who cannot verify is recorded as a failed Verification (for the
audit); a supervisor override needs a typed reason. Esc returns ``None``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import ClassVar, Final

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Label, Static

from pa_tui.domain.patients import PatientSummary
from pa_tui.domain.phones import CallerNumber
from pa_tui.domain.verification import (
    FIELD_LABELS,
    FIELDS,
    OVERRIDE,
    FieldCheck,
    Verification,
    available_fields,
    check_answers,
    check_field,
    name_for,
)

Clock = Callable[[], datetime]

MAX_ATTEMPTS: Final = 3
MIN_REASON_CHARS: Final = 4
COULD_NOT_VERIFY: Final = "caller could not verify"

_PLACEHOLDERS: Final = {
    "dob": "MM/DD/YYYY or DD Mon YYYY",
    "address": "number + zip, or number + street",
    "mrn": "as the caller reads it",
    "phone_last4": "last 4 of another number",
}
_UNREADABLE: Final = {
    "dob": "? not a date — try MM/DD/YYYY",
    "address": "? add the zip or street",
    "mrn": "? type letters or digits",
    "phone_last4": "? need 4 digits",
}


def _utcnow() -> datetime:
    return datetime.now(UTC)


class VerifyScreen(ModalScreen[Verification | None]):
    """Identity check: date of birth plus one of address, MRN or another phone's last four."""

    CSS_PATH = "../styles/verify.tcss"
    BINDING_GROUP_TITLE = "Verify the caller"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "enter",
            "check",
            "Check",
            priority=True,
            id="verify-check",
            tooltip="Compare the answers with the record; continue when they match",
        ),
        Binding(
            "ctrl+n",
            "could_not_verify",
            "Could not verify",
            id="verify-failed",
            tooltip="The caller could not answer: record a failed verification",
        ),
        Binding(
            "ctrl+o",
            "override",
            "Override",
            id="verify-override",
            tooltip="Verified by other means (supervisor override): needs a typed reason",
        ),
        Binding("escape", "cancel", "Cancel", id="verify-cancel", tooltip="Close without verifying (nothing recorded)"),
        # Typed into an answer when one has focus; otherwise closes rather than reaching the App's "quit".
        Binding("q", "cancel", "Cancel", show=False, id="verify-cancel-q", tooltip="Close without verifying"),
    ]

    overriding: reactive[bool] = reactive(False, bindings=True)

    def __init__(
        self,
        patient: PatientSummary,
        required: Sequence[str] = ("dob",),
        one_of: Sequence[str] = ("address", "mrn", "phone_last4"),
        today: date | None = None,
        *,
        masked: bool = False,
        caller: CallerNumber | None = None,
        clock: Clock = _utcnow,
        max_attempts: int = MAX_ATTEMPTS,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        for field in (*required, *one_of):
            if field not in FIELDS:
                raise ValueError(f"unknown verification field {field!r}")
        self.patient = patient
        self.required = tuple(dict.fromkeys(required))
        self.one_of = tuple(f for f in dict.fromkeys(one_of) if f not in self.required)
        self.today = today or date.today()
        self.masked = masked
        self.caller = caller
        self.clock = clock
        self.max_attempts = max_attempts
        self.on_file = available_fields(patient, caller)
        self.results: dict[str, FieldCheck] = {}
        self.checked: dict[str, str] = {}
        self.attempts: dict[str, int] = dict.fromkeys(self.fields, 0)
        self._reason_ready = False

    @property
    def fields(self) -> tuple[str, ...]:
        return (*self.required, *self.one_of)

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        with Vertical(id="verify-dialog"):
            yield Static(f"Verify the caller — {name_for(self.patient, 1, masked=self.masked)}", id="verify-title")
            yield Static("Ask, and type what the caller says. Never read the record to them.", id="verify-help")
            with Vertical(id="verify-fields"):
                if self.required:
                    yield Static("Required", classes="verify-group")
                    yield from self._rows(self.required)
                if self.one_of:
                    yield Static("And one of", classes="verify-group")
                    yield from self._rows(self.one_of)
            with Vertical(id="verify-override"):
                yield Static(
                    "Supervisor override — the caller was verified by other means.\n"
                    "Type who verified them and how (recorded in the audit log):",
                    id="verify-override-help",
                )
                yield Input(
                    placeholder="e.g. supervisor J. Park confirmed by callback",
                    id="override-reason",
                    password=self.masked,
                )
            yield Static("", id="verify-status")
        yield Footer()

    def _rows(self, fields: Sequence[str]) -> ComposeResult:
        for field in fields:
            dash = field.replace("_", "-")
            with Horizontal(classes="verify-row", id=f"row-{dash}"):
                yield Label(FIELD_LABELS[field], classes="verify-label")
                yield Input(
                    placeholder=_PLACEHOLDERS[field],
                    id=f"answer-{dash}",
                    password=self.masked,
                    restrict=r"[0-9 \-]*" if field == "phone_last4" else None,
                    disabled=not self.on_file[field],
                )
                yield Static(
                    "— not on file" if not self.on_file[field] else "", id=f"mark-{dash}", classes="verify-mark"
                )

    def on_mount(self) -> None:
        for field in self.fields:
            if not self.on_file[field]:
                self._mark(field).add_class("-not-on-file")
        first = self._next_field()
        if first is not None:
            self._input(first).focus()
        self._show_status()

    # ------------------------------------------------------------------ helpers
    def _input(self, field: str) -> Input:
        return self.query_one(f"#answer-{field.replace('_', '-')}", Input)

    def _mark(self, field: str) -> Static:
        return self.query_one(f"#mark-{field.replace('_', '-')}", Static)

    def _field_of(self, widget: object) -> str | None:
        for field in self.fields:
            if widget is self._input(field):
                return field
        return None

    def _locked(self, field: str) -> bool:
        return self.attempts[field] >= self.max_attempts

    def _answers(self) -> dict[str, str]:
        return {f: v for f, v in self.checked.items() if v.strip()}

    def _outcome(self) -> Verification:
        outcome = check_answers(
            self.patient,
            self._answers(),
            required=self.required,
            one_of=self.one_of,
            today=self.today,
            caller=self.caller,
            at=self.clock(),
        )
        # For the audit: every field answered wrongly at least once and not put right since.
        failed = tuple(
            f
            for f in self.fields
            if (f in outcome.failed or self.attempts[f] > 0) and self.results.get(f) is not FieldCheck.MATCH
        )
        return outcome.model_copy(update={"failed": failed})

    def _open(self, field: str) -> bool:
        return self.on_file[field] and not self._locked(field) and self.results.get(field) is not FieldCheck.MATCH

    def _next_field(self) -> str | None:
        for field in self.required:
            if self._open(field):
                return field
        if not any(self.results.get(f) is FieldCheck.MATCH for f in self.one_of):
            for field in self.one_of:
                if self._open(field):
                    return field
        return None

    def _set_mark(self, field: str, result: FieldCheck | None) -> None:
        mark = self._mark(field)
        for cls in ("-match", "-mismatch", "-unreadable"):
            mark.remove_class(cls)
        if result is FieldCheck.MATCH:
            mark.update("✓ matches")
            mark.add_class("-match")
        elif result is FieldCheck.MISMATCH:
            left = self.max_attempts - self.attempts[field]
            mark.update("✗ does not match" + (f" ({left} left)" if left else " · locked"))
            mark.add_class("-mismatch")
        elif result is FieldCheck.UNREADABLE:
            typed = self.checked.get(field, "")
            if field == "address" and not any(ch.isdigit() for ch in typed):
                mark.update("? need the street number")
            else:
                mark.update(_UNREADABLE[field])
            mark.add_class("-unreadable")
        elif result is FieldCheck.NOT_ON_FILE:
            mark.update("— not on file")
        else:
            mark.update("")

    def _show_status(self) -> None:
        status = self.query_one("#verify-status", Static)
        status.remove_class("-blocked")
        if self.overriding:
            status.update("Enter records the override · Esc goes back to the questions")
            return
        parts: list[str] = []
        for field in self.required:
            ok = self.results.get(field) is FieldCheck.MATCH
            parts.append(f"{FIELD_LABELS[field]} {'✓' if ok else '…'}")
        if self.one_of:
            ok = any(self.results.get(f) is FieldCheck.MATCH for f in self.one_of)
            parts.append(f"one of {', '.join(FIELD_LABELS[f] for f in self.one_of)} {'✓' if ok else '…'}")
        blocked = [f for f in self.required if not self._open(f) and self.results.get(f) is not FieldCheck.MATCH]
        if self.one_of and not any(self._open(f) or self.results.get(f) is FieldCheck.MATCH for f in self.one_of):
            blocked.append("one_of")
        if blocked:
            status.add_class("-blocked")
            status.update(
                "Cannot verify from the record now — ctrl+n: caller could not verify · ctrl+o: supervisor override"
            )
        else:
            status.update(" · ".join(parts))

    # ------------------------------------------------------------------ events
    @on(Input.Changed)
    def _edited(self, event: Input.Changed) -> None:
        if event.input.id == "override-reason":
            ready = len(event.value.strip()) >= MIN_REASON_CHARS
            if ready != self._reason_ready:  # the footer is redrawn only when Enter's state flips
                self._reason_ready = ready
                self.refresh_bindings()
            return
        field = self._field_of(event.input)
        if field is not None and event.value != self.checked.get(field):
            # The mark belongs to the value that was checked, not to what is typed now.
            self.results.pop(field, None)
            self._set_mark(field, None)

    # ------------------------------------------------------------------ actions
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "check" and self.overriding:
            return self._reason_ready or None
        if action == "override":
            return not self.overriding or None
        return True

    def action_check(self) -> None:
        if self.overriding:
            self._confirm_override()
            return
        focused_field = self._field_of(self.focused)
        for field in self.fields:
            if not self.on_file[field] or self._locked(field):
                continue
            value = self._input(field).value
            if value == self.checked.get(field):
                continue
            if not value.strip():  # an answer taken back counts for nothing
                self.checked.pop(field, None)
                self.results.pop(field, None)
                continue
            result = check_field(self.patient, field, value, today=self.today, caller=self.caller)
            self.results[field] = result
            self.checked[field] = value
            if result is FieldCheck.MISMATCH:
                self.attempts[field] += 1
                if self._locked(field):
                    self._input(field).disabled = True
            self._set_mark(field, result)
        outcome = self._outcome()
        if outcome.passed:
            self.dismiss(outcome)
            return
        self._show_status()
        if (
            focused_field is not None
            and self._open(focused_field)
            and self.results.get(focused_field)
            in (
                FieldCheck.MISMATCH,
                FieldCheck.UNREADABLE,
            )
        ):
            self._input(focused_field).select_all()
            return
        nxt = self._next_field()
        if nxt is not None:
            self._input(nxt).focus()

    def action_could_not_verify(self) -> None:
        outcome = self._outcome()
        self.dismiss(outcome.model_copy(update={"passed": False, "reason": COULD_NOT_VERIFY}))

    def action_override(self) -> None:
        self.overriding = True

    def _confirm_override(self) -> None:
        reason = " ".join(self.query_one("#override-reason", Input).value.split())
        if len(reason) < MIN_REASON_CHARS:
            status = self.query_one("#verify-status", Static)
            status.update("Type the reason for the override (who verified the caller, and how)")
            status.add_class("-blocked")
            return
        outcome = self._outcome()
        self.dismiss(
            Verification(
                passed=True,
                methods=(OVERRIDE,),
                failed=outcome.failed,
                at=outcome.at,
                reason=reason,
                patient_id=self.patient.id,
            )
        )

    def watch_overriding(self, overriding: bool) -> None:
        if not self.is_mounted:
            return
        # Classes on the two containers, not the screen: restyling the whole screen is slow.
        self.query_one("#verify-fields").set_class(overriding, "-hidden")
        self.query_one("#verify-override").set_class(overriding, "-shown")
        if overriding:
            self.query_one("#override-reason", Input).focus()
        else:
            nxt = self._next_field()
            if nxt is not None:
                self._input(nxt).focus()
        self._show_status()

    def action_cancel(self) -> None:
        if self.overriding:
            self.overriding = False
            return
        self.dismiss(None)
