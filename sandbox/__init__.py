"""The zerotouch.selfheal sandbox: a Kubernetes API stand-in, a workload simulator and real Prometheus/Alertmanager.

Test and demo tooling only; it is not part of the collection (see build_ignore in galaxy.yml).
"""
