"""Dialpad API v2: REST client, event-frame parsing, and the Telephony backend.

Vendor JSON stops in this package: everything it returns is a
:mod:`pa_tui.domain` model or one of the small models in :mod:`.models`.
"""

from pa_tui.backends.dialpad.client import (
    OPERATIONS,
    PRODUCTION_URL,
    SANDBOX_URL,
    BudgetExhausted,
    BudgetState,
    DialpadClient,
    RateLimit,
)
from pa_tui.backends.dialpad.events import EventParseError, ParseFailure, parse_frame
from pa_tui.backends.dialpad.telephony import DEFAULT_CALL_STATES, DialpadTelephony, new_secret

__all__ = [
    "DEFAULT_CALL_STATES",
    "OPERATIONS",
    "PRODUCTION_URL",
    "SANDBOX_URL",
    "BudgetExhausted",
    "BudgetState",
    "DialpadClient",
    "DialpadTelephony",
    "EventParseError",
    "ParseFailure",
    "RateLimit",
    "new_secret",
    "parse_frame",
]
