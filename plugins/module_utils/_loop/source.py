# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is loaded by the collection's event sources (extensions/eda/plugins/event_source); import it only from there.
"""What both event sources need besides their own logic: their arguments, the clock, /metrics and /healthz.

ansible-rulebook substitutes rulebook variables into a source's arguments as strings (``"{{ port }}"`` becomes
``"5000"``), so every reader accepts the string spelling of its type. Bad values raise ``ValueError`` naming the
argument, which ansible-rulebook reports as the source's start-up error.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

# (name suffix, kind, help, [(labels, value), ...]) - one Prometheus metric family.
Family = tuple[str, str, str, list[tuple[str, float]]]

_DURATION = re.compile(r"(\d+(ms|s|m|h|d|w|y))+")
_TRUE, _FALSE = ("true", "yes", "on"), ("false", "no", "off")


# --- arguments ------------------------------------------------------------------------------------------------------


def reject_unknown(args: Mapping[str, Any], known: Iterable[str]) -> None:
    """ansible-rulebook adds its own ``eda_*`` arguments (eda_feedback_queue); anything else unknown is a typo."""
    names = list(known)
    unknown = sorted(k for k in args if k not in names and not k.startswith("eda_"))
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown option (known: {', '.join(names)})")


def optional_str(args: Mapping[str, Any], name: str) -> str | None:
    value = args.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        # An empty token usually means an unset variable: refuse rather than run without it.
        raise ValueError(f"{name}: must be a non-empty string")
    return value


def required_str(args: Mapping[str, Any], name: str) -> str:
    value = optional_str(args, name)
    if value is None:
        raise ValueError(f"{name}: required, a non-empty string")
    return value


def string(args: Mapping[str, Any], name: str, default: str) -> str:
    value = optional_str(args, name)
    return default if value is None else value


def integer(args: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = args.get(name, default)
    if value is None:
        value = default
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name}: must be an integer between {low} and {high}")
    return value


def number(args: Mapping[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = args.get(name, default)
    if value is None:
        value = default
    try:
        result = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        result = math.nan
    if not low <= result <= high:
        raise ValueError(f"{name}: must be a number between {low:g} and {high:g}")
    return result


def boolean(args: Mapping[str, Any], name: str, default: bool) -> bool:
    value = args.get(name, default)
    if value is None:
        return default
    if isinstance(value, str) and value.lower() in _TRUE + _FALSE:
        return value.lower() in _TRUE
    if not isinstance(value, bool):
        raise ValueError(f"{name}: must be true or false")
    return value


def duration(args: Mapping[str, Any], name: str, default: str | None) -> str | None:
    """A Prometheus duration (``30s``, ``1m``, ``1h30m``); empty or null means none."""
    value = args.get(name, default)
    if value in (None, ""):
        return None
    if not isinstance(value, str) or _DURATION.fullmatch(value) is None:
        raise ValueError(f"{name}: must be a Prometheus duration such as 30s, 1m or 1h30m")
    return value


def choice(args: Mapping[str, Any], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = string(args, name, default)
    if value not in choices:
        raise ValueError(f"{name}: must be one of {', '.join(choices)}")
    return value


def str_list(args: Mapping[str, Any], name: str) -> list[Any]:
    """A list argument (the patch catalog): a list, or null for none."""
    value = args.get(name)
    if value in (None, ""):
        return []
    if not isinstance(value, list):
        raise ValueError(f"{name}: must be a list")
    return value


# --- clock ----------------------------------------------------------------------------------------------------------


def utc_now() -> str:
    """Now, as the sources stamp what they receive: RFC 3339, milliseconds, ``Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- /metrics and /healthz ------------------------------------------------------------------------------------------


def by_label(label: str, counts: Mapping[str, float]) -> list[tuple[str, float]]:
    """Samples of one family split by one label (label values are the collection's own names, never alert text)."""
    return [(f'{{{label}="{key}"}}', value) for key, value in counts.items()]


def render_metrics(prefix: str, families: Iterable[Family]) -> str:
    """The Prometheus text exposition of metric families named ``<prefix>_<suffix>``."""
    lines: list[str] = []
    for suffix, kind, help_text, samples in families:
        name = f"{prefix}_{suffix}"
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        lines += [f"{name}{labels} {_sample(value)}" for labels, value in samples]
    return "\n".join(lines) + "\n"


def _sample(value: float) -> str:
    return str(int(value)) if isinstance(value, int) or float(value).is_integer() else repr(float(value))


def health_app(
    health: Callable[[], tuple[bool, dict[str, Any]]],
    metrics: Callable[[], str],
    app: Any = None,
) -> Any:
    """An aiohttp application (``app``, or a new one) with GET /healthz (``health()`` -> alive, body: 200 or 503)
    and GET /metrics (``metrics()``). Neither needs a token, and neither may show alert text."""
    from aiohttp import web  # the sources need aiohttp; the modules that ship this file do not

    async def healthz(request: Any) -> Any:
        alive, body = health()
        return web.json_response(body, status=200 if alive else 503)

    async def metrics_page(request: Any) -> Any:
        return web.Response(text=metrics(), content_type="text/plain", charset="utf-8")

    app = app if app is not None else web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_page)
    return app


async def start_site(app: Any, host: str, port: int, ssl_context: Any = None, shutdown_timeout: float = 2.0) -> Any:
    """Serve ``app`` on host:port; returns the runner to clean up. A port in use is a ``ValueError`` naming it."""
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ValueError(f"port: cannot listen on {host}:{port}: {exc.strerror}") from exc
    return runner
