"""Dialpad API v2: REST client, event-frame parsing, and the Telephony backend.

Vendor JSON stops in this package: everything it returns is a
:mod:`pa_tui.domain` model or one of the small models in :mod:`.models`.
"""

from pa_tui.backends.dialpad.client import PRODUCTION_URL, SANDBOX_URL, DialpadClient
from pa_tui.backends.dialpad.events import EventParseError, ParseFailure, parse_frame
from pa_tui.backends.dialpad.telephony import DEFAULT_CALL_STATES, DialpadTelephony, new_secret

__all__ = [
    "DEFAULT_CALL_STATES",
    "PRODUCTION_URL",
    "SANDBOX_URL",
    "DialpadClient",
    "DialpadTelephony",
    "EventParseError",
    "ParseFailure",
    "new_secret",
    "parse_frame",
]
