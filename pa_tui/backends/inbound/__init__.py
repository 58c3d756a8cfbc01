"""The one small inbound HTTP listener (DESIGN.md ``backends/inbound.py``).

Turns authenticated outside requests — Dialpad webhooks, Twilio status
callbacks / incoming SMS / confirmation-call key presses, 8x8 Work caller-info
pops and ``pa-tui pop`` — into domain facts on :meth:`InboundListener.events`.
It never touches the UI. See :mod:`.app` for the routes and checks,
:mod:`.listener` for running it in the console's loop and :mod:`.endpoint` for
how ``pa-tui pop`` reaches it.
"""

from pa_tui.backends.inbound.app import (
    APP_CONFIRM_PATH,
    CALL_STATUS_PATH,
    DIALPAD_EVENTS_PATH,
    HEALTH_PATH,
    MAX_BODY,
    POP_PATH,
    InboundConfig,
    ReplayCache,
    build_app,
)
from pa_tui.backends.inbound.endpoint import (
    ConsoleNotRunning,
    PopEndpoint,
    PopError,
    default_endpoint_paths,
    read_pop_endpoint,
    remove_pop_endpoint,
    send_pop,
    write_pop_endpoint,
)
from pa_tui.backends.inbound.facts import (
    AgentStatusEvent,
    CallEvent,
    CallStatusUpdate,
    ConfirmationDigits,
    DeliveryStatus,
    InboundFact,
    InboundSms,
    PopRequested,
    PopSource,
    fact_kind,
)
from pa_tui.backends.inbound.listener import FROM_SECRETS, InboundError, InboundListener
from pa_tui.backends.twilio.messaging import INBOUND_SMS_PATH, STATUS_CALLBACK_PATH

__all__ = [
    "APP_CONFIRM_PATH",
    "CALL_STATUS_PATH",
    "DIALPAD_EVENTS_PATH",
    "FROM_SECRETS",
    "HEALTH_PATH",
    "INBOUND_SMS_PATH",
    "MAX_BODY",
    "POP_PATH",
    "STATUS_CALLBACK_PATH",
    "AgentStatusEvent",
    "CallEvent",
    "CallStatusUpdate",
    "ConfirmationDigits",
    "ConsoleNotRunning",
    "DeliveryStatus",
    "InboundConfig",
    "InboundError",
    "InboundFact",
    "InboundListener",
    "InboundSms",
    "PopEndpoint",
    "PopError",
    "PopRequested",
    "PopSource",
    "ReplayCache",
    "build_app",
    "default_endpoint_paths",
    "fact_kind",
    "read_pop_endpoint",
    "remove_pop_endpoint",
    "send_pop",
    "write_pop_endpoint",
]
