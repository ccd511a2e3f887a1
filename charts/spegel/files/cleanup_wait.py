"""Wait until the cleanup DaemonSet is ready on every node it is scheduled on (post-delete hook).

A cleanup pod turns ready only after it restored its node's containerd hosts.toml, so
``numberReady == desiredNumberScheduled`` (for the current generation) means every node is done.
Standard library only; talks to the API server with the pod's ServiceAccount token.
Environment: ``DAEMONSET``, ``NAMESPACE``, ``TIMEOUT_SECONDS`` (default 600), ``PERIOD_SECONDS``
(default 2).
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import time
import urllib.request
from collections.abc import Callable
from typing import Any

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def rollout_done(daemonset: dict[str, Any]) -> bool:
    """True when every scheduled pod of the current generation is ready."""
    meta = daemonset.get("metadata", {})
    status = daemonset.get("status", {})
    if status.get("observedGeneration", 0) < meta.get("generation", 1):
        return False
    desired = status.get("desiredNumberScheduled", 0)
    return (
        desired > 0
        and status.get("updatedNumberScheduled", 0) >= desired
        and status.get("numberReady", 0) >= desired
    )


def api_fetcher(namespace: str, name: str) -> Callable[[], dict[str, Any]]:
    host = os.environ["KUBERNETES_SERVICE_HOST"]
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if ":" in host:
        host = f"[{host}]"
    url = f"https://{host}:{port}/apis/apps/v1/namespaces/{namespace}/daemonsets/{name}"
    context = ssl.create_default_context(cafile=f"{SA_DIR}/ca.crt")

    def fetch() -> dict[str, Any]:
        with open(f"{SA_DIR}/token", encoding="utf-8") as handle:
            token = handle.read().strip()
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return json.load(response)

    return fetch


def wait(
    fetch: Callable[[], dict[str, Any]],
    timeout: float,
    period: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    deadline = clock() + timeout
    while True:
        try:
            daemonset = fetch()
        except (OSError, ValueError) as exc:
            print(f"cleanup-wait: {exc}", file=sys.stderr, flush=True)
        else:
            if rollout_done(daemonset):
                print(f"cleanup-wait: {daemonset['status']['numberReady']} nodes restored")
                return True
            status = daemonset.get("status", {})
            print(
                "cleanup-wait: {}/{} nodes restored".format(
                    status.get("numberReady", 0), status.get("desiredNumberScheduled", "?")
                ),
                flush=True,
            )
        if clock() >= deadline:
            return False
        sleep(period)


def main() -> int:
    fetch = api_fetcher(os.environ["NAMESPACE"], os.environ["DAEMONSET"])
    timeout = float(os.environ.get("TIMEOUT_SECONDS", "600"))
    period = float(os.environ.get("PERIOD_SECONDS", "2"))
    if wait(fetch, timeout, period):
        return 0
    print("cleanup-wait: timed out before every node was restored", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
