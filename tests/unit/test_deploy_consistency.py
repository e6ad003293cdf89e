"""docker-compose.yml and the Kubernetes manifests agree with the local stack and the code."""

import json
import re
from pathlib import Path

import yaml

from core.settings import load_settings
from streams.worker import AGENTS

ROOT = Path(__file__).resolve().parents[2]


def pom_property(pom: str, name: str) -> str:
    return re.search(rf"<{name}>([^<]+)</{name}>", (ROOT / "deploy/local" / pom).read_text())[1]


def test_compose_runs_the_same_versions_and_ports_as_the_local_stack():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    kafka_version = pom_property("kafka-pom.xml", "kafka.version")
    assert compose["kafka"]["image"] == f"apache/kafka:{kafka_version}"
    os_version = pom_property("opensearch-pom.xml", "opensearch.version")
    assert compose["opensearch"]["image"] == f"opensearchproject/opensearch:{os_version}"
    assert compose["dashboards"]["image"].endswith(f":{os_version}")
    assert "127.0.0.1:9092:9092" in compose["kafka"]["ports"]
    assert "127.0.0.1:9200:9200" in compose["opensearch"]["ports"]
    assert "127.0.0.1:1025:1025" in compose["mailcatcher"]["ports"]
    assert compose["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_compose_and_k8s_only_set_known_settings():
    known = {f"FLOWMAIL_{name.upper()}" for name in load_settings({}).__dataclass_fields__}
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert set(compose["x-flowmail-env"]) <= known
    configmap = yaml.safe_load((ROOT / "deploy/k8s/configmap.yaml").read_text())
    assert set(configmap["data"]) <= known
    secured = next(d for d in yaml.safe_load_all(
        (ROOT / "deploy/k8s/secured-cluster.yaml").read_text()) if d["kind"] == "ConfigMap")
    assert set(secured["data"]) <= known | {f"{n}_FILE" for n in known}
    for name in ("FLOWMAIL_KAFKA_SASL_PASSWORD", "FLOWMAIL_OPENSEARCH_PASSWORD"):
        assert name not in secured["data"]  # secrets come from mounted files only
        assert f"{name}_FILE" in secured["data"]
    assert set(compose["services"]["webhooks"]["environment"]) <= known
    assert compose["services"]["webhooks"]["command"] == ["webhooks"]
    for document in yaml.safe_load_all((ROOT / "deploy/k8s/webhooks.yaml").read_text()):
        if document["kind"] == "Deployment":
            container = document["spec"]["template"]["spec"]["containers"][0]
            assert {e["name"] for e in container["env"]} <= known
            assert container["args"] == ["webhooks"]


class _ComposeLoader(yaml.SafeLoader):
    """Compose's merge tags (!reset, !override) read as plain values."""


_ComposeLoader.add_multi_constructor("!", lambda loader, _tag, node: (
    loader.construct_mapping(node) if isinstance(node, yaml.MappingNode)
    else loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode)
    else loader.construct_scalar(node)))


def test_the_secured_compose_override_uses_known_settings_and_file_secrets():
    known = {f"FLOWMAIL_{name.upper()}" for name in load_settings({}).__dataclass_fields__}
    override = yaml.load((ROOT / "deploy/compose.secured.yml").read_text(),
                         Loader=_ComposeLoader)
    env = override["x-flowmail-secured-env"]
    assert set(env) <= known | {f"{n}_FILE" for n in known}
    assert env["FLOWMAIL_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert all(v.startswith("/run/secrets/") for k, v in env.items() if k.endswith("_FILE"))
    assert set(override["secrets"]) >= {"kafka-password", "opensearch-password", "ca.pem"}


def test_every_k8s_workload_can_mount_the_cluster_credentials():
    for path in ("deploy/k8s/workers.yaml", "deploy/k8s/topics-job.yaml",
                 "deploy/k8s/webhooks.yaml"):
        for document in yaml.safe_load_all((ROOT / path).read_text()):
            if document["kind"] == "Service":
                continue
            spec = document["spec"]["template"]["spec"]
            sources = [s.get("configMapRef", {}).get("name")
                       for s in spec["containers"][0]["envFrom"]]
            assert "flowmail-cluster" in sources, path
            volumes = {v["name"]: v for v in spec.get("volumes", [])}
            assert volumes["cluster-credentials"]["secret"]["optional"] is True, path
            assert volumes["cluster-ca"]["secret"]["optional"] is True, path


def test_k8s_workers_use_real_agents_and_isolated_groups():
    deployments = list(yaml.safe_load_all((ROOT / "deploy/k8s/workers.yaml").read_text()))
    groups = set()
    for deployment in deployments:
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        args = container["args"]
        assert set(args[args.index("--agents") + 1].split(",")) <= set(AGENTS)
        groups.add(container["env"][0]["value"])
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert len(groups) == len(deployments)


def test_dashboard_queries_use_exported_metric_names():
    from streams import metrics
    exported = {m._name for m in vars(metrics).values() if hasattr(m, "_name")}
    dashboard = json.loads((ROOT / "deploy/dashboards/grafana-flowmail.json").read_text())
    for panel in dashboard["panels"]:
        names = set(re.findall(r"flowmail_[a-z_]+", panel["targets"][0]["expr"]))
        assert any(n.startswith(tuple(exported)) for n in names), panel["title"]


def test_alert_rules_use_exported_metric_names_and_hold_before_firing():
    import flowmail.webhooks
    from streams import metrics
    exported = {m._name for module in (metrics, flowmail.webhooks)
                for m in vars(module).values() if hasattr(m, "_name")}
    rules = yaml.safe_load((ROOT / "deploy/prometheus/flowmail-alerts.yml").read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert {"FlowmailBounceRateHigh", "FlowmailComplaintRateHigh", "FlowmailBacklogHigh",
            "FlowmailProviderFailureRateHigh"} <= {a["alert"] for a in alerts}
    for alert in alerts:
        for name in re.findall(r"flowmail_[a-z_]+", alert["expr"]):
            assert name.removesuffix("_total") in exported, (alert["alert"], name)
        if "Rate" in alert["alert"]:  # a minimum sample, and a wait before it fires
            assert re.search(r"\sand\s", alert["expr"]) and alert["for"]
