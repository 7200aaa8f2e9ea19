"""The Kubernetes API stand-in: a stateful server the official clients talk to over HTTP, with controllers
(deployments, replicasets, scheduler, kubelet, disruption budgets) that make workloads behave."""

from sandbox.kube.kubeconfig import write_kubeconfig
from sandbox.kube.server import KubeSandbox

__all__ = ["KubeSandbox", "write_kubeconfig"]
