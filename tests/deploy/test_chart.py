"""The Helm chart, rendered by Helm's own engine (helm-python-sdk), validated offline.

The key check: the DaemonSet's container args are parsed by the management commands' own
argparse parsers, so a flag the commands do not accept, or a value they would read differently
from values.yaml, fails here rather than in a crash-looping pod.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError, CommandParser

from registry.config import (
    CLEANUP_FLAGS,
    CONFIGURATION_FLAGS,
    REGISTRY_FLAGS,
    Flag,
    SpegelConfig,
    database_path,
    options_from,
    parse_byterate,
    parse_duration,
    split_addr,
)
from routing.bootstrap import DNSBootstrapper, make_bootstrapper

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "spegel"
K8S_VERSION = "1.30.0"
RELEASE = "spegel"
NAMESPACE = "spegel"
NODE_IP = "127.0.0.3"  # what the kubelet substitutes for $(NODE_IP) in this test

# Every toggle the chart supports, each rendered, linted, validated and parsed.
SCENARIOS: dict[str, dict[str, Any]] = {
    "default": {},
    "service-monitor": {"serviceMonitor": {"enabled": True, "labels": {"release": "kps"}}},
    "grafana-dashboard": {"grafanaDashboard": {"enabled": True}},
    "visualize": {
        "visualize": {"enabled": True, "persist": True, "retention": "24h", "maxEvents": 5000}
    },
    "visualize-db-path": {
        "visualize": {"enabled": True, "persist": True, "dbPath": "/var/lib/spegel/viz.db"}
    },
    "persistence-hostpath": {"persistence": {"type": "hostPath", "hostPath": "/data/spegel"}},
    "persistence-emptydir": {"persistence": {"type": "emptyDir", "sizeLimit": "1Gi"}},
    "admin-created": {"admin": {"enabled": True, "username": "root", "password": "s3cret"}},
    "admin-existing": {
        "admin": {
            "enabled": True,
            "existingSecret": "my-admin",
            "usernameKey": "user",
            "passwordKey": "pass",
        },
        "visualize": {"enabled": True, "persist": True},
    },
    "cleanup-disabled": {"cleanup": {"enabled": False}},
    "blob-speed": {"spegel": {"blobSpeed": "100MBps"}},
    "registry-filters": {"spegel": {"registryFilters": [r"^docker\.io/library/", ":latest$"]}},
    "mirrored-registries": {
        "spegel": {
            "mirroredRegistries": ["https://docker.io", "https://ghcr.io", "http://127.0.0.4:5000"],
            "additionalMirrorTargets": ["https://mirror.example.com"],
            "mirrorResolveTimeout": "50ms",
            "mirrorResolveRetries": 5,
        }
    },
    "no-host-port": {"service": {"registry": {"hostPort": 0, "nodePort": 30555}}},
    "node-ip-override": {"service": {"registry": {"nodeIp": "192.168.7.7"}}},
    "no-mirror-add": {"spegel": {"containerdMirrorAdd": False}},
    "containerd-config-check": {"spegel": {"containerdConfigFile": "/etc/containerd/config.toml"}},
    "liveness-basic-auth": {"livenessProbe": {"enabled": True}, "basicAuthSecretName": "peer-auth"},
    "image-digest": {
        "image": {"repository": "reg.example/spegel-py", "digest": "sha256:" + "a" * 64}
    },
    "tuned": {
        "spegel": {
            "logLevel": "DEBUG",
            "resolveTags": False,
            "resolveLatestTag": False,
            "prependExisting": True,
            "verifyContainerdConfig": False,
            "containerdContentPath": "",
            "containerdNamespace": "other",
        },
        "resources": {"requests": {"memory": "256Mi", "cpu": "50m"}},
        "terminationGracePeriodSeconds": 60,
        "clusterDomain": "corp.internal.",
        "namespaceOverride": "infra",
    },
}


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@functools.cache
def chart_defaults() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def effective(values: Mapping[str, Any]) -> dict[str, Any]:
    """values.yaml with the scenario's overrides, as Helm merges them."""
    return merge(chart_defaults(), values)


@functools.cache
def _render(values_json: str) -> tuple[tuple[str, str], ...]:
    rendered = helm_python.Chart.load(CHART).render(
        json.loads(values_json), name=RELEASE, namespace=NAMESPACE
    )
    return tuple(sorted(rendered.items()))


def render(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    docs = []
    for path, text in _render(json.dumps(values, sort_keys=True)):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(matches) == 1, f"{kind} {name}: {[d['metadata']['name'] for d in matches]}"
    return matches[0]


def is_hook(doc: Mapping[str, Any]) -> bool:
    return "helm.sh/hook" in doc["metadata"].get("annotations", {})


def daemonset(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (main,) = [d for d in docs if d["kind"] == "DaemonSet" and not is_hook(d)]
    return main


def container(pod_spec: Mapping[str, Any], name: str, init: bool = False) -> dict[str, Any]:
    key = "initContainers" if init else "containers"
    (found,) = [c for c in pod_spec.get(key, []) if c["name"] == name]
    return found


def expand(c: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    """The args as the kubelet passes them: $(VAR) replaced for variables the container defines."""
    defined = {e["name"] for e in c.get("env", [])}

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in defined, f"$({name}) used but not defined in container {c['name']}"
        return env[name]

    return [re.sub(r"\$\((\w+)\)", sub, arg) for arg in c["args"]]


def parser_for(command: str) -> CommandParser:
    app = "visualize" if command == "ensure_admin" else "registry"
    return load_command_class(app, command).create_parser("manage.py", command)


def parse(command: str, args: list[str], flags: list[Flag]) -> dict[str, Any]:
    """Parse with the command's own parser; no abbreviated or unknown flag may pass."""
    assert args[0] == command
    parser = parser_for(command)
    known = {s for action in parser._actions for s in action.option_strings}
    for arg in args[1:]:
        if arg.startswith("--"):
            assert arg.split("=", 1)[0] in known, f"{command} has no flag {arg}"
    namespace = parser.parse_args(args[1:])  # CommandError on anything it rejects
    return options_from(flags, vars(namespace))


@pytest.fixture(autouse=True)
def _no_flag_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Flag defaults come from env vars: keep the test's environment out of the parse."""
    for flag in [*REGISTRY_FLAGS, *CONFIGURATION_FLAGS, *CLEANUP_FLAGS]:
        monkeypatch.delenv(flag.env, raising=False)


def scenario_params() -> list[Any]:
    return [pytest.param(values, id=name) for name, values in SCENARIOS.items()]


# --- lint and schema validation -------------------------------------------------------------


@pytest.mark.parametrize("values", scenario_params())
def test_helm_lint(values: dict[str, Any]) -> None:
    report = helm_python.lint(CHART, values, strict=True, kube_version=f"v{K8S_VERSION}")
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == []


@pytest.mark.parametrize("values", scenario_params())
def test_manifests_validate(values: dict[str, Any]) -> None:
    docs = render(values)
    assert docs
    for doc in docs:
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a CRD: checked in test_service_monitor
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        namespace = effective(values)["namespaceOverride"] or NAMESPACE
        assert doc["metadata"]["namespace"] == namespace


def test_invalid_values_fail_to_render() -> None:
    with pytest.raises(helm_python.HelmError, match=r"admin\.password"):
        render({"admin": {"enabled": True}})
    with pytest.raises(helm_python.HelmError, match=r"persistence\.type"):
        render({"persistence": {"type": "pvc"}})


# --- the key test: rendered args against the commands' own parsers ---------------------------


@pytest.mark.parametrize("values", scenario_params())
def test_registry_args_parse_to_values(values: dict[str, Any]) -> None:
    v = effective(values)
    spegel = v["spegel"]
    ds = daemonset(render(values))
    pod = ds["spec"]["template"]["spec"]
    registry = container(pod, "registry")
    parsed = parse("registry", expand(registry, {}), REGISTRY_FLAGS)

    assert parsed["log_level"] == spegel["logLevel"]
    assert parsed["mirrored_registries"] == spegel["mirroredRegistries"]
    assert parsed["registry_filters"] == spegel["registryFilters"]
    assert parsed["mirror_resolve_timeout"] == parse_duration(spegel["mirrorResolveTimeout"])
    assert parsed["mirror_resolve_retries"] == spegel["mirrorResolveRetries"]
    assert parsed["containerd_sock"] == spegel["containerdSock"]
    assert parsed["containerd_namespace"] == spegel["containerdNamespace"]
    assert parsed["containerd_content_path"] == spegel["containerdContentPath"]
    assert parsed["containerd_registry_config_path"] == spegel["containerdRegistryConfigPath"]
    assert parsed["verify_containerd_config"] is spegel["verifyContainerdConfig"]
    assert parsed["resolve_tags"] is spegel["resolveTags"]
    assert parsed["resolve_latest_tag"] is spegel["resolveLatestTag"]
    assert parsed["blob_speed"] == spegel["blobSpeed"]
    if spegel["blobSpeed"]:
        assert parse_byterate(parsed["blob_speed"]) == 100 * 1024**2
    assert parsed["visualize_enabled"] is v["visualize"]["enabled"]
    assert parsed["visualize_persist"] is v["visualize"]["persist"]
    if v["visualize"]["persist"]:
        assert parsed["visualize_db_path"] == v["visualize"]["dbPath"]
        assert parsed["visualize_retention"] == parse_duration(v["visualize"]["retention"])
        assert parsed["visualize_max_events"] == v["visualize"]["maxEvents"]
    assert parsed["basic_auth_dir"] == (
        "/etc/secrets/basic-auth" if v["basicAuthSecretName"] else ""
    )
    grace = parsed["shutdown_grace"]
    assert 0 < grace < pod["terminationGracePeriodSeconds"]

    # Ports: the addresses the process binds are the ports the pod and Services expose.
    ports = {p["name"]: p for p in registry["ports"]}
    assert split_addr(parsed["registry_addr"]) == ("", ports["registry"]["containerPort"])
    assert split_addr(parsed["router_addr"]) == ("", ports["router"]["containerPort"])
    assert split_addr(parsed["metrics_addr"]) == ("", ports["metrics"]["containerPort"])
    assert split_addr(parsed["http_bootstrap_addr"]) == ("", ports["bootstrap"]["containerPort"])
    assert (ports["registry"]["containerPort"], ports["metrics"]["containerPort"]) == (5000, 9090)
    assert ports["router"]["containerPort"] == 5001

    # Bootstrap: dns on the headless Service's name, which the routing process accepts.
    fullname = RELEASE
    namespace = v["namespaceOverride"] or NAMESPACE
    assert parsed["bootstrap_kind"] == "dns"
    assert parsed["dns_bootstrap_domain"] == (
        f"{fullname}-bootstrap.{namespace}.svc.{v['clusterDomain']}"
    )
    bootstrapper = make_bootstrapper(
        parsed["bootstrap_kind"],
        dns_domain=parsed["dns_bootstrap_domain"],
        http_addr=parsed["http_bootstrap_addr"],
    )
    assert isinstance(bootstrapper, DNSBootstrapper)
    assert bootstrapper.http_port == v["service"]["bootstrap"]["port"]

    # The data dir is the mounted volume, and the settings object accepts every parsed value.
    mounts = {m["mountPath"]: m["name"] for m in registry["volumeMounts"]}
    assert mounts[parsed["data_dir"]] == "data"
    config = SpegelConfig.from_options(parsed)
    assert config.registry_port == 5000
    assert database_path(config).startswith(parsed["data_dir"] + "/")


@pytest.mark.parametrize("values", scenario_params())
def test_configuration_args_parse_to_values(values: dict[str, Any]) -> None:
    v = effective(values)
    spegel = v["spegel"]
    pod = daemonset(render(values))["spec"]["template"]["spec"]
    if not spegel["containerdMirrorAdd"]:
        assert all(c["name"] != "configuration" for c in pod.get("initContainers", []))
        return
    init = container(pod, "configuration", init=True)
    assert pod["initContainers"][0]["name"] == "configuration"
    env = {e["name"]: e for e in init["env"]}
    assert env["NODE_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.hostIP"
    parsed = parse("configuration", expand(init, {"NODE_IP": NODE_IP}), CONFIGURATION_FLAGS)

    node = v["service"]["registry"]["nodeIp"] or NODE_IP
    targets = []
    if v["service"]["registry"]["hostPort"]:
        targets.append(f"http://{node}:{v['service']['registry']['hostPort']}")
    targets.append(f"http://{node}:{v['service']['registry']['nodePort']}")
    targets += spegel["additionalMirrorTargets"]
    assert parsed["mirror_targets"] == targets
    assert parsed["mirrored_registries"] == spegel["mirroredRegistries"]
    assert parsed["resolve_tags"] is spegel["resolveTags"]
    assert parsed["prepend_existing"] is spegel["prependExisting"]
    assert parsed["log_level"] == spegel["logLevel"]
    assert parsed["containerd_registry_config_path"] == spegel["containerdRegistryConfigPath"]
    assert parsed["containerd_config_file"] == spegel["containerdConfigFile"]
    auth_dir = "/etc/secrets/basic-auth" if v["basicAuthSecretName"] else ""
    assert parsed["basic_auth_dir"] == auth_dir
    if auth_dir:
        assert any(m["mountPath"] == auth_dir for m in init["volumeMounts"])
    mounts = {m["mountPath"] for m in init["volumeMounts"]}
    assert spegel["containerdRegistryConfigPath"] in mounts
    if spegel["containerdConfigFile"]:
        assert spegel["containerdConfigFile"] in mounts


@pytest.mark.parametrize("values", scenario_params())
def test_cleanup_hook_args_parse(values: dict[str, Any]) -> None:
    v = effective(values)
    docs = render(values)
    hooks = [d for d in docs if is_hook(d)]
    if not v["cleanup"]["enabled"]:
        assert hooks == []
        return
    assert {d["metadata"]["annotations"]["helm.sh/hook"] for d in hooks} == {"post-delete"}
    cleanup_ds = find(docs, "DaemonSet", f"{RELEASE}-cleanup")
    pod = cleanup_ds["spec"]["template"]["spec"]
    cleanup = container(pod, "cleanup")
    parsed = parse("cleanup", expand(cleanup, {}), CLEANUP_FLAGS)
    assert parsed["containerd_registry_config_path"] == v["spegel"]["containerdRegistryConfigPath"]
    port = cleanup["ports"][0]["containerPort"]
    assert split_addr(parsed["addr"]) == ("", port) and port == v["service"]["cleanup"]["port"]
    assert cleanup["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["tolerations"] == v["tolerations"]
    # The cleanup pods must not be selected by the node's Services or DaemonSet.
    main_selector = daemonset(docs)["spec"]["selector"]["matchLabels"]
    labels = cleanup_ds["spec"]["template"]["metadata"]["labels"]
    assert not all(labels.get(k) == val for k, val in main_selector.items())
    # The wait Job runs after the DaemonSet and watches exactly it.
    job = find(docs, "Job", f"{RELEASE}-cleanup-wait")
    weight = {d["kind"]: int(d["metadata"]["annotations"]["helm.sh/hook-weight"]) for d in hooks}
    assert weight["ServiceAccount"] < weight["DaemonSet"] < weight["Job"]
    job_env = {
        e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert job_env["DAEMONSET"] == cleanup_ds["metadata"]["name"]
    role = find(docs, "Role", f"{RELEASE}-cleanup")
    assert role["rules"][0]["resourceNames"] == [cleanup_ds["metadata"]["name"]]
    script = find(docs, "ConfigMap", f"{RELEASE}-cleanup-wait")["data"]["cleanup_wait.py"]
    assert script.strip() == (CHART / "files" / "cleanup_wait.py").read_text().strip()


def test_rendered_init_args_really_configure_and_cleanup(tmp_path: Path) -> None:
    """Run the configuration and cleanup commands with exactly the rendered args."""
    certs = tmp_path / "certs.d"
    (certs / "docker.io").mkdir(parents=True)
    original = b'server = "https://registry-1.docker.io"\n'
    (certs / "docker.io" / "hosts.toml").write_bytes(original)
    values = {
        "spegel": {
            "containerdRegistryConfigPath": str(certs),
            "mirroredRegistries": ["https://docker.io", "https://ghcr.io"],
        }
    }
    docs = render(values)
    init = container(daemonset(docs)["spec"]["template"]["spec"], "configuration", init=True)
    call_command(*expand(init, {"NODE_IP": NODE_IP}))
    ghcr = tomllib.loads((certs / "ghcr.io" / "hosts.toml").read_text())
    assert ghcr["server"] == "https://ghcr.io"
    assert list(ghcr["host"]) == [f"http://{NODE_IP}:30020", f"http://{NODE_IP}:30021"]

    cleanup = container(
        find(docs, "DaemonSet", f"{RELEASE}-cleanup")["spec"]["template"]["spec"], "cleanup"
    )
    args = [a for a in cleanup["args"] if not a.startswith("--addr")]  # --addr serves forever
    call_command(*args)
    assert (certs / "docker.io" / "hosts.toml").read_bytes() == original
    assert not (certs / "ghcr.io").exists()


# --- real values in the rendered objects -----------------------------------------------------


def test_default_daemonset_shape() -> None:
    docs = render({})
    ds = daemonset(docs)
    assert ds["metadata"]["name"] == RELEASE
    pod = ds["spec"]["template"]["spec"]
    registry = container(pod, "registry")
    assert registry["image"] == "spegel-py:0.1.0"
    assert registry["args"][0] == "registry"
    assert [c["name"] for c in pod["initContainers"]] == ["configuration"]
    ports = {p["name"]: p for p in registry["ports"]}
    assert ports["registry"]["hostPort"] == 30020
    assert all("hostPort" not in p for n, p in ports.items() if n != "registry")
    for probe in ("startupProbe", "readinessProbe"):
        assert registry[probe]["httpGet"] == {"path": "/readyz", "port": "registry"}
    assert (
        registry["startupProbe"]["periodSeconds"] * registry["startupProbe"]["failureThreshold"]
        == 180
    )
    assert "livenessProbe" not in registry
    assert pod["tolerations"] == [
        {"key": "CriticalAddonsOnly", "operator": "Exists"},
        {"effect": "NoExecute", "operator": "Exists"},
        {"effect": "NoSchedule", "operator": "Exists"},
    ]
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["priorityClassName"] == "system-node-critical"
    assert pod["serviceAccountName"] == RELEASE
    assert registry["securityContext"]["runAsUser"] == 0
    assert registry["securityContext"]["readOnlyRootFilesystem"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["containerd-sock"]["hostPath"] == {
        "path": "/run/containerd/containerd.sock",
        "type": "Socket",
    }
    assert volumes["containerd-content"]["hostPath"]["type"] == "Directory"
    assert volumes["containerd-config"]["hostPath"] == {
        "path": "/etc/containerd/certs.d",
        "type": "DirectoryOrCreate",
    }
    assert volumes["data"]["hostPath"] == {"path": "/var/lib/spegel", "type": "DirectoryOrCreate"}
    mounts = {m["name"]: m for m in registry["volumeMounts"]}
    assert mounts["containerd-content"]["readOnly"] is True
    assert "containerd-config" not in mounts  # only the init container writes hosts.toml
    init = container(pod, "configuration", init=True)
    assert init["args"][init["args"].index("--mirror-targets") + 1 :][:2] == [
        "http://$(NODE_IP):30020",
        "http://$(NODE_IP):30021",
    ]
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in docs if not is_hook(d))
    assert kinds == [
        ("DaemonSet", RELEASE),
        ("Service", RELEASE),
        ("Service", f"{RELEASE}-bootstrap"),
        ("Service", f"{RELEASE}-registry"),
        ("ServiceAccount", RELEASE),
    ]


def test_services() -> None:
    docs = render({})
    pod = daemonset(docs)["spec"]["template"]
    selector = daemonset(docs)["spec"]["selector"]["matchLabels"]
    port_names = {p["name"] for p in container(pod["spec"], "registry")["ports"]}
    for service in (d for d in docs if d["kind"] == "Service"):
        assert service["spec"]["selector"] == selector
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names
    registry = find(docs, "Service", f"{RELEASE}-registry")
    assert registry["spec"]["type"] == "NodePort"
    assert registry["spec"]["ports"] == [
        {
            "name": "registry",
            "port": 5000,
            "targetPort": "registry",
            "nodePort": 30021,
            "protocol": "TCP",
        }
    ]
    bootstrap = find(docs, "Service", f"{RELEASE}-bootstrap")
    assert bootstrap["spec"]["clusterIP"] == "None"
    assert bootstrap["spec"]["publishNotReadyAddresses"] is True
    assert {(p["name"], p["port"]) for p in bootstrap["spec"]["ports"]} == {
        ("bootstrap", 5002),
        ("router", 5001),
    }
    metrics = find(docs, "Service", RELEASE)
    assert metrics["metadata"]["labels"]["app.kubernetes.io/component"] == "metrics"
    assert metrics["spec"]["ports"][0]["port"] == 9090


def test_service_monitor() -> None:
    docs = render(SCENARIOS["service-monitor"])
    monitor = find(docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kps"
    metrics = find(docs, "Service", RELEASE)
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert all(metrics["metadata"]["labels"][k] == val for k, val in selector.items())
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in metrics["spec"]["ports"]}
    assert (endpoint["path"], endpoint["interval"], endpoint["scrapeTimeout"]) == (
        "/metrics",
        "60s",
        "30s",
    )
    assert all(d["kind"] != "ServiceMonitor" for d in render({}))


def metric_names() -> set[str]:
    """Every series name the node exports (registry/metrics.py), with histogram suffixes."""
    from prometheus_client import Counter, Gauge, Histogram

    import registry.metrics as metrics

    names: set[str] = set()
    for obj in vars(metrics).values():
        if isinstance(obj, Counter):
            names.add(obj._name + "_total")
        elif isinstance(obj, Histogram):
            names.update(obj._name + s for s in ("_bucket", "_sum", "_count"))
        elif isinstance(obj, Gauge):
            names.add(obj._name)
    return names


def test_grafana_dashboard() -> None:
    docs = render(SCENARIOS["grafana-dashboard"])
    config_map = find(docs, "ConfigMap", f"{RELEASE}-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(config_map["data"]["spegel.json"])
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\b((?:spegel|http)_[a-z_]+)\b", e)}
    assert used <= metric_names(), used - metric_names()
    for wanted in (
        "spegel_mirror_requests_total",
        "spegel_resolve_duration_seconds_bucket",
        "spegel_advertised_image_tags",
        "spegel_advertised_image_digests",
        "spegel_advertised_content_digests",
        "http_request_duration_seconds_bucket",
        "http_response_size_bytes_sum",
        "http_requests_inflight",
    ):
        assert wanted in used, wanted
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert all(d["kind"] != "ConfigMap" for d in render({}) if not is_hook(d))


def test_visualize_and_persistence() -> None:
    pod = daemonset(render(SCENARIOS["visualize"]))["spec"]["template"]["spec"]
    args = container(pod, "registry")["args"]
    assert "--visualize-enabled=true" in args and "--visualize-persist=true" in args
    pod = daemonset(render(SCENARIOS["persistence-emptydir"]))["spec"]["template"]["spec"]
    data = next(v for v in pod["volumes"] if v["name"] == "data")
    assert data == {"name": "data", "emptyDir": {"sizeLimit": "1Gi"}}
    pod = daemonset(render(SCENARIOS["persistence-hostpath"]))["spec"]["template"]["spec"]
    data = next(v for v in pod["volumes"] if v["name"] == "data")
    assert data["hostPath"] == {"path": "/data/spegel", "type": "DirectoryOrCreate"}


@pytest.mark.parametrize("scenario", ["admin-created", "admin-existing"])
def test_admin_init_container(scenario: str) -> None:
    values = SCENARIOS[scenario]
    v = effective(values)
    docs = render(values)
    pod = daemonset(docs)["spec"]["template"]["spec"]
    init = container(pod, "ensure-admin", init=True)
    assert [c["name"] for c in pod["initContainers"]] == ["configuration", "ensure-admin"]
    assert init["args"] == ["ensure_admin"]
    parser_for("ensure_admin").parse_args(init["args"][1:])

    secret_name = v["admin"]["existingSecret"] or f"{RELEASE}-admin"
    env = {e["name"]: e for e in init["env"]}
    assert env["SPEGEL_ADMIN_USERNAME"]["valueFrom"]["secretKeyRef"] == {
        "name": secret_name,
        "key": v["admin"]["usernameKey"],
    }
    password_file = env["SPEGEL_ADMIN_PASSWORD_FILE"]["value"]
    mount = next(m for m in init["volumeMounts"] if password_file.startswith(m["mountPath"] + "/"))
    volume = next(vol for vol in pod["volumes"] if vol["name"] == mount["name"])
    assert volume["secret"]["secretName"] == secret_name
    assert Path(password_file).name == v["admin"]["passwordKey"]
    # ensure_admin reads exactly these variables.
    source = Path(load_command_class("visualize", "ensure_admin").__module__.replace(".", "/"))
    text = (ROOT / source).with_suffix(".py").read_text()
    assert "SPEGEL_ADMIN_USERNAME" in text and "SPEGEL_ADMIN_PASSWORD_FILE" in text

    # The init container writes the user into the database the registry container opens.
    plain_env = {name: e["value"] for name, e in env.items() if "value" in e}
    registry = container(pod, "registry")
    parsed = parse("registry", registry["args"], REGISTRY_FLAGS)
    assert database_path(SpegelConfig.from_env(plain_env)) == database_path(
        SpegelConfig.from_options(parsed)
    )
    assert {m["name"] for m in init["volumeMounts"]} >= {"data", mount["name"]}

    secrets = [d for d in docs if d["kind"] == "Secret"]
    if v["admin"]["existingSecret"]:
        assert secrets == []
    else:
        (secret,) = secrets
        assert secret["metadata"]["name"] == secret_name
        import base64

        assert base64.b64decode(secret["data"]["password"]).decode() == "s3cret"
        assert base64.b64decode(secret["data"]["username"]).decode() == "root"
        annotations = daemonset(docs)["spec"]["template"]["metadata"]["annotations"]
        assert "checksum/admin-secret" in annotations


def test_no_admin_init_by_default() -> None:
    docs = render({})
    pod = daemonset(docs)["spec"]["template"]["spec"]
    assert all(c["name"] != "ensure-admin" for c in pod["initContainers"])
    assert all(d["kind"] != "Secret" for d in docs)


def test_registry_filters_and_mirrored_registries_render_in_order() -> None:
    values = SCENARIOS["mirrored-registries"]
    pod = daemonset(render(values))["spec"]["template"]["spec"]
    args = container(pod, "registry")["args"]
    start = args.index("--mirrored-registries") + 1
    assert args[start : start + 3] == values["spegel"]["mirroredRegistries"]
    init_args = container(pod, "configuration", init=True)["args"]
    start = init_args.index("--mirror-targets") + 1
    assert init_args[start : start + 3] == [
        "http://$(NODE_IP):30020",
        "http://$(NODE_IP):30021",
        "https://mirror.example.com",
    ]
    # Empty mirroredRegistries = all: the flag is left out, both commands then mirror everything.
    default_pod = daemonset(render({}))["spec"]["template"]["spec"]
    assert "--mirrored-registries" not in container(default_pod, "registry")["args"]
    assert "--mirrored-registries" not in container(default_pod, "configuration", True)["args"]


def test_blob_speed_absent_by_default() -> None:
    pod = daemonset(render({}))["spec"]["template"]["spec"]
    assert not any(a.startswith("--blob-speed") for a in container(pod, "registry")["args"])


def test_liveness_and_basic_auth() -> None:
    pod = daemonset(render(SCENARIOS["liveness-basic-auth"]))["spec"]["template"]["spec"]
    registry = container(pod, "registry")
    assert registry["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "registry"}
    volume = next(v for v in pod["volumes"] if v["name"] == "basic-auth")
    assert volume["secret"]["secretName"] == "peer-auth"


def test_unknown_flag_is_rejected() -> None:
    """The parse helper really fails on a flag the command does not have."""
    with pytest.raises((AssertionError, CommandError)):
        parse("registry", ["registry", "--local-addr=1.2.3.4:30020"], REGISTRY_FLAGS)
    with pytest.raises(CommandError):
        parser_for("configuration").parse_args(["--registries", "https://docker.io"])


# --- the cleanup wait script ------------------------------------------------------------------


def wait_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "cleanup_wait", CHART / "files" / "cleanup_wait.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ds_status(
    generation: int, observed: int, desired: int, updated: int, ready: int
) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "status": {
            "observedGeneration": observed,
            "desiredNumberScheduled": desired,
            "updatedNumberScheduled": updated,
            "numberReady": ready,
        },
    }


def test_cleanup_wait_script() -> None:
    module = wait_module()
    assert module.rollout_done(ds_status(1, 1, 3, 3, 3))
    assert not module.rollout_done(ds_status(1, 1, 3, 3, 2))
    assert not module.rollout_done(ds_status(1, 0, 0, 0, 0))  # controller has not looked yet
    assert not module.rollout_done(ds_status(1, 1, 0, 0, 0))
    assert not module.rollout_done({"metadata": {}, "status": {}})

    answers = iter([OSError("refused"), ds_status(1, 1, 3, 3, 1), ds_status(1, 1, 3, 3, 3)])
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    def fetch() -> dict[str, Any]:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert module.wait(fetch, 60, 2, clock=lambda: now[0], sleep=sleep)
    assert now[0] == 4.0

    never = ds_status(1, 1, 3, 3, 2)
    assert not module.wait(lambda: never, 10, 2, clock=lambda: now[0], sleep=sleep)


def test_readme_documents_every_value() -> None:
    readme = (CHART / "README.md").read_text()
    documented = set(re.findall(r"^\| `([^`]+)` \|", readme, flags=re.MULTILINE))

    def leaves(node: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
        for key, value in node.items():
            if isinstance(value, Mapping) and value:
                yield from leaves(value, f"{prefix}{key}.")
            else:
                yield prefix + key

    for key in leaves(chart_defaults()):
        parts = key.split(".")
        prefixes = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
        assert prefixes & documented, f"{key} is not documented in charts/spegel/README.md"
