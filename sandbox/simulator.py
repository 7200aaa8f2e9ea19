"""The workload simulator: the metrics the sandbox's services would export, computed from the cluster state.

It reads the Kubernetes stand-in through its HTTP API (as kube-state-metrics would), models load, CPU, memory,
latency and errors per pod, and serves them to Prometheus in the text exposition format. Faults are injected
through its control API (`POST /faults`); some faults act on the cluster the way the real cause would (a bad
rollout is a real rollout, a crash loop is a kubelet status), so remediation through the Kubernetes API is
what makes the metrics recover.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.web
import yaml

WORKLOADS = Path(__file__).with_name("config") / "workloads.yml"
FAULT_KINDS = (
    "bad-rollout",
    "traffic-surge",
    "slow-node",
    "node-down",
    "noisy-tenant",
    "crashloop",
    "memory-leak",
    "dependency-down",
    "drift",
    "scale-to-zero",
)
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
TENANT_LIMITS_SUFFIX = "-tenant-limits"  # ConfigMap <service>-tenant-limits: {tenant: max requests/s}


class FaultError(ValueError):
    """A fault request that cannot be applied; the message names what is wrong."""


@dataclass
class Fault:
    kind: str
    namespace: str
    service: str
    node: str | None = None
    tenant: str | None = None
    dependency: str | None = None
    factor: float = 0.0
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    started: float = field(default_factory=time.time)
    undo: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, {})}


@dataclass
class PodState:
    cpu_seconds: float = 0.0
    memory_ratio: float = 0.0
    leaking: bool = False


@dataclass
class ServiceCounters:
    requests: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))  # (tenant, code)
    # (pod, node) -> cumulative bucket counts, sum, count
    buckets: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    sums: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    counts: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _pod_ready(pod: dict[str, Any]) -> bool:
    for cond in pod.get("status", {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def _node_ready(node: dict[str, Any]) -> bool:
    for cond in node.get("status", {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return True  # a node without conditions has never been reported NotReady


def _waiting_reason(pod: dict[str, Any]) -> str | None:
    for cs in pod.get("status", {}).get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            return str(waiting["reason"])
    return None


def _quantity(value: str | int | float | None, default: float) -> float:
    """Parse a Kubernetes quantity (500m, 2, 256Mi, 1Gi) into a float."""
    if value is None:
        return default
    text = str(value)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, mult in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * mult
    return float(text)


def next_image(image: str) -> str:
    """The image a new release would bring: the last number of the tag bumped (shop/app:1.41 -> shop/app:1.42)."""
    repo, _, tag = image.rpartition(":")
    if not repo:
        return f"{image}:next"
    match = re.match(r"^(.*?)(\d+)$", tag)
    if match:
        return f"{repo}:{match.group(1)}{int(match.group(2)) + 1}"
    return f"{repo}:{tag}-next"


def latency_factor(utilization: float) -> float:
    """Queueing: latency is flat until 70% CPU, then grows quadratically."""
    return 1.0 + 6.0 * max(0.0, utilization - 0.7) ** 2


class Simulator:
    def __init__(self, kube_url: str, workloads: Path = WORKLOADS, tick: float = 0.5) -> None:
        self.kube_url = kube_url.rstrip("/")
        spec = yaml.safe_load(workloads.read_text())
        self.defaults: dict[str, Any] = spec["defaults"]
        self.profiles: dict[str, dict[str, Any]] = spec.get("services") or {}
        self.tick = tick
        self.faults: dict[str, Fault] = {}
        self.bad_images: set[str] = set()
        self.cluster: dict[str, list[dict[str, Any]]] = {}
        self.pods: dict[str, PodState] = {}
        self.counters: dict[tuple[str, str], ServiceCounters] = defaultdict(ServiceCounters)
        self.gauges: dict[str, list[tuple[dict[str, str], float]]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._runner: aiohttp.web.AppRunner | None = None
        self._task: asyncio.Task[None] | None = None
        self._last = time.monotonic()
        self.url = ""

    # --- lifecycle ---------------------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        # Generous: on a loaded 2-core machine the stand-in can take seconds, and a fault must not fail for that.
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        app = aiohttp.web.Application()
        app.add_routes(
            [
                aiohttp.web.get("/metrics", self._serve_metrics),
                aiohttp.web.get("/healthz", self._serve_health),
                aiohttp.web.get("/faults", self._serve_faults),
                aiohttp.web.post("/faults", self._serve_inject),
                aiohttp.web.delete("/faults", self._serve_clear_all),
                aiohttp.web.delete("/faults/{id}", self._serve_clear),
                aiohttp.web.put("/profiles/{namespace}/{service}", self._serve_profile),
            ]
        )
        self._runner = aiohttp.web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = aiohttp.web.TCPSite(self._runner, host, port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://{host}:{bound}"
        await self.refresh()
        self._task = asyncio.create_task(self._loop())
        return self.url

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._runner:
            await self._runner.cleanup()
        if self._session:
            await self._session.close()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            try:
                await self.refresh()
            except (TimeoutError, aiohttp.ClientError):
                continue  # the API is briefly unavailable: keep the last state, try again next tick

    # --- Kubernetes API ------------------------------------------------------------------------------------------

    async def _get(self, path: str) -> dict[str, Any]:
        assert self._session is not None
        async with self._session.get(self.kube_url + path) as resp:
            resp.raise_for_status()
            return await resp.json()  # type: ignore[no-any-return]

    async def _patch(self, path: str, body: dict[str, Any], kind: str = "merge") -> dict[str, Any]:
        assert self._session is not None
        ctype = {"merge": "application/merge-patch+json", "strategic": "application/strategic-merge-patch+json"}[kind]
        async with self._session.patch(
            self.kube_url + path, data=json.dumps(body), headers={"Content-Type": ctype}
        ) as resp:
            payload = await resp.json()
            if resp.status >= 400:
                raise FaultError(f"PATCH {path} failed with {resp.status}: {payload.get('message', payload)}")
            return payload  # type: ignore[no-any-return]

    async def refresh(self) -> None:
        """Read the cluster and advance the model by the time since the last tick."""
        paths = {
            "deployments": "/apis/apps/v1/deployments",
            "pods": "/api/v1/pods",
            "nodes": "/api/v1/nodes",
            "services": "/api/v1/services",
            "configmaps": "/api/v1/configmaps",
        }
        results = await asyncio.gather(*(self._get(p) for p in paths.values()))
        self.cluster = {k: r.get("items") or [] for k, r in zip(paths, results, strict=True)}
        now = time.monotonic()
        dt, self._last = min(now - self._last, 5.0), now
        self.advance(dt)

    # --- the model -------------------------------------------------------------------------------------------

    def _profile(self, namespace: str, service: str) -> dict[str, Any]:
        return {**self.defaults, **self.profiles.get(f"{namespace}/{service}", {})}

    def _faults(self, namespace: str, service: str, kind: str) -> list[Fault]:
        return [f for f in self.faults.values() if f.kind == kind and (f.namespace, f.service) == (namespace, service)]

    def _service_broken(self, namespace: str, labels: dict[str, str], container_ports: set[Any]) -> bool:
        """A Service that selects the pods but targets a port no container listens on drops every request."""
        for svc in self.cluster.get("services", []):
            meta, spec = svc["metadata"], svc.get("spec") or {}
            if meta.get("namespace") != namespace or not _matches(spec.get("selector") or {}, labels):
                continue
            for port in spec.get("ports") or []:
                if port.get("targetPort", port.get("port")) not in container_ports:
                    return True
        return False

    def _tenant_limits(self, namespace: str, service: str) -> dict[str, float]:
        for cm in self.cluster.get("configmaps", []):
            meta = cm["metadata"]
            if meta.get("namespace") == namespace and meta.get("name") == service + TENANT_LIMITS_SUFFIX:
                limits = {}
                for tenant, value in (cm.get("data") or {}).items():
                    try:
                        limits[tenant] = float(value)
                    except ValueError:
                        continue  # a limit the service cannot parse is ignored, as a real service would
                return limits
        return {}

    def advance(self, dt: float) -> None:
        nodes = {n["metadata"]["name"]: n for n in self.cluster.get("nodes", [])}
        gauges: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
        seen_pods: set[str] = set()
        for dep in self.cluster.get("deployments", []):
            self._advance_deployment(dep, nodes, dt, gauges, seen_pods)
        for name in list(self.pods):
            if name not in seen_pods:
                del self.pods[name]
        # A deleted pod's series disappear (Prometheus marks them stale), as they would from a real scrape.
        for counters in self.counters.values():
            for key in [k for k in counters.buckets if k[0] not in seen_pods]:
                del counters.buckets[key], counters.sums[key], counters.counts[key]
        self.gauges = gauges

    def _advance_deployment(
        self,
        dep: dict[str, Any],
        nodes: dict[str, dict[str, Any]],
        dt: float,
        gauges: dict[str, list[tuple[dict[str, str], float]]],
        seen_pods: set[str],
    ) -> None:
        meta, spec = dep["metadata"], dep.get("spec") or {}
        ns, svc = meta["namespace"], meta["name"]
        prof = self._profile(ns, svc)
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        pods = [
            p
            for p in self.cluster.get("pods", [])
            if p["metadata"].get("namespace") == ns
            and _matches(selector, p["metadata"].get("labels") or {})
            and not p["metadata"].get("deletionTimestamp")
        ]
        containers = (spec.get("template", {}).get("spec") or {}).get("containers") or [{}]
        ports: set[Any] = set()
        for c in containers:
            for p in c.get("ports") or []:
                ports.update({p.get("containerPort"), p.get("name")})
        labels = (spec.get("template", {}).get("metadata") or {}).get("labels") or {}
        broken = self._service_broken(ns, labels, ports - {None})

        serving = [
            p
            for p in pods
            if p.get("status", {}).get("phase") == "Running"
            and _pod_ready(p)
            and _node_ready(nodes.get(p.get("spec", {}).get("nodeName", ""), {}))
        ]

        # Demand per tenant, then the per-tenant limits the service honours (excess is answered 429).
        surge = 1.0
        for f in self._faults(ns, svc, "traffic-surge"):
            surge *= f.factor or 3.0
        demand = {t: prof["base_rps"] * share * surge for t, share in prof["tenants"].items()}
        for f in self._faults(ns, svc, "noisy-tenant"):
            tenant = f.tenant or next(iter(demand))
            demand[tenant] = demand.get(tenant, 0.0) + prof["base_rps"] * (f.factor or 4.0)
        limits = self._tenant_limits(ns, svc)
        accepted = {t: min(d, limits.get(t, math.inf)) for t, d in demand.items()}
        total_accepted = sum(accepted.values())

        counters = self.counters[(ns, svc)]
        for tenant, d in demand.items():
            counters.requests[(tenant, "429")] += (d - accepted[tenant]) * dt

        dep_down = self._faults(ns, svc, "dependency-down")
        error_ratio = 0.0
        if dep_down:
            error_ratio = max(error_ratio, 0.3)
        per_pod = total_accepted / len(serving) if serving else 0.0
        util = per_pod / prof["capacity_rps_per_pod"] if serving else 0.0
        if util > 1.6:  # past saturation requests start timing out at the proxy
            error_ratio = max(error_ratio, min(0.5, (util - 1.6) * 0.5))

        if broken or not serving:
            error_ratio = 1.0
        pod_errors: dict[str, float] = {}
        pod_latency: dict[str, float] = {}
        for p in serving:
            image = (p["spec"].get("containers") or [{}])[0].get("image", "")
            factor = latency_factor(util)
            node = p["spec"].get("nodeName", "")
            for f in self.faults.values():
                if f.kind == "slow-node" and f.node == node:
                    factor *= f.factor or 6.0
            bad = image in self.bad_images
            if bad:
                factor *= 3.0
            if dep_down:
                factor *= 2.0
            pod_latency[p["metadata"]["name"]] = prof["base_p99_ms"] * factor
            pod_errors[p["metadata"]["name"]] = max(error_ratio, 0.08 if bad else 0.0)

        # Requests by tenant and code; the mean error ratio of the pods that served them.
        mean_errors = sum(pod_errors.values()) / len(pod_errors) if pod_errors else error_ratio
        if broken or not serving:
            mean_errors = 1.0
        for tenant, a in accepted.items():
            failed = a * mean_errors
            code = "502" if dep_down and serving and not broken else "503"
            counters.requests[(tenant, "200")] += (a - failed) * dt
            counters.requests[(tenant, code)] += failed * dt
        if not broken:
            for p in serving:
                self._observe(counters, p, per_pod * dt, pod_latency[p["metadata"]["name"]] / 1000.0)

        cpu_request = _quantity(((containers[0].get("resources") or {}).get("requests") or {}).get("cpu"), default=0.1)
        mem_limit = _quantity(((containers[0].get("resources") or {}).get("limits") or {}).get("memory"), 512 * 2**20)
        leaks = self._faults(ns, svc, "memory-leak")
        for p in pods:
            self._pod_metrics(p, ns, svc, p in serving, util, cpu_request, mem_limit, leaks, prof, dt, gauges)
            seen_pods.add(p["metadata"]["name"])

        base = {"namespace": ns, "deployment": svc}
        gauges["kube_deployment_spec_replicas"].append((base, float(spec.get("replicas") or 0)))
        status = dep.get("status") or {}
        gauges["kube_deployment_status_replicas_available"].append((base, float(status.get("availableReplicas") or 0)))
        for dependency in prof["dependencies"]:
            down = any(f.dependency in (None, dependency) for f in dep_down)
            labels_ = {"namespace": ns, "service": svc, "dependency": dependency}
            gauges["dependency_up"].append((labels_, 0.0 if down else 1.0))
            gauges["dependency_latency_p99_seconds"].append((labels_, 0.9 if down else 0.012))

    def _observe(self, counters: ServiceCounters, pod: dict[str, Any], n: float, p99_s: float) -> None:
        """Add n requests whose latency is exponential with the given p99 to the pod's histogram."""
        key = (pod["metadata"]["name"], pod["spec"].get("nodeName", ""))
        mean = p99_s / math.log(100)
        cumulative = counters.buckets.setdefault(key, [0.0] * (len(BUCKETS) + 1))
        for i, le in enumerate(BUCKETS):
            cumulative[i] += n * (1.0 - math.exp(-le / mean))
        cumulative[-1] += n
        counters.sums[key] += n * mean
        counters.counts[key] += n

    def _pod_metrics(
        self,
        pod: dict[str, Any],
        ns: str,
        svc: str,
        serving: bool,
        util: float,
        cpu_request: float,
        mem_limit: float,
        leaks: list[Fault],
        prof: dict[str, Any],
        dt: float,
        gauges: dict[str, list[tuple[dict[str, str], float]]],
    ) -> None:
        name = pod["metadata"]["name"]
        state = self.pods.get(name)
        if state is None:
            state = self.pods[name] = PodState(memory_ratio=prof["memory_baseline"])
        # A leak lives in the processes that were running when it started; replacement pods start clean.
        state.leaking = any(name in leak.undo.get("pods", ()) for leak in leaks)
        if state.leaking:
            state.memory_ratio = min(0.99, state.memory_ratio + 0.04 * dt)
        else:
            state.memory_ratio = max(prof["memory_baseline"], state.memory_ratio - 0.1 * dt)
        if serving:
            state.cpu_seconds += util * cpu_request * dt
        lbl = {"namespace": ns, "pod": name, "container": svc}
        node = pod.get("spec", {}).get("nodeName") or ""
        gauges["container_cpu_usage_seconds_total"].append((lbl, state.cpu_seconds))
        gauges["container_memory_working_set_bytes"].append((lbl, state.memory_ratio * mem_limit))
        gauges["kube_pod_container_resource_requests"].append(({**lbl, "resource": "cpu", "unit": "core"}, cpu_request))
        gauges["kube_pod_container_resource_limits"].append(({**lbl, "resource": "memory", "unit": "byte"}, mem_limit))
        ready = _pod_ready(pod)
        for cond in ("true", "false"):
            gauges["kube_pod_status_ready"].append(
                ({"namespace": ns, "pod": name, "condition": cond}, float(ready == (cond == "true")))
            )
        reason = _waiting_reason(pod)
        for r in ("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError"):
            gauges["kube_pod_container_status_waiting_reason"].append(({**lbl, "reason": r}, float(reason == r)))
        restarts = sum(cs.get("restartCount", 0) for cs in pod.get("status", {}).get("containerStatuses") or [])
        gauges["kube_pod_container_status_restarts_total"].append((lbl, float(restarts)))
        gauges["kube_pod_info"].append(({"namespace": ns, "pod": name, "node": node, "created_by_name": svc}, 1.0))

    # --- exposition --------------------------------------------------------------------------------------------

    def exposition(self) -> str:
        lines: list[str] = []

        def fmt(labels: dict[str, str]) -> str:
            inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            return "{" + inner + "}"

        lines.append("# TYPE http_requests_total counter")
        for (ns, svc), c in self.counters.items():
            for (tenant, code), value in sorted(c.requests.items()):
                labels = {"namespace": ns, "service": svc, "tenant": tenant, "code": code}
                lines.append(f"http_requests_total{fmt(labels)} {value:.3f}")
        lines.append("# TYPE http_request_duration_seconds histogram")
        for (ns, svc), c in self.counters.items():
            for (pod, node), cumulative in c.buckets.items():
                base = {"namespace": ns, "service": svc, "pod": pod, "node": node}
                for le, value in zip((*map(str, BUCKETS), "+Inf"), cumulative, strict=True):
                    lines.append(f"http_request_duration_seconds_bucket{fmt({**base, 'le': le})} {value:.3f}")
                lines.append(f"http_request_duration_seconds_sum{fmt(base)} {c.sums[(pod, node)]:.4f}")
                lines.append(f"http_request_duration_seconds_count{fmt(base)} {c.counts[(pod, node)]:.3f}")
        for name, samples in sorted(self.gauges.items()):
            kind = "counter" if name.endswith("_total") else "gauge"
            lines.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                lines.append(f"{name}{fmt(labels)} {value:.6g}")
        return "\n".join(lines) + "\n"

    # --- faults ------------------------------------------------------------------------------------------------

    def _deployment(self, namespace: str, service: str) -> dict[str, Any]:
        for dep in self.cluster.get("deployments", []):
            if dep["metadata"]["namespace"] == namespace and dep["metadata"]["name"] == service:
                return dep
        raise FaultError(f"no deployment {namespace}/{service} in the sandbox cluster")

    async def inject(self, request: dict[str, Any]) -> Fault:
        kind = request.get("fault")
        if kind not in FAULT_KINDS:
            raise FaultError(f"unknown fault {kind!r}: expected one of {', '.join(FAULT_KINDS)}")
        fault = Fault(
            kind=kind,
            namespace=str(request.get("namespace") or "shop"),
            service=str(request.get("service") or "checkout"),
            node=request.get("node"),
            tenant=request.get("tenant"),
            dependency=request.get("dependency"),
            factor=float(request.get("factor") or 0.0),
        )
        await self.refresh()
        dep = self._deployment(fault.namespace, fault.service)
        base = f"/apis/apps/v1/namespaces/{fault.namespace}/deployments/{fault.service}"
        if kind in ("slow-node", "node-down") and not fault.node:
            raise FaultError(f"fault {kind} needs a node")
        if kind == "bad-rollout":
            container = dep["spec"]["template"]["spec"]["containers"][0]
            image = request.get("image") or next_image(container["image"])
            self.bad_images.add(image)
            fault.undo = {"image": image}
            await self._patch(
                base,
                {"spec": {"template": {"spec": {"containers": [{"name": container["name"], "image": image}]}}}},
                "strategic",
            )
        elif kind == "node-down":
            await self._set_node_ready(fault.node or "", False)
        elif kind == "crashloop":
            fault.undo = {"pods": await self._crash_pods(dep)}
        elif kind == "memory-leak":
            fault.undo = {"pods": [p["metadata"]["name"] for p in self._pods_of(dep)]}
        elif kind == "drift":
            svc = await self._get(f"/api/v1/namespaces/{fault.namespace}/services/{fault.service}")
            ports = svc["spec"]["ports"]
            fault.undo = {"ports": ports}
            drifted = [{**ports[0], "targetPort": int(request.get("port") or 9090)}, *ports[1:]]
            await self._patch(
                f"/api/v1/namespaces/{fault.namespace}/services/{fault.service}", {"spec": {"ports": drifted}}
            )
        elif kind == "scale-to-zero":
            fault.undo = {"replicas": dep["spec"].get("replicas", 1)}
            await self._patch(base + "/scale", {"spec": {"replicas": 0}})
        self.faults[fault.id] = fault
        await self.refresh()
        return fault

    def _pods_of(self, dep: dict[str, Any]) -> list[dict[str, Any]]:
        selector = (dep["spec"].get("selector") or {}).get("matchLabels") or {}
        ns = dep["metadata"]["namespace"]
        return [
            p
            for p in self.cluster.get("pods", [])
            if p["metadata"].get("namespace") == ns and _matches(selector, p["metadata"].get("labels") or {})
        ]

    async def _crash_pods(self, dep: dict[str, Any]) -> list[str]:
        """Act as the kubelet: every current pod's container keeps exiting."""
        names = []
        for pod in self._pods_of(dep):
            name = pod["metadata"]["name"]
            container = (pod["spec"].get("containers") or [{}])[0].get("name", "app")
            status = {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
                "containerStatuses": [
                    {
                        "name": container,
                        "ready": False,
                        "restartCount": 6,
                        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off restarting"}},
                        "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
                    }
                ],
            }
            await self._patch(
                f"/api/v1/namespaces/{pod['metadata']['namespace']}/pods/{name}/status", {"status": status}
            )
            names.append(name)
        return names

    async def _set_node_ready(self, node: str, ready: bool) -> None:
        cond = {
            "type": "Ready",
            "status": "True" if ready else "False",
            "reason": "KubeletReady" if ready else "NodeStatusUnknown",
        }
        await self._patch(f"/api/v1/nodes/{node}/status", {"status": {"conditions": [cond]}})

    async def clear(self, fault_id: str) -> Fault:
        fault = self.faults.pop(fault_id, None)
        if fault is None:
            raise FaultError(f"no active fault with id {fault_id!r}")
        ns, name = fault.namespace, fault.service
        if fault.kind == "bad-rollout":
            self.bad_images.discard(fault.undo["image"])
        elif fault.kind == "node-down":
            await self._set_node_ready(fault.node or "", True)
        elif fault.kind == "crashloop":
            # The cause is gone: the kubelet's next restart succeeds; deleting the pods is the fastest way there.
            for pod in fault.undo["pods"]:
                assert self._session is not None
                async with self._session.delete(f"{self.kube_url}/api/v1/namespaces/{ns}/pods/{pod}"):
                    pass
        elif fault.kind == "drift":
            await self._patch(f"/api/v1/namespaces/{ns}/services/{name}", {"spec": {"ports": fault.undo["ports"]}})
        elif fault.kind == "scale-to-zero":
            await self._patch(
                f"/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale",
                {"spec": {"replicas": fault.undo["replicas"]}},
            )
        await self.refresh()
        return fault

    # --- HTTP handlers -----------------------------------------------------------------------------------------

    async def _serve_metrics(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.Response(text=self.exposition(), content_type="text/plain", charset="utf-8")

    async def _serve_health(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.json_response({"ok": True, "services": len(self.counters)})

    async def _serve_faults(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.json_response([f.as_dict() for f in self.faults.values()])

    async def _serve_inject(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise FaultError("a fault request is a JSON object")
            fault = await self.inject(body)
        except (FaultError, json.JSONDecodeError) as exc:
            return aiohttp.web.json_response({"error": str(exc)}, status=400)
        return aiohttp.web.json_response(fault.as_dict(), status=201)

    async def _serve_clear(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        try:
            fault = await self.clear(request.match_info["id"])
        except FaultError as exc:
            return aiohttp.web.json_response({"error": str(exc)}, status=404)
        return aiohttp.web.json_response(fault.as_dict())

    async def _serve_clear_all(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        cleared = [(await self.clear(fid)).as_dict() for fid in list(self.faults)]
        return aiohttp.web.json_response(cleared)

    async def _serve_profile(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        try:
            body = await request.json()
            key = f"{request.match_info['namespace']}/{request.match_info['service']}"
            profile = self.set_profile(key, body)
        except (FaultError, json.JSONDecodeError) as exc:
            return aiohttp.web.json_response({"error": str(exc)}, status=400)
        return aiohttp.web.json_response(profile)

    def set_profile(self, key: str, body: Any) -> dict[str, Any]:
        """Change how a service behaves from now on (its keys over the defaults'), e.g. its tenants' mix."""
        if not isinstance(body, dict):
            raise FaultError("a profile is a JSON object")
        unknown = sorted(set(body) - set(self.defaults))
        if unknown:
            raise FaultError(f"unknown profile keys {unknown}; known: {sorted(self.defaults)}")
        tenants = body.get("tenants", {"default": 1.0})
        if (
            not isinstance(tenants, dict)
            or not tenants
            or not all(isinstance(v, (int, float)) and v > 0 for v in tenants.values())
        ):
            raise FaultError("tenants maps each tenant to its positive share of the requests")
        self.profiles[key] = {**self.profiles.get(key, {}), **body}
        return self._profile(*key.split("/", 1))


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
