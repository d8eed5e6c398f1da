"""The deployment description, checked offline with maintained validators: Kubernetes manifests against the
API schemas (kubernetes-validate, strict: an unknown field fails), the compose file against the Compose
Specification schema vendored in check-jsonschema, and the alert rules and Grafana dashboard against the
metrics this code really exports. Docker itself cannot run here."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = sorted((DEPLOY / "k8s").glob("*.yaml"))
KUBERNETES_VERSION = "1.30.0"
BIN = Path(sys.executable).parent


def _docs(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _all_k8s() -> list[dict]:
    return [doc for path in K8S for doc in _docs(path)]


@pytest.mark.parametrize("path", K8S, ids=lambda p: p.name)
def test_kubernetes_manifests_are_valid(path):
    result = subprocess.run([str(BIN / "kubernetes-validate"), "-k", KUBERNETES_VERSION, "--strict", "--quiet",
                             str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_describes_probes_resources_budgets_autoscaling_migration_and_secret_references():
    docs = _all_k8s()
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert {("Deployment", "brokerage-web"), ("Deployment", "brokerage-worker"), ("Deployment", "brokerage-beat"),
            ("HorizontalPodAutoscaler", "brokerage-web"), ("PodDisruptionBudget", "brokerage-web"),
            ("Job", "brokerage-migrate"), ("Service", "brokerage-web")} <= kinds
    assert not [d for d in docs if d["kind"] == "Secret"], "secrets are referenced, never committed"
    for deployment in (d for d in docs if d["kind"] in ("Deployment", "Job")):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            assert {"requests", "limits"} <= set(container["resources"])
            secrets = [e for e in container.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})]
            assert any(e["name"] == "SECRET_KEY" for e in secrets), deployment["metadata"]["name"]
            assert not [e for e in container.get("env", []) if e["name"] in ("SECRET_KEY", "DATABASE_URL")
                        and "value" in e], "secret values are never inline"
    web = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "brokerage-web")
    container = web["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"].startswith("/readyz")


def test_the_probe_paths_answer(client, db):
    docs = _all_k8s()
    web = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "brokerage-web")
    container = web["spec"]["template"]["spec"]["containers"][0]
    for probe in ("livenessProbe", "readinessProbe"):
        response = client.get(container[probe]["httpGet"]["path"])
        assert response.status_code == 200, response.content


def test_compose_file_follows_the_compose_specification():
    result = subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
                             str(DEPLOY / "compose.yaml")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    services = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    assert {"postgres", "redis", "rabbitmq", "web", "worker", "beat", "nginx", "migrate"} <= set(services)
    assert services["web"]["deploy"]["replicas"] == 2 and services["worker"]["deploy"]["replicas"] == 2
    assert "web:8000" in (DEPLOY / "nginx.conf").read_text()


def test_dockerfile_runs_one_non_root_image_for_every_role():
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    entrypoint = (DEPLOY / "entrypoint.sh").read_text()
    for role in ("web)", "asgi)", "worker)", "beat)", "migrate)"):
        assert role in entrypoint
    result = subprocess.run(["sh", "-n", str(DEPLOY / "entrypoint.sh")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def _exported_metric_names() -> set[str]:
    names = set()
    for path in [*ROOT.glob("*/metrics.py"), ROOT / "core" / "middleware.py"]:
        text = path.read_text()
        names |= {"brokerage_" + n for n in re.findall(r'(?:counter|histogram|gauge_family)\(\s*"(\w+)"', text)}
    histograms = {n for n in names if re.search(rf'histogram\(\s*"{n[len("brokerage_"):]}"',
                                                "".join(p.read_text() for p in ROOT.glob("*/*.py")))}
    names |= {f"{h}_{suffix}" for h in histograms for suffix in ("bucket", "sum", "count")}
    return names


def _referenced(expr: str) -> set[str]:
    return set(re.findall(r"\b(brokerage_\w+)", expr))


def test_alert_rules_and_dashboard_use_metrics_that_exist():
    exported = _exported_metric_names()
    assert "brokerage_matcher_lag_seconds" in exported and "brokerage_http_requests_total" in exported
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yaml").read_text())
    alerts = [r for group in rules["groups"] for r in group["rules"]]
    assert len(alerts) >= 8
    readme = (ROOT / "README.md").read_text().lower()
    for rule in alerts:
        assert {"alert", "expr", "labels", "annotations"} <= set(rule), rule
        assert _referenced(rule["expr"]) <= exported, (rule["alert"], _referenced(rule["expr"]) - exported)
        assert rule["annotations"]["runbook"].startswith("README.md#")
        assert f"#### {rule['alert'].lower()}" in readme, f"no runbook for {rule['alert']} in the README"
    dashboard = json.loads((DEPLOY / "grafana" / "brokerage-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= 10
    for expr in exprs:
        assert _referenced(expr) <= exported, _referenced(expr) - exported
