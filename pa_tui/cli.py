"""The ``pa-tui`` command line: parse arguments, build Settings, hand over. Nothing else.

Errors a user can fix (:class:`~pa_tui.config.ConfigError`,
:class:`~pa_tui.secrets.SecretError`) print as one line on stderr with exit
code 2. Anything unexpected is logged with its traceback to the log file and
reported as one line naming that file (exit code 1). Logging goes to the file
only, so nothing is written over the console UI.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import click

from pa_tui import __version__
from pa_tui.backends.base import BackendError
from pa_tui.config import ConfigError, Settings, config_path, load_settings
from pa_tui.demo.scenario import ScenarioError
from pa_tui.secrets import (
    SECRETS,
    KeyringUnavailable,
    SecretError,
    delete_secret,
    keyring_available,
    secret_status,
    set_secret,
)

__all__ = ["cli", "main"]

log = logging.getLogger(__name__)

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
EXIT_USAGE = 2


# --------------------------------------------------------------------------- state
@dataclass
class _State:
    config: Path | None = None
    log_level: str | None = None  # from --log-level or PA_TUI_LOG_LEVEL
    log_file: Path | None = None
    settings: Settings | None = field(default=None, repr=False)

    def load(self) -> Settings:
        """Load settings once; afterwards apply their log level unless one was given explicitly."""
        if self.settings is None:
            overrides: dict[str, Any] = {}
            if self.log_level:
                overrides["log_level"] = self.log_level
            self.settings = load_settings(self.config, **overrides)
            if self.log_file is not None and self.settings.log_level != (self.log_level or "INFO"):
                _setup_logging(self, self.settings.log_level)
        return self.settings


def _state(ctx: click.Context) -> _State:
    return ctx.ensure_object(_State)


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    click.echo(f"pa-tui: {message}", err=True)
    raise click.exceptions.Exit(code)


def _setup_logging(state: _State, level: str) -> None:
    from pa_tui.logs import setup_logging

    try:
        state.log_file = setup_logging(level)
    except (OSError, ValueError) as exc:
        # Never fatal, and said once, before any UI is drawn.
        click.echo(f"pa-tui: warning: logging disabled ({exc})", err=True)
        logging.getLogger().addHandler(logging.NullHandler())
        state.log_file = None


class _Group(click.Group):
    """A click group that turns known errors into one line and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ConfigError, SecretError, BackendError, ScenarioError) as exc:
            log.error("%s: %s", type(exc).__name__, exc)
            _fail(str(exc))
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            raise click.exceptions.Exit(130) from None
        except Exception as exc:
            log.exception("unexpected error")
            state = ctx.find_object(_State)
            where = f"; details in {state.log_file}" if state and state.log_file else ""
            _fail(f"unexpected error: {type(exc).__name__}{where}", code=1)


# --------------------------------------------------------------------------- param types
class _SizeType(click.ParamType):
    name = "WxH"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", str(value))
        if not m:
            self.fail(f"{value!r} is not WIDTHxHEIGHT, e.g. 160x48", param, ctx)
        w, h = int(m.group(1)), int(m.group(2))
        if not (20 <= w <= 1000 and 10 <= h <= 500):
            self.fail(f"{value!r} is out of range (width 20–1000, height 10–500)", param, ctx)
        return w, h


# --------------------------------------------------------------------------- root
@click.group(
    "pa-tui",
    cls=_Group,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="PATH",
    help="Read settings from this TOML file instead of the default (see `pa-tui config path`). "
    "The file must exist. Also settable with PA_TUI_CONFIG_FILE.",
)
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default=None,
    metavar="LEVEL",
    help="Log level for the log file: DEBUG, INFO, WARNING or ERROR. Overrides PA_TUI_LOG_LEVEL "
    "and log_level in the config. Logs never go to the terminal.",
)
@click.version_option(__version__, "--version", prog_name="pa-tui", message="%(prog)s %(version)s",
                      help="Show the version and exit.")
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None, log_level: str | None) -> None:
    """Keyboard-first console for healthcare contact-center agents.

    With no command, start the console against the Dialpad and FHIR accounts in
    your config. New here? Try `pa-tui demo`, which needs no accounts.
    """
    state = _state(ctx)
    state.config = config_file
    env_level = os.environ.get("PA_TUI_LOG_LEVEL", "").strip().upper() or None
    if env_level == "WARN":
        env_level = "WARNING"
    if env_level not in LOG_LEVELS:
        env_level = None  # load_settings reports the bad value with its variable name
    state.log_level = log_level.upper() if log_level else env_level
    _setup_logging(state, state.log_level or "INFO")
    log.info("pa-tui %s starting: %s", __version__, ctx.invoked_subcommand or "console")

    if ctx.invoked_subcommand is None:
        raise click.exceptions.Exit(_run_console(state))


def _run_console(state: _State) -> int:
    settings = state.load()
    missing = settings.missing_for_console()
    if missing:
        path = settings.config_file or config_path(state.config)
        click.echo(
            f"pa-tui is not configured (missing: {'; '.join(missing)}). "
            f"Run `pa-tui auth set dialpad` and edit {path}, or try `pa-tui demo`.",
            err=True,
        )
        return EXIT_USAGE
    from pa_tui.wiring import run_console  # lazy: pulls in Textual and the backends

    return int(run_console(settings) or 0)


# --------------------------------------------------------------------------- demo
@cli.command()
@click.option(
    "--scenario",
    metavar="NAME|FILE",
    default=None,
    help="Scripted scenario to play: a built-in scenario name or a scenario file. "
    "Default: the standard demo scenario.",
)
@click.option(
    "--speed",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    metavar="FLOAT",
    help="Playback speed of the scenario clock; 2 plays twice as fast. Must be greater than 0.",
)
@click.option(
    "--patients",
    type=click.IntRange(min=1),
    default=500,
    show_default=True,
    metavar="INT",
    help="Number of synthetic patients in the demo FHIR server.",
)
@click.option(
    "--seed",
    type=int,
    default=7,
    show_default=True,
    metavar="INT",
    help="Random seed for the synthetic population, so runs are repeatable.",
)
@click.option(
    "--record",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    metavar="DIR",
    help="Record the run into DIR (screens as SVG) instead of waiting for keys.",
)
@click.option(
    "--size",
    type=_SizeType(),
    default=None,
    metavar="WxH",
    help="Terminal size for --record, e.g. 160x48. Only valid with --record.",
)
@click.option(
    "--fhir-bundle",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    metavar="PATH",
    help="A FHIR Bundle JSON file, or a folder of them (e.g. Synthea output), served beside the synthetic "
    "population.",
)
@click.pass_context
def demo(
    ctx: click.Context,
    scenario: str | None,
    speed: float,
    patients: int,
    seed: int,
    record: Path | None,
    size: tuple[int, int] | None,
    fhir_bundle: Path | None,
) -> None:
    """Run the console against built-in Dialpad, FHIR and Twilio simulators.

    Needs no accounts: everything runs in process on 127.0.0.1 with synthetic
    patients.
    """
    if size is not None and record is None:
        raise click.UsageError("--size is only used with --record", ctx=ctx)
    settings = _state(ctx).load()
    from pa_tui.demo.launch import run_demo  # lazy: pulls in Textual and the simulators

    from pa_tui.demo.fhir_sandbox.bundles import BundleError

    try:
        code = _run_demo(run_demo, settings, scenario, speed, patients, seed, record, size, fhir_bundle)
    except BundleError as exc:
        _fail(str(exc))
    raise click.exceptions.Exit(int(code or 0))


def _run_demo(run_demo: Any, settings: Settings, scenario: str | None, speed: float, patients: int, seed: int,
              record: Path | None, size: tuple[int, int] | None, fhir_bundle: Path | None) -> int:
    return run_demo(
        settings,
        scenario=scenario,
        speed=speed,
        patients=patients,
        seed=seed,
        record=record,
        size=size,
        fhir_bundle=fhir_bundle,
    )


# --------------------------------------------------------------------------- sim
@cli.command()
@click.option("--host", "bind", default="127.0.0.1", show_default=True, metavar="ADDRESS",
              help="Address the simulators listen on. Keep it on loopback unless you mean otherwise.")
@click.option("--dialpad-port", type=click.IntRange(0, 65535), default=0, metavar="PORT",
              help="Port of the Dialpad simulator (0: any free port).")
@click.option("--fhir-port", type=click.IntRange(0, 65535), default=0, metavar="PORT",
              help="Port of the FHIR R4 sandbox (0: any free port).")
@click.option("--twilio-port", type=click.IntRange(0, 65535), default=0, metavar="PORT",
              help="Port of the Twilio simulator (0: any free port).")
@click.option("--patients", type=click.IntRange(min=1), default=500, show_default=True, metavar="INT",
              help="Number of synthetic patients in the FHIR sandbox.")
@click.option("--seed", type=int, default=7, show_default=True, metavar="INT",
              help="Random seed of the synthetic population.")
@click.option("--scenario", metavar="NAME|FILE", default=None,
              help="A scenario to play against the simulators once a console subscribes (default: none).")
@click.option("--speed", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              metavar="FLOAT", help="Playback speed of the scenario.")
@click.option("--fhir-bundle", type=click.Path(exists=True, path_type=Path), default=None, metavar="PATH",
              help="A FHIR Bundle JSON file, or a folder of them (e.g. Synthea output), served beside the "
              "synthetic population.")
@click.pass_context
def sim(
    ctx: click.Context,
    bind: str,
    dialpad_port: int,
    fhir_port: int,
    twilio_port: int,
    patients: int,
    seed: int,
    scenario: str | None,
    speed: float,
    fhir_bundle: Path | None,
) -> None:
    """Run the Dialpad, FHIR and Twilio simulators alone, until interrupted.

    Prints their base URLs and the demo credentials, for external tools and for
    pointing a configured pa-tui at them.
    """
    import datetime
    import signal
    import threading

    from pa_tui.demo.fhir_sandbox.bundles import BundleError
    from pa_tui.demo.launch import DemoEnvironment

    try:
        env = DemoEnvironment.start(
            patients=patients, seed=seed, scenario=scenario, speed=speed, bind=bind,
            ports={"dialpad": dialpad_port, "fhir": fhir_port, "twilio": twilio_port}, fhir_bundle=fhir_bundle,
            as_of=datetime.date.today(),
        )
    except BundleError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(str(exc))
    try:
        click.echo(f"Dialpad API   {env.dialpad_url}   (API key: {env.api_key}; agent user id: {env.agent_id})")
        click.echo(f"FHIR R4       {env.fhir_url}")
        click.echo(f"Twilio API    {env.twilio_url}   (account {env.twilio.account_sid})")
        click.echo(f"Patients      {len(env.population.patients)} synthetic (seed {seed})")
        click.echo("Serving until Ctrl+C.")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    finally:
        env.stop()


# --------------------------------------------------------------------------- pop
@cli.command()
@click.option("--ani", required=True, metavar="NUMBER",
              help="The caller's number, in any format (national digits, E.164, (408) 555-1212 …).")
@click.option("--dnis", default=None, metavar="NUMBER", help="The number that was called, if known.")
@click.pass_context
def pop(ctx: click.Context, ani: str, dnis: str | None) -> None:
    """Pop a caller in the running console, as a Dialpad ring or an 8x8 pop would."""
    import asyncio

    from pa_tui.backends.inbound import ConsoleNotRunning, PopError, send_pop
    from pa_tui.domain.phones import PhoneNumberError, parse_phone

    try:
        parse_phone(ani)
        if dnis:
            parse_phone(dnis)
    except PhoneNumberError as exc:
        _fail(f"--ani/--dnis: {exc}")
    try:
        asyncio.run(send_pop(ani, dnis))
    except (ConsoleNotRunning, PopError) as exc:
        _fail(f"{exc.title} — {exc.fix}" if getattr(exc, "fix", "") else exc.title)
    click.echo("Popped in the running console.")


# --------------------------------------------------------------------------- remind
class _DayType(click.ParamType):
    name = "tomorrow|today|YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        import datetime

        from pa_tui.reminders.runner import parse_day

        if isinstance(value, datetime.date):
            return value
        try:
            return parse_day(str(value), datetime.date.today())
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@cli.command()
@click.option("--date", "day", type=_DayType(), default="tomorrow", show_default=True,
              metavar="tomorrow|today|YYYY-MM-DD", help="Whose appointments to remind: that day's.")
@click.option("--clinic", default=None, metavar="NAME",
              help="Only this clinic (its name in [reminders.clinics], or the EHR location's name or id).")
@click.option("--dry-run", is_flag=True, help="Show what would be sent, and why not, without sending anything.")
@click.option("--demo", "use_demo", is_flag=True,
              help="Run against the built-in FHIR and Twilio simulators (synthetic patients, nothing leaves "
              "this machine).")
@click.option("--wait", type=click.FloatRange(0, 600), default=None, metavar="SECONDS",
              help="How long to wait for delivery reports after sending (default: reminders.delivery_wait, 20).")
@click.pass_context
def remind(ctx: click.Context, day: Any, clinic: str | None, dry_run: bool, use_demo: bool,
           wait: float | None) -> None:
    """Text a reminder for every booked appointment on a day, once each.

    Skips patients who opted out (STOP), have no mobile number, or were already
    reminded; holds texts during quiet hours; prints a summary and exits 1 if
    any reminder failed.
    """
    settings = _state(ctx).load()
    from pa_tui.reminders.runner import run_remind  # lazy: pulls in the backends

    code = run_remind(settings, day=day, clinic=clinic, dry_run=dry_run, demo=use_demo, wait=wait,
                      out=click.echo)
    raise click.exceptions.Exit(int(code or 0))


# --------------------------------------------------------------------------- audit
@cli.command()
@click.option("--patient", "patient_id", default=None, metavar="ID", help="Only rows about this patient.")
@click.option("--agent", "agent_id", default=None, metavar="ID", help="Only rows written by this agent.")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]),
              default=None, metavar="DATE", help="Only rows at or after this date/time (UTC), e.g. 2026-11-01.")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True,
              help="Output format.")
@click.option("--demo", "demo_store", is_flag=True, help="Export the demo console's audit log instead.")
@click.pass_context
def audit(ctx: click.Context, patient_id: str | None, agent_id: str | None, since: Any, fmt: str,
          demo_store: bool) -> None:
    """Export the PHI access audit log (every record view, search, verification and export)."""
    import asyncio
    import getpass
    from datetime import UTC

    from pa_tui.backends.store import SqliteStore, open_store
    from pa_tui.config import data_dir
    from pa_tui.domain.audit import export_audit

    settings = _state(ctx).load()
    store = SqliteStore(data_dir() / "demo.db") if demo_store else open_store(settings)

    async def run() -> str:
        async with store:
            rows = await store.audit_rows(
                patient_id=patient_id, agent_id=agent_id,
                since=since.replace(tzinfo=UTC) if since is not None else None,
            )
            # The export is itself an access to PHI: it is audited too.
            await store.audit(agent_id=f"cli:{getpass.getuser()}", action="export", patient_id=patient_id,
                              reason=f"pa-tui audit --format {fmt}")
            return export_audit(rows, fmt)

    click.echo(asyncio.run(run()), nl=False)


# --------------------------------------------------------------------------- auth
_NAMES = click.Choice(list(SECRETS), case_sensitive=True)
_NAMES_TABLE = "\b\n" + "\n".join(
    f"{s.name:<16} {s.description:<40} {s.env_var}" for s in SECRETS.values()
)


@cli.group(cls=_Group)
def auth() -> None:
    """Store, inspect and delete secrets in the OS keyring.

    Secrets never go in the config file. Where no keyring exists (SSH, servers),
    set the environment variables instead. Names: dialpad, dialpad-webhook,
    twilio, fhir, postgres.
    """


def _item_for(ctx: click.Context, name: str) -> str | None:
    if name != "postgres":
        return None
    return _state(ctx).load().store.dsn_keyring_item


@auth.command(
    "set",
    help="Save secret NAME to the keyring. The prompt does not echo.\n\n"
    "NAME is one of the following; without a keyring, set the environment variable instead:\n\n"
    + _NAMES_TABLE,
)
@click.argument("name", type=_NAMES, metavar="NAME")
@click.option(
    "--from-env",
    "from_env",
    metavar="VAR",
    default=None,
    help="Read the value from environment variable VAR instead of prompting.",
)
@click.option(
    "--from-file",
    "from_file",
    type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
    default=None,
    metavar="PATH",
    help="Read the value from a file, e.g. a PEM private key for fhir.",
)
@click.pass_context
def auth_set(ctx: click.Context, name: str, from_env: str | None, from_file: Path | None) -> None:
    if from_env and from_file:
        raise click.UsageError("use either --from-env or --from-file, not both", ctx=ctx)
    spec = SECRETS[name]
    usable, why = keyring_available()
    if not usable:  # say so before the user types a secret
        raise KeyringUnavailable(
            f"cannot save the {spec.description} to the keyring: {why}. "
            f"Set the environment variable {spec.env_var} instead"
        )
    item = _item_for(ctx, name)
    if from_env:
        value = os.environ.get(from_env, "")
        if not value.strip():
            raise SecretError(f"environment variable {from_env} is not set or empty; nothing saved")
    elif from_file:
        try:
            value = from_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SecretError(f"cannot read {from_file}: {type(exc).__name__}") from None
        if not value.strip():
            raise SecretError(f"{from_file} is empty; nothing saved")
    else:
        if spec.multiline:
            click.echo(
                f"Paste the {spec.description} on one line; for a PEM key use --from-file KEY.pem.",
                err=True,
            )
        value = click.prompt(spec.description, hide_input=True, err=True)
    label = set_secret(name, value, item=item)
    click.echo(f"Saved {name} ({spec.description}) to the keyring: {label}.")
    if os.environ.get(spec.env_var, "").strip():
        click.echo(f"Note: {spec.env_var} is also set; the keyring value takes precedence.")


@auth.command("status")
@click.pass_context
def auth_status(ctx: click.Context) -> None:
    """Show where each secret is set (keyring, env or missing). Never shows values."""
    items: dict[str, str] = {}
    try:
        items["postgres"] = _state(ctx).load().store.dsn_keyring_item
    except ConfigError as exc:
        click.echo(f"pa-tui: warning: {exc}", err=True)
    rows = secret_status(items)
    width = max(len(r.name) for r in rows)
    env_width = max(len(r.env_var) for r in rows)
    click.echo(f"{'NAME':<{width}}  {'SOURCE':<7}  {'ENV VAR':<{env_width}}  DESCRIPTION")
    for r in rows:
        click.echo(f"{r.name:<{width}}  {r.source:<7}  {r.env_var:<{env_width}}  {r.description}")
    usable, label = keyring_available()
    if usable:
        click.echo(f"\nKeyring: available ({label})")
    else:
        click.echo(f"\nKeyring: not available — {label}; use the environment variables above")


@auth.command("delete")
@click.argument("name", type=_NAMES, metavar="NAME")
@click.pass_context
def auth_delete(ctx: click.Context, name: str) -> None:
    """Delete secret NAME from the keyring (environment variables are left alone)."""
    spec = SECRETS[name]
    if delete_secret(name, item=_item_for(ctx, name)):
        click.echo(f"Deleted {name} ({spec.description}) from the keyring.")
    else:
        click.echo(f"{name} was not in the keyring; nothing deleted.")
    if os.environ.get(spec.env_var, "").strip():
        click.echo(f"Note: {spec.env_var} is still set in this environment.")


# --------------------------------------------------------------------------- config
@cli.group("config", cls=_Group)
def config_group() -> None:
    """Locate and validate the configuration file."""


@config_group.command("path")
@click.pass_context
def config_path_cmd(ctx: click.Context) -> None:
    """Print the path of the config file in use (it may not exist yet)."""
    click.echo(str(config_path(_state(ctx).config)))


@config_group.command("check")
@click.pass_context
def config_check(ctx: click.Context) -> None:
    """Validate the config file and environment; print OK or what is wrong."""
    state = _state(ctx)
    settings = state.load()
    path = settings.config_file or config_path(state.config)
    note = "" if path.exists() else " (no file: using defaults)"
    click.echo(f"OK: {path}{note}")
    for line in settings.warnings():
        click.echo(f"warning: {line}")
    missing = settings.missing_for_console()
    if missing:
        click.echo("Not yet set for the live console (`pa-tui demo` works without them):")
        for line in missing:
            click.echo(f"  - {line}")


# --------------------------------------------------------------------------- entry
def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``pa-tui = pa_tui.cli:main``)."""
    cli.main(args=argv, prog_name="pa-tui")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
