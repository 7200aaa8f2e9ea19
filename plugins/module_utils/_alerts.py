# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is shipped to modules by AnsiballZ and loaded by the alertmanager event source; import it only from here.
"""Alertmanager webhook payloads -> one plain event per alert (the "alert" step of the loop).

:func:`normalize` is the one implementation of what an alert means to the collection; the event source, the
remediation playbook and ``intent_check`` all read alerts through it. It is pure: no I/O, no clock, no Ansible.

Which service and namespace an alert concerns is read from its labels, first match wins:

* service: ``exported_service``, ``service``, ``app_kubernetes_io_name``, ``app``, ``deployment``, ``job``
* namespace: ``exported_namespace``, ``namespace``, ``kubernetes_namespace``

``exported_*`` comes first on purpose: Prometheus renames a metric's own label to ``exported_<name>`` when it
clashes with a label of the scrape target, so for metrics relayed by an exporter (kube-state-metrics, a
blackbox prober) ``namespace`` names the exporter's namespace and ``exported_namespace`` the workload's. ``job``
is last because it usually names a scrape job rather than a service. Empty values count as absent.

:func:`escape_templates` makes untrusted text safe to hand to ansible-playbook as extra vars (see the event
source's documentation for why this is needed with ansible-core 2.19 and how it was proven);
:func:`unescape_templates` is its exact inverse, for consumers that read events without rendering them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from typing import Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import ValidationError

SOURCE = "alertmanager payload"
SUPPORTED_VERSION = "4"
STATUSES = ("firing", "resolved")
SERVICE_LABELS = ("exported_service", "service", "app_kubernetes_io_name", "app", "deployment", "job")
NAMESPACE_LABELS = ("exported_namespace", "namespace", "kubernetes_namespace")
# Kubernetes names never contain "_", so it cannot be mistaken for a real namespace, service or alert name.
UNKNOWN = "_"
# Alertmanager writes Go's zero time for "not set" (endsAt of a firing alert, for instance).
ZERO_TIME_PREFIX = "0001-01-01T00:00:00"

# Jinja opens a block with "{{", "{%" or "{#"; each opening is replaced by an expression printing it literally.
_OPENING = re.compile(r"\{[{%#]")
_ESCAPED_OPENING = re.compile(r"\{\{ '(\{[{%#])' \}\}")
_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def normalize(payload: Any) -> list[dict[str, Any]]:
    """Return one event per alert of an Alertmanager webhook payload (version "4").

    Raises :class:`ValidationError` naming the offending field when ``payload`` is not such a payload.
    """
    if not isinstance(payload, Mapping):
        raise ValidationError(SOURCE, "", f"must be a JSON object, got {_kind(payload)}")
    version = payload.get("version")
    if version is not None and version != SUPPORTED_VERSION:
        raise ValidationError(
            SOURCE, "version", f'unsupported version {_show(version)}, expected "{SUPPORTED_VERSION}"'
        )
    alerts = payload.get("alerts")
    if alerts is None:
        raise ValidationError(SOURCE, "alerts", "is required (this is not an Alertmanager webhook payload)")
    if not isinstance(alerts, list):
        raise ValidationError(SOURCE, "alerts", f"must be a list, got {_kind(alerts)}")
    group = _group_fields(payload)
    return [{**_alert_fields(alert, f"alerts[{index}]"), **group} for index, alert in enumerate(alerts)]


def _group_fields(payload: Mapping[str, Any]) -> dict[str, Any]:
    truncated = payload.get("truncatedAlerts", 0)
    if not isinstance(truncated, int) or isinstance(truncated, bool) or truncated < 0:
        raise ValidationError(SOURCE, "truncatedAlerts", f"must be an integer >= 0, got {_kind(truncated)}")
    return {
        "groupKey": _optional_str(payload, "groupKey", "groupKey"),
        "groupLabels": _str_map(payload.get("groupLabels"), "groupLabels", required=False),
        "receiver": _optional_str(payload, "receiver", "receiver"),
        "externalURL": _optional_str(payload, "externalURL", "externalURL"),
        "truncatedAlerts": truncated,
    }


def _alert_fields(alert: Any, path: str) -> dict[str, Any]:
    if not isinstance(alert, Mapping):
        raise ValidationError(SOURCE, path, f"must be an object, got {_kind(alert)}")
    status = alert.get("status")
    if status not in STATUSES:
        raise ValidationError(SOURCE, f"{path}.status", f'must be "firing" or "resolved", got {_show(status)}')
    labels = _str_map(alert.get("labels"), f"{path}.labels", required=True)
    service, service_label = _first_label(labels, SERVICE_LABELS)
    namespace, namespace_label = _first_label(labels, NAMESPACE_LABELS)
    alertname = labels.get("alertname") or None
    return {
        "status": status,
        "fingerprint": _optional_str(alert, "fingerprint", f"{path}.fingerprint") or fingerprint_of(labels),
        "alertname": alertname,
        "service": service,
        "namespace": namespace,
        "incident": incident_key(namespace, service, alertname),
        "labels": labels,
        "annotations": _str_map(alert.get("annotations"), f"{path}.annotations", required=False),
        "startsAt": _time(alert, "startsAt", path),
        "endsAt": _time(alert, "endsAt", path),
        "generatorURL": _optional_str(alert, "generatorURL", f"{path}.generatorURL"),
        "source_labels": {"service": service_label, "namespace": namespace_label},
    }


def incident_key(namespace: str | None, service: str | None, alertname: str | None) -> str:
    """``namespace/service/alertname``, the same for every notification about one problem; ``_`` if unknown."""
    return "/".join(part or UNKNOWN for part in (namespace, service, alertname))


def fingerprint_of(labels: Mapping[str, str]) -> str:
    """A stable 16-hex-digit fingerprint of a label set, for senders that do not send Alertmanager's own."""
    digest = hashlib.sha256()
    for name in sorted(labels):
        digest.update(f"{name}\0{labels[name]}\0".encode())
    return digest.hexdigest()[:16]


def escape_templates(value: Any) -> Any:
    """Return ``value`` with every string rewritten so that rendering it once with Jinja yields it verbatim.

    Only strings containing ``{{``, ``{%`` or ``{#`` change; each such opening becomes ``{{ '{{' }}`` (and so on),
    an expression whose output is the opening itself. Mapping keys are left alone: Ansible never renders keys.
    """
    return _walk(value, "{", _escape_str)


def unescape_templates(value: Any) -> Any:
    """The exact inverse of :func:`escape_templates`."""
    return _walk(value, "{{ '{", _unescape_str)


def _escape_str(text: str) -> str:
    return _OPENING.sub(_escape_match, text)


def _unescape_str(text: str) -> str:
    return _ESCAPED_OPENING.sub(r"\1", text)


def _walk(value: Any, marker: str, change: Callable[[str], str]) -> Any:
    """Apply ``change`` to every string value containing ``marker``, returning new containers.

    This runs on every alert the source receives: strings without the marker (nearly all) are kept without a
    call, and the concrete types are checked before the (slow) Mapping ABC.
    """
    if isinstance(value, str):
        return change(value) if marker in value else value
    if isinstance(value, dict) or isinstance(value, Mapping):
        return {
            key: item if isinstance(item, str) and marker not in item else _walk(item, marker, change)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [item if isinstance(item, str) and marker not in item else _walk(item, marker, change) for item in value]
    return value


def _escape_match(match: re.Match[str]) -> str:
    return "{{ '" + match.group(0) + "' }}"


def _first_label(labels: Mapping[str, str], names: tuple[str, ...]) -> tuple[str | None, str | None]:
    for name in names:
        if labels.get(name):
            return labels[name], name
    return None, None


def _str_map(value: Any, path: str, *, required: bool) -> dict[str, str]:
    if value is None:
        if required:
            raise ValidationError(SOURCE, path, "is required")
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(SOURCE, path, f"must be an object, got {_kind(value)}")
    for key, item in value.items():
        if not isinstance(item, str):
            raise ValidationError(SOURCE, f"{path}.{_name(key)}", f"must be a string, got {_kind(item)}")
    return dict(value)


def _optional_str(container: Mapping[str, Any], key: str, path: str) -> str | None:
    value = container.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValidationError(SOURCE, path, f"must be a string, got {_kind(value)}")
    return value


def _time(alert: Mapping[str, Any], key: str, path: str) -> str | None:
    value = _optional_str(alert, key, f"{path}.{key}")
    return None if value is None or value.startswith(ZERO_TIME_PREFIX) else value


def _name(key: str) -> str:
    """A mapping key for an error path: plain label names as they are, anything else quoted and cut short."""
    return key if _LABEL_NAME.fullmatch(key) else _show(key)


def _show(value: Any) -> str:
    """A short rendering of a scalar for an error message; the text is untrusted, so it is cut short."""
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:40] + "...")
    return _kind(value)


def _kind(value: Any) -> str:
    """Name a JSON value's type without echoing the (untrusted) value itself."""
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list", dict: "an object"}
    return names.get(type(value), type(value).__name__)


def alert_block(alert: dict[str, Any] | None) -> dict[str, Any] | None:
    """One Alertmanager alert (raw, or an event of the alertmanager source) as the snapshot's `alert`."""
    if not alert:
        return None
    event = normalize({"alerts": [alert]})[0]
    block = {k: event[k] for k in ("status", "labels", "annotations", "fingerprint") if event.get(k) is not None}
    if event.get("startsAt"):
        block["startsAt"] = event["startsAt"]
    # What the notification said around the alert is kept too (as data), when the alert came with it.
    for key in ("generatorURL", "groupKey", "groupLabels", "receiver", "externalURL"):
        if alert.get(key):
            block[key] = alert[key]
    return block


def target_of(alert: dict[str, Any] | None, namespace: str | None, service: str | None) -> tuple[str, str]:
    """The service to check: the options win over the alert's labels."""
    event = normalize({"alerts": [alert]})[0] if alert else {}
    namespace = namespace or event.get("namespace")
    service = service or event.get("service")
    if not namespace or not service:
        raise ValidationError("options", "", "namespace and service are required, as options or as labels of the alert")
    return namespace, service
