# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is shipped to modules by AnsiballZ; import it only from this collection.
"""The Kubernetes adapter: the only place where the remediation modules do I/O.

:func:`connect` builds a client of the official ``kubernetes`` library from the ``k8s_auth`` options.
:class:`Kube` reads objects as plain dicts and applies the :class:`~._act.plans.Change` list of a plan, wrapping
every failure as ``ApiError("cannot <what>: <reason from the API's Status body>")``. The modules' orchestration
(the ``run_*`` functions) is in :mod:`._k8s.runner`.

Objects travel as JSON dicts through ``ApiClient`` (auth, TLS and kubeconfig handling of the official client)
rather than through the generated models, so fields the models do not know survive a read-modify-write.
"""

from __future__ import annotations

import builtins  # Kube.list shadows the builtin inside the class body
import json
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

from ansible_collections.zerotouch.selfheal.plugins.module_utils._act import plans as actions
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import (
    ApiError,
    MissingLibraryError,
    SelfHealError,
    ValidationError,
)

try:
    import urllib3
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException
except ImportError:
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR: str | None = traceback.format_exc()

    class ApiException(Exception):  # type: ignore[no-redef]  # so that except clauses still compile
        status: int | None = None
        reason: str | None = None
        body: str | None = None

else:
    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None

# apiVersion, kind -> (plural, namespaced): the kinds a reconcile may declare.
KINDS: dict[tuple[str, str], tuple[str, bool]] = {
    ("v1", "Namespace"): ("namespaces", False),
    ("v1", "Node"): ("nodes", False),
    ("v1", "Pod"): ("pods", True),
    ("v1", "Service"): ("services", True),
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Secret"): ("secrets", True),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("apps/v1", "ReplicaSet"): ("replicasets", True),
    ("apps/v1", "StatefulSet"): ("statefulsets", True),
    ("apps/v1", "DaemonSet"): ("daemonsets", True),
    ("coordination.k8s.io/v1", "Lease"): ("leases", True),
    ("policy/v1", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
    ("autoscaling/v2", "HorizontalPodAutoscaler"): ("horizontalpodautoscalers", True),
    ("networking.k8s.io/v1", "Ingress"): ("ingresses", True),
    ("networking.k8s.io/v1", "NetworkPolicy"): ("networkpolicies", True),
}

REQUEST_TIMEOUT = 30  # seconds, per API call
POLL_INTERVAL = 0.5  # seconds between two looks at a rollout or a refused eviction
CONFLICT_ATTEMPTS = 3  # read-plan-write rounds when another writer changed the object in between


def now() -> datetime:
    return datetime.now(UTC)


def require_kubernetes() -> None:
    if not HAS_KUBERNETES:
        raise MissingLibraryError("kubernetes", KUBERNETES_IMPORT_ERROR)


def api_reason(exc: Exception) -> str:
    """The human part of an API failure: the Status body's message, else the HTTP status and reason."""
    body = getattr(exc, "body", None)
    if body:
        try:
            status = json.loads(body)
        except (TypeError, ValueError):
            status = None
        if isinstance(status, dict) and status.get("message"):
            return str(status["message"])
    code, reason = getattr(exc, "status", None), getattr(exc, "reason", None)
    text = " ".join(str(part) for part in (code, reason) if part)
    return text or str(exc)


def connect(params: dict[str, Any], request_timeout: float = REQUEST_TIMEOUT) -> Kube:
    """A client from the k8s_auth options (already defaulted from the K8S_AUTH_* environment variables).

    ``request_timeout`` bounds each API call (the warm loop passes its check timeout: a hung API server ends a
    check in an escalation, not a stalled worker).

    ``host``/``api_key``/``validate_certs`` override what the kubeconfig says. Without any option the client
    looks for a kubeconfig itself (KUBECONFIG, ~/.kube/config), then for an in-cluster service account.
    """
    require_kubernetes()
    kubeconfig, context, host = params.get("kubeconfig"), params.get("context"), params.get("host")
    cfg = k8s_client.Configuration()
    if kubeconfig or context or not host:
        try:
            k8s_config.load_kube_config(
                config_file=kubeconfig, context=context, client_configuration=cfg, persist_config=False
            )
        except (ConfigException, OSError) as exc:
            if kubeconfig or context or host:
                where = kubeconfig or "the default kubeconfig"
                raise ApiError(f"cannot load {where}: {exc}") from exc
            try:
                k8s_config.load_incluster_config(client_configuration=cfg)
            except ConfigException as exc2:
                raise ApiError(
                    "no Kubernetes connection configured: set kubeconfig (or K8S_AUTH_KUBECONFIG), "
                    f"or host and api_key ({exc}; {exc2})"
                ) from exc2
    overrides: dict[str, Any] = {}
    if host:
        overrides["host"] = host
    if params.get("api_key"):
        overrides.update(api_key={"authorization": params["api_key"]}, api_key_prefix={"authorization": "Bearer"})
    if params.get("validate_certs") is not None:
        overrides["verify_ssl"] = params["validate_certs"]
    _override(cfg, overrides)
    return Kube(k8s_client.ApiClient(cfg), request_timeout=request_timeout)


def _override(cfg: Any, overrides: dict[str, Any]) -> None:
    """Apply the options over the kubeconfig, also after the client's token refresh hook has re-read it.

    The kubeconfig loader installs a hook that re-applies the kubeconfig before each request (to refresh
    tokens); without re-applying the options after it, ``host`` and ``api_key`` would silently be dropped.
    """
    if not overrides:
        return
    for key, value in overrides.items():
        setattr(cfg, key, value)
    hook = cfg.refresh_api_key_hook
    if overrides.get("api_key"):
        hook = None  # a token given as an option never needs refreshing from the kubeconfig

    def refresh(conf: Any) -> None:
        if hook is not None:
            hook(conf)
        for key, value in overrides.items():
            setattr(conf, key, value)

    cfg.refresh_api_key_hook = refresh


# How a plan is applied, when not change by change (a drain retries refused evictions): execute passes the plan,
# converge also the list of changes done so far, so that a retry after a conflict knows what was written.
ApplyPlan = Callable[[actions.Plan], None]
ApplyTracked = Callable[[actions.Plan, "builtins.list[actions.Change]"], None]


class KubeApi(Protocol):
    """What the gatherer, the loop and the runners need of a Kubernetes client: :class:`Kube` is the real one, and
    tests pass fakes with the same shape. Objects are plain dicts as the API serves them."""

    sleep: Callable[[float], None]

    def get(self, api_version: str, kind: str, namespace: str | None, name: str, missing_ok: bool = False) -> Any: ...

    def list(
        self, api_version: str, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> builtins.list[dict[str, Any]]: ...

    def send(self, change: actions.Change) -> Any: ...

    def apply(self, change: actions.Change) -> Any: ...

    def failing_as(self, what: str) -> AbstractContextManager[None]: ...

    def execute(
        self, plan: actions.Plan, check_mode: bool, diff: bool, apply: ApplyPlan | None = None
    ) -> dict[str, Any]: ...

    def converge(
        self, make_plan: Callable[[], actions.Plan], check_mode: bool, diff: bool, apply: ApplyTracked | None = None
    ) -> dict[str, Any]: ...


class Kube:
    """Reads and writes Kubernetes objects as dicts; every failure becomes an :class:`ApiError`."""

    def __init__(
        self, api_client: Any, sleep: Callable[[float], None] = time.sleep, request_timeout: float = REQUEST_TIMEOUT
    ) -> None:
        self.api = api_client
        self.sleep = sleep
        self.request_timeout = request_timeout

    # --- plumbing -----------------------------------------------------------------------------------------------

    @staticmethod
    def path(api_version: str, kind: str, namespace: str | None = None, name: str | None = None, sub: str = "") -> str:
        try:
            plural, namespaced = KINDS[(api_version, kind)]
        except KeyError:
            known = ", ".join(f"{k} ({v})" for v, k in sorted(KINDS))
            problem = f"unsupported kind {api_version} {kind}; supported: {known}"
            raise ValidationError("manifests", kind, problem) from None
        parts = ["/api/v1" if api_version == "v1" else "/apis/" + api_version]
        if namespaced and namespace:
            parts.append("namespaces/" + namespace)
        parts.append(plural)
        if name:
            parts.append(name)
        if sub:
            parts.append(sub)
        return "/".join(parts)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        query: builtins.list[tuple[str, str]] | None = None,
    ) -> Any:
        """One API call; returns the decoded JSON body. Raises the client's ApiException on a non-2xx answer."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        params = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or None,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(*params, _request_timeout=self.request_timeout)
        data = response.read()
        if not 200 <= response.status <= 299:
            text = data.decode("utf-8", "replace") if data else None
            raise ApiException(status=response.status, reason=response.reason, body=text)
        return json.loads(data) if data else None

    @contextmanager
    def failing_as(self, what: str) -> Iterator[None]:
        """Turn whatever the client raises into ``ApiError("cannot <what>: <reason>")``."""
        try:
            yield
        except ApiException as exc:
            raise ApiError(f"cannot {what}: {api_reason(exc)}") from exc
        except urllib3.exceptions.HTTPError as exc:
            reason = getattr(exc, "reason", None) or exc
            raise ApiError(
                f"cannot {what}: cannot reach the API server at {self.api.configuration.host}: {reason}"
            ) from exc

    def get(self, api_version: str, kind: str, namespace: str | None, name: str, missing_ok: bool = False) -> Any:
        """One object, or None (``missing_ok``); a missing one otherwise fails as ``deployment shop/x not found``."""
        where = f"{namespace}/{name}" if namespace else name
        with self.failing_as(f"read {kind.lower()} {where}"):
            try:
                return self.request("GET", self.path(api_version, kind, namespace, name))
            except ApiException as exc:
                if exc.status != 404:
                    raise
        if missing_ok:
            return None
        raise ApiError(f"{kind.lower()} {where} not found")

    def list(
        self, api_version: str, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        """The objects of a kind (in a namespace); with ``label_selector``, the API server sends only those it
        selects (a big namespace is not read whole for one Deployment's pods)."""
        where = f" in namespace {namespace}" if namespace else ""
        query = [("labelSelector", label_selector)] if label_selector else None
        with self.failing_as(f"list {KINDS.get((api_version, kind), (kind.lower() + 's',))[0]}{where}"):
            answer = self.request("GET", self.path(api_version, kind, namespace), query=query)
        return list((answer or {}).get("items") or [])

    def send(self, change: actions.Change) -> Any:
        """Apply one change; raises the client's ApiException (callers that handle 409/429 themselves use this)."""
        c = change
        if c.verb == "evict":
            return self.request("POST", self.path(c.api_version, c.kind, c.namespace, c.name, "eviction"), c.body)
        path = self.path(
            c.api_version, c.kind, c.namespace, None if c.verb == "create" else c.name, c.subresource or ""
        )
        if c.verb == "create":
            return self.request("POST", path, c.body)
        if c.verb == "replace":
            return self.request("PUT", path, c.body)
        if c.verb == "patch":
            return self.request("PATCH", path, c.body, "application/merge-patch+json")
        if c.verb == "delete":
            return self.request("DELETE", path)
        raise SelfHealError(f"unknown change verb {c.verb!r}")

    def apply(self, change: actions.Change) -> Any:
        with self.failing_as(change.what or f"{change.verb} {change.kind} {change.name}"):
            return self.send(change)

    def execute(
        self, plan: actions.Plan, check_mode: bool, diff: bool, apply: ApplyPlan | None = None
    ) -> dict[str, Any]:
        """Apply a plan (unless in check mode) and turn it into the module result."""
        if plan.changes and not check_mode:
            (apply or self.apply_all)(plan)
        return result_of(plan, check_mode, diff)

    def converge(
        self, make_plan: Callable[[], actions.Plan], check_mode: bool, diff: bool, apply: ApplyTracked | None = None
    ) -> dict[str, Any]:
        """Read, plan and apply; when a write loses a race (409: the object changed since it was read), do it again.

        Writes are guarded by the resourceVersion read, so a controller updating the object in between makes
        the write fail rather than undo its update; a fresh read and plan then either write again or find that
        nothing is left to do.
        """
        done: builtins.list[actions.Change] = []
        for attempt in range(CONFLICT_ATTEMPTS):
            plan = make_plan()
            if not plan.changes or check_mode:
                break
            try:
                (apply or self.apply_all)(plan, done)
                break
            except ApiError as exc:
                if getattr(exc.__cause__, "status", None) != 409 or attempt == CONFLICT_ATTEMPTS - 1:
                    raise
        result = result_of(plan, check_mode, diff)
        result["changed"] = plan.changed or bool(done)
        return result

    def apply_all(self, plan: actions.Plan, done: builtins.list[actions.Change] | None = None) -> None:
        for change in plan.changes:
            self.apply(change)
            if done is not None:
                done.append(change)


def result_of(plan: actions.Plan, check_mode: bool, diff: bool) -> dict[str, Any]:
    result = dict(plan.result)
    result.update(changed=plan.changed, msg=plan.check_message if check_mode else plan.message)
    if diff:
        result["diff"] = {"before": plan.before, "after": plan.after}
    return result
