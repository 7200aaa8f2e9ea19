"""Kubeconfigs that point the standard clients at the stand-in, and the identities their tokens stand for.

The admin token is unrestricted (its user is in ``system:masters``); so is a request without a known token, as
the stand-in has always accepted any credentials. The restricted token authenticates as the ServiceAccount the
loop runs as (``docs/deploy/rbac.yml``), whose requests the RBAC objects in the stand-in authorize."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from sandbox.kube import rbac

CONTEXT = "sandbox"
TOKEN = "sandbox-token"  # the admin's
RESTRICTED_TOKEN = "zerotouch-selfheal-token"  # the loop's ServiceAccount's
SELFHEAL_NAMESPACE = SELFHEAL_SERVICE_ACCOUNT = "zerotouch-selfheal"
SHIPPED_RBAC = Path(__file__).resolve().parents[2] / "docs" / "deploy" / "rbac.yml"  # what it is granted

ADMIN = rbac.User("kubernetes-admin", (rbac.SUPERUSER_GROUP, rbac.AUTHENTICATED_GROUP))
SELFHEAL = rbac.service_account(SELFHEAL_NAMESPACE, SELFHEAL_SERVICE_ACCOUNT)
IDENTITIES = {TOKEN: ADMIN, RESTRICTED_TOKEN: SELFHEAL}


def write_kubeconfig(path: str | os.PathLike[str], url: str, namespace: str = "default", token: str = TOKEN) -> Path:
    """Write a kubeconfig (cluster, user and context all named ``sandbox``; plain http) and return its path."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {"server": url}}],
        "users": [{"name": CONTEXT, "user": {"token": token}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": namespace}}],
        "current-context": CONTEXT,
        "preferences": {},
    }
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    target.chmod(0o600)
    return target
