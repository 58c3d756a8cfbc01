"""Twilio error codes as errors an agent can act on.

Twilio answers a rejected request with ``{"code": 21211, "message": …,
"more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}`` and
reports delivery failures as an ``ErrorCode`` on the message. Twilio's own
``message`` often repeats the phone number, so it is never shown: the title
and fix come from the table below, written for the agent, and always end with
the code so support can look it up.

Every error is a :class:`TwilioError` *and* the matching
:mod:`pa_tui.backends.base` class (:class:`AuthError` for 401,
:class:`RateLimited` for 429, :class:`Unavailable` for 5xx and transport
failures, :class:`BadRequest` for 400…), so callers can catch either.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from pa_tui.backends.base import (
    AuthError,
    BackendError,
    BadRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unavailable,
)

__all__ = [
    "AUTH_FIX",
    "ERROR_CODES",
    "CodeInfo",
    "TwilioAuthError",
    "TwilioBadRequest",
    "TwilioError",
    "TwilioNotFound",
    "TwilioPermissionDenied",
    "TwilioRateLimited",
    "TwilioUnavailable",
    "describe_code",
    "error_for",
]

AUTH_FIX: Final = (
    "Copy the Account SID and auth token (or an API key SID and secret) from the Twilio Console, "
    "then run `pa-tui auth set twilio`."
)
_SENDER_FIX: Final = (
    "Set pa-tui's Twilio sender to an SMS-capable number (or Messaging Service) owned by this Twilio account "
    "— Twilio Console › Phone Numbers."
)
_NUMBER_FIX: Final = "Check the patient's mobile number in their record (it must include the area code)."


class CodeInfo(NamedTuple):
    title: str  # without the "Twilio: " prefix and the "(code)" suffix
    fix: str


ERROR_CODES: Final[dict[int, CodeInfo]] = {
    # --- account / API
    400: CodeInfo(
        "rejected a value in the request",
        "A setting is in the wrong form (check pa-tui's Twilio settings); details are in the log.",
    ),
    20003: CodeInfo("the account SID, auth token or API key was not accepted", AUTH_FIX),
    20005: CodeInfo("the Twilio account is not active", "Check the account's status in the Twilio Console."),
    20008: CodeInfo(
        "test credentials cannot do this", "Use the live Account SID and auth token, not the test credentials."
    ),
    20404: CodeInfo("that message or call was not found", "Check the SID and that it belongs to this Twilio account."),
    20429: CodeInfo("too many requests", "Wait a moment; pa-tui will try again."),
    20500: CodeInfo("Twilio had an internal error", "Try again in a minute; check status.twilio.com if it persists."),
    20503: CodeInfo("Twilio is temporarily unavailable", "Try again in a minute; check status.twilio.com."),
    # --- messages: recipient
    21211: CodeInfo("the patient's number is not a valid phone number", _NUMBER_FIX),
    21604: CodeInfo("no recipient number was given", _NUMBER_FIX),
    21408: CodeInfo(
        "texting this country is not enabled for the account",
        "Enable the country in Twilio Console › Messaging › Settings › Geo permissions, or call the patient.",
    ),
    21608: CodeInfo(
        "a trial account can only text verified numbers",
        "Verify the number in the Twilio Console or upgrade the account.",
    ),
    21610: CodeInfo(
        "the patient has opted out of texts from this number (they replied STOP)",
        "Do not text this number; call the patient instead. They can reply START to opt back in.",
    ),
    21612: CodeInfo("Twilio cannot reach this number by text", "Check the number, or call the patient instead."),
    21614: CodeInfo("the number is not a mobile number and cannot receive texts", "Call the patient instead."),
    # --- messages: sender and content
    21212: CodeInfo("the sender number is not a valid phone number", _SENDER_FIX),
    21603: CodeInfo("no sender number or Messaging Service is set", _SENDER_FIX),
    21606: CodeInfo("the sender number cannot send texts for this account", _SENDER_FIX),
    21660: CodeInfo("the sender number belongs to a different Twilio account", _SENDER_FIX),
    21701: CodeInfo("the Messaging Service does not exist in this account", _SENDER_FIX),
    21705: CodeInfo("the Messaging Service SID is not valid", _SENDER_FIX),
    21602: CodeInfo("the message is empty", "Write the message text before sending."),
    21617: CodeInfo("the message is longer than 1600 characters", "Shorten the message."),
    21609: CodeInfo(
        "the status callback URL is not valid",
        "Set pa-tui's public webhook URL to a full http(s) URL Twilio can reach.",
    ),
    # --- calls
    21201: CodeInfo("no number to call was given", _NUMBER_FIX),
    21205: CodeInfo(
        "the URL with the call's instructions is not valid",
        "Set pa-tui's confirmation-call TwiML URL to a full http(s) URL Twilio can reach.",
    ),
    21210: CodeInfo(
        "the caller ID is not a number of this account or a verified caller ID",
        "Use a voice-capable Twilio number of this account as the caller ID.",
    ),
    21213: CodeInfo("no caller ID was given for the call", "Set the caller ID (a Twilio number) in pa-tui's configuration."),
    21215: CodeInfo(
        "calling this country is not enabled for the account",
        "Enable the country in Twilio Console › Voice › Settings › Geo permissions.",
    ),
    21217: CodeInfo("the number to call does not appear to be valid", _NUMBER_FIX),
    # --- delivery (ErrorCode of a failed or undelivered message)
    30001: CodeInfo("the message queue overflowed", "Send again later."),
    30002: CodeInfo("the Twilio account is suspended", "Check the account in the Twilio Console."),
    30003: CodeInfo("the patient's phone is unreachable (off or out of coverage)", "Try again later or call the patient."),
    30004: CodeInfo("the message was blocked (the patient may have blocked texts)", "Call the patient instead."),
    30005: CodeInfo("the number is unknown or no longer in service", _NUMBER_FIX),
    30006: CodeInfo("the number is a landline or cannot receive texts", "Call the patient instead."),
    30007: CodeInfo(
        "the carrier filtered the message as spam",
        "Rephrase the reminder (no links or shortened URLs) and check the sender's A2P 10DLC registration.",
    ),
    30008: CodeInfo("delivery failed for an unknown reason", "Try again later or call the patient."),
    30034: CodeInfo(
        "the sender number is not registered for A2P 10DLC",
        "Register the number's campaign in Twilio Console › Messaging › Regulatory compliance.",
    ),
}


def describe_code(code: int | None) -> CodeInfo:
    """Title (with code) and fix for a Twilio error code; a generic text for codes not in the table."""
    if code is None:
        return CodeInfo("Twilio rejected the request", "Check pa-tui's Twilio settings; see the log for details.")
    info = ERROR_CODES.get(code)
    if info is None:
        return CodeInfo(
            f"Twilio rejected the request ({code})",
            f"See https://www.twilio.com/docs/errors/{code} for what it means.",
        )
    prefix = "Twilio " if code == 400 else "Twilio: "
    return CodeInfo(f"{prefix}{info.title} ({code})", info.fix)


class TwilioError(BackendError):
    """A Twilio failure. ``code`` is Twilio's error code when Twilio gave one."""

    area = "twilio"

    def __init__(self, title: str, fix: str = "", *, code: int | None = None, status: int | None = None, **kwargs: object) -> None:
        super().__init__(title, fix, status=status, **kwargs)  # type: ignore[arg-type]
        self.code = code

    @property
    def opted_out(self) -> bool:
        """The recipient replied STOP: do not text them (21610)."""
        return self.code == 21610

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, status={self.status!r}, title={self.title!r})"


class TwilioAuthError(TwilioError, AuthError):
    """401: wrong or missing credentials (20003)."""


class TwilioPermissionDenied(TwilioError, PermissionDenied):
    """403: the credentials may not do this."""


class TwilioNotFound(TwilioError, NotFound):
    """404: no such message, call or account (20404)."""


class TwilioBadRequest(TwilioError, BadRequest):
    """400: Twilio rejected the request's content (21211, 21610, 21606…)."""


class TwilioRateLimited(TwilioError, RateLimited):
    """429: too many requests (20429)."""


class TwilioUnavailable(TwilioError, Unavailable):
    """5xx, timeout or connection failure.

    ``may_have_sent`` is true when a create request may have reached Twilio
    (the connection broke after sending, or Twilio answered 5xx): sending again
    could text the patient twice, so check first. It is false when the request
    cannot have arrived (the connection was never made).
    """

    def __init__(self, title: str, fix: str = "", *, may_have_sent: bool = False, **kwargs: object) -> None:
        super().__init__(title, fix, **kwargs)  # type: ignore[arg-type]
        self.may_have_sent = may_have_sent


def error_for(
    status: int,
    code: int | None,
    *,
    retry_after: float | None = None,
    may_have_sent: bool = False,
) -> TwilioError:
    """The error for an HTTP ``status`` and Twilio error ``code`` (from the response body, if any)."""
    if status == 401:
        title, fix = describe_code(code if code is not None else 20003)
        return TwilioAuthError(title, fix, code=code if code is not None else 20003, status=status)
    if status == 403:
        if code is None:
            return TwilioPermissionDenied(
                "Twilio: these credentials may not do this", "Use the account's auth token or a standard API key.",
                status=status,
            )
        title, fix = describe_code(code)
        return TwilioPermissionDenied(title, fix, code=code, status=status)
    if status == 404:
        title, fix = describe_code(code if code is not None else 20404)
        return TwilioNotFound(title, fix, code=code if code is not None else 20404, status=status)
    if status == 429:
        title, fix = describe_code(code if code is not None else 20429)
        return TwilioRateLimited(
            title, fix, code=code if code is not None else 20429, status=status,
            retry_after=1.0 if retry_after is None else retry_after,
        )
    if status >= 500:
        title, fix = describe_code(code if code is not None else (20503 if status == 503 else 20500))
        return TwilioUnavailable(title, fix, code=code, status=status, may_have_sent=may_have_sent)
    title, fix = describe_code(code)
    if 400 <= status < 500:
        return TwilioBadRequest(title, fix, code=code, status=status)
    return TwilioError(title, fix, code=code, status=status)
