"""Build the production backends from Settings and secrets, and run the console.

The demo builds the very same classes (see :mod:`pa_tui.demo.launch`), pointed
at the simulators; nothing here knows about demo mode.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pa_tui.backends.base import BackendSet, NotSupported
from pa_tui.backends.dialpad.client import DialpadClient
from pa_tui.backends.dialpad.telephony import DialpadTelephony
from pa_tui.backends.fhir.auth import BearerAuth, SmartBackendAuth
from pa_tui.backends.fhir.client import FhirClient
from pa_tui.backends.fhir.ehr import FhirEhr
from pa_tui.backends.inbound import DIALPAD_EVENTS_PATH, InboundListener
from pa_tui.backends.store import open_store
from pa_tui.config import Settings
from pa_tui.secrets import require_secret

log = logging.getLogger(__name__)


def build_telephony(settings: Settings, webhook_events: asyncio.Queue[Any] | None = None) -> DialpadTelephony:
    """Dialpad, with live events over a websocket (default) or webhooks to the inbound listener."""
    dialpad = settings.dialpad
    key = require_secret("dialpad")
    client = DialpadClient(api_key=key, base_url=dialpad.api_base)
    if not dialpad.user_id:
        raise NotSupported("No Dialpad user id configured", "Set dialpad.user_id in the config file")
    webhook: dict[str, Any] = {}
    if dialpad.event_mode == "webhook":
        webhook = {
            "event_mode": "webhook",
            "webhook_url": settings.listen.base_url + DIALPAD_EVENTS_PATH,
            "webhook_secret": require_secret("dialpad-webhook").get_secret_value(),
            "webhook_events": webhook_events,
        }
    return DialpadTelephony(
        client,
        user_id=dialpad.user_id,
        subscription_scope="company" if dialpad.subscription_scope == "company" else "user",
        mini_dialer_client_id=dialpad.mini_dialer_client_id,
        open_with=dialpad.open_mini_dialer_with,
        sandbox=dialpad.environment == "sandbox",
        **webhook,
    )


def build_ehr(settings: Settings) -> FhirEhr:
    """The EHR over FHIR R4, with the site's vendor profile and sign-in."""
    fhir = settings.fhir
    if not fhir.base_url:
        raise NotSupported("No EHR configured", "Set fhir.base_url in the config file")
    auth: Any = None
    if fhir.auth == "bearer":
        auth = BearerAuth(require_secret("fhir"))
    elif fhir.auth == "smart-backend":
        if not fhir.client_id or not fhir.key_id:
            raise NotSupported(
                "SMART sign-in needs fhir.client_id and fhir.key_id",
                "Set both in the config file to what the EHR registered for pa-tui",
            )
        key: Any = fhir.private_key_path or require_secret("fhir")
        auth = SmartBackendAuth(
            fhir.client_id, key, fhir.key_id, alg=fhir.algorithm, scope=fhir.scope, token_url=fhir.token_url
        )
    client = FhirClient(
        fhir.base_url, vendor=fhir.vendor, timeout=fhir.timeout, auth=auth, practice_id=fhir.practice_id
    )
    return FhirEhr(
        client, region=settings.region, minor_age=settings.ui.minor_age, chart_url_template=fhir.chart_url_template
    )


def build_backends(settings: Settings) -> BackendSet:
    # In webhook mode the listener verifies Dialpad's POSTs and the App hands the events to the
    # telephony's queue, so they get the same de-duplication and reconciliation as websocket events.
    webhook_events: asyncio.Queue[Any] | None = (
        asyncio.Queue(maxsize=1000) if settings.dialpad.event_mode == "webhook" else None
    )
    backends = BackendSet(
        build_telephony(settings, webhook_events),
        build_ehr(settings),
        store=open_store(settings),
        inbound=InboundListener.from_settings(settings),
    )
    backends.webhook_events = webhook_events
    return backends


def run_console(settings: Settings) -> int:
    """Run the console against the configured accounts until the agent quits."""
    from pa_tui.app import make_app

    backends = build_backends(settings)
    app = make_app(settings, backends)
    return int(app.run() or 0)
