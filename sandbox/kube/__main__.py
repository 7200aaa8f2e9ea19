"""Run the stand-in in the foreground:
``python -m sandbox.kube --port N --kubeconfig PATH [--restricted-kubeconfig PATH] [--seed FILE ...]``."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from sandbox.kube import KubeSandbox, write_kubeconfig
from sandbox.kube.errors import ApiError
from sandbox.kube.kubeconfig import RESTRICTED_TOKEN
from sandbox.kube.kubelet import tag_contains

# Seed order: what other objects live in or land on comes first, the rest keep their order in the files.
_FIRST = {"Namespace": 0, "Node": 1}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sandbox.kube", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one (default: 0)")
    parser.add_argument("--kubeconfig", type=Path, required=True, help="where to write the kubeconfig")
    parser.add_argument(
        "--restricted-kubeconfig",
        type=Path,
        help="where to write a kubeconfig of the loop's ServiceAccount (zerotouch-selfheal), whose requests RBAC "
        "authorizes (seed docs/deploy/rbac.yml to grant it what the loop needs)",
    )
    parser.add_argument(
        "--audit-log", type=Path, help="append each authorization of the restricted identity here (JSON lines)"
    )
    parser.add_argument("--namespace", default="default", help="the kubeconfig context's namespace")
    parser.add_argument(
        "--seed", type=Path, nargs="+", action="extend", default=[], help="multi-document YAML manifests"
    )
    parser.add_argument("--ready-delay", type=float, default=0.3, help="seconds before a pod becomes Ready")
    parser.add_argument(
        "--unpullable",
        default="nonexistent",
        help="an image whose tag contains this text never pulls (default: %(default)s)",
    )
    return parser.parse_args(argv)


def load_manifests(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """The objects of multi-document YAML files; a ``kind: List`` stands for its items, as kubectl reads it."""
    docs: list[dict[str, Any]] = []
    for path in paths:
        with path.open(encoding="utf-8") as stream:
            for doc in yaml.safe_load_all(stream):
                if doc and doc.get("kind") == "List":
                    docs.extend(item for item in doc.get("items") or [] if item)
                elif doc:
                    docs.append(doc)
    return sorted(docs, key=lambda doc: _FIRST.get(doc.get("kind", ""), 2))


async def serve(args: argparse.Namespace) -> int:
    sandbox = KubeSandbox(
        ready_delay=args.ready_delay, unpullable=tag_contains(args.unpullable), audit_log=args.audit_log
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await sandbox.start(args.host, args.port)
        for manifest in load_manifests(args.seed):
            await sandbox.apply(manifest)
        write_kubeconfig(args.kubeconfig, sandbox.url, args.namespace)
        if args.restricted_kubeconfig:
            write_kubeconfig(args.restricted_kubeconfig, sandbox.url, args.namespace, RESTRICTED_TOKEN)
        print(f"kube-sandbox listening on {sandbox.url}", flush=True)
        await stop.wait()
    except (ApiError, ValueError, OSError, yaml.YAMLError) as exc:
        print(f"kube-sandbox: cannot start: {getattr(exc, 'message', None) or exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        await sandbox.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
