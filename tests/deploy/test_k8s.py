"""deploy/k8s checked offline: every manifest against the Kubernetes schemas (``kubernetes-validate``, strict),
the kustomizations' references, and the cluster's shape (probes and resources everywhere, a disruption budget per
Deployment, autoscalers on existing Deployments, the jobs, TLS on the Ingress)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
KUBERNETES_VERSION = "1.33.0"
# Not Kubernetes objects: kustomize's own files and the Temporal chart's Helm values.
NOT_MANIFESTS = {"kustomization.yaml"}
HELM_VALUES = K8S / "temporal" / "values.yaml"


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*.yaml") if p.name not in NOT_MANIFESTS and p != HELM_VALUES)


def objects_of(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.fixture(scope="module")
def base() -> dict[tuple[str, str], dict[str, Any]]:
    """The base's objects by (kind, name), from the files its kustomization lists."""
    kustomization = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for resource in kustomization["resources"]:
        for obj in objects_of(K8S / "base" / resource):
            found[(obj["kind"], obj["metadata"]["name"])] = obj
    return found


def of_kind(objects: dict[tuple[str, str], dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {name: obj for (k, name), obj in objects.items() if k == kind}


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_every_manifest_is_valid_against_the_kubernetes_schemas(path: Path) -> None:
    for obj in objects_of(path):
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_validator_catches_a_broken_manifest(base: dict[tuple[str, str], dict[str, Any]]) -> None:
    broken = yaml.safe_load(yaml.safe_dump(base[("Deployment", "cedar-api")]))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_every_kustomization_names_files_and_folders_that_exist() -> None:
    kustomizations = list(K8S.rglob("kustomization.yaml"))
    assert len(kustomizations) >= 2
    for path in kustomizations:
        spec = yaml.safe_load(path.read_text())
        assert spec["kind"] == "Kustomization"
        for resource in spec.get("resources", []):
            assert (path.parent / resource).exists(), f"{path}: {resource}"
        for patch in spec.get("patches", []):
            assert (path.parent / patch["path"]).is_file(), f"{path}: {patch}"


def test_every_deployment_has_probes_resources_and_a_disruption_budget(
    base: dict[tuple[str, str], dict[str, Any]],
) -> None:
    deployments = of_kind(base, "Deployment")
    assert set(deployments) == {"cedar-api", "cedar-worker"}
    budgets = of_kind(base, "PodDisruptionBudget")
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]
        labels = pod["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        for container in pod["spec"]["containers"]:
            assert container["image"] == "cedar"  # set by the kustomization's images
            assert "livenessProbe" in container, name
            assert "readinessProbe" in container, name
            resources = container["resources"]
            assert {"cpu", "memory"} <= resources["requests"].keys(), name
            assert {"cpu", "memory"} <= resources["limits"].keys(), name
            sources = {next(iter(ref)): next(iter(ref.values()))["name"] for ref in container["envFrom"]}
            assert ("ConfigMap", sources["configMapRef"]) in base
            assert sources["secretRef"] == "cedar-secrets"
        covering = [b for b in budgets.values() if b["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert len(covering) == 1, f"{name} needs exactly one PodDisruptionBudget"
        assert deployment["spec"]["replicas"] > covering[0]["spec"]["minAvailable"]


def test_autoscalers_target_existing_deployments_and_workers_scale_on_backlog(
    base: dict[tuple[str, str], dict[str, Any]],
) -> None:
    deployments = of_kind(base, "Deployment")
    autoscalers = of_kind(base, "HorizontalPodAutoscaler")
    targets = {}
    for autoscaler in autoscalers.values():
        target = autoscaler["spec"]["scaleTargetRef"]
        assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment")
        assert target["name"] in deployments
        assert autoscaler["spec"]["minReplicas"] <= autoscaler["spec"]["maxReplicas"]
        targets[target["name"]] = {metric["type"]: metric for metric in autoscaler["spec"]["metrics"]}
    assert set(targets) == {"cedar-api", "cedar-worker"}
    assert targets["cedar-api"]["Resource"]["resource"]["name"] == "cpu"
    assert targets["cedar-worker"]["Resource"]["resource"]["name"] == "cpu"
    backlog = targets["cedar-worker"]["External"]["external"]["metric"]
    assert backlog["name"] == "temporal_approximate_backlog_count"
    config = base[("ConfigMap", "cedar-config")]["data"]
    assert backlog["selector"]["matchLabels"]["task_queue"] == config["CEDAR_TASK_QUEUE"]
    # Resource targets need requests to measure against (checked above for every Deployment).


def test_the_jobs_migrate_and_set_up_schedules_and_the_ingress_serves_tls(
    base: dict[tuple[str, str], dict[str, Any]],
) -> None:
    jobs = of_kind(base, "Job")
    commands = {name: job["spec"]["template"]["spec"]["containers"][0]["command"] for name, job in jobs.items()}
    assert commands == {
        "cedar-migrate": ["sh", "deploy/prestart.sh"],
        "cedar-schedules": ["python", "-m", "workers.schedules"],
        "cedar-search-attributes": ["python", "-m", "workers.search_attributes"],
    }
    for job in jobs.values():
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
        assert "resources" in job["spec"]["template"]["spec"]["containers"][0]
    ingress = base[("Ingress", "cedar")]["spec"]
    hosts = {rule["host"] for rule in ingress["rules"]}
    assert hosts
    assert hosts <= {host for tls in ingress["tls"] for host in tls["hosts"]}
    backends = {path["backend"]["service"]["name"] for rule in ingress["rules"] for path in rule["http"]["paths"]}
    services = of_kind(base, "Service")
    assert backends == {"cedar-api"} <= set(services)
    api_labels = base[("Deployment", "cedar-api")]["spec"]["template"]["metadata"]["labels"]
    assert services["cedar-api"]["spec"]["selector"].items() <= api_labels.items()


def test_the_temporal_chart_values_use_managed_postgres() -> None:
    values = yaml.safe_load(HELM_VALUES.read_text())
    for store in ("default", "visibility"):
        sql = values["server"]["config"]["persistence"][store]["sql"]
        assert sql["driver"] == "postgres12"
        assert "existingSecret" in sql
        assert "password" not in sql
    assert not any(values[bundled]["enabled"] for bundled in ("cassandra", "mysql", "postgresql", "elasticsearch"))


def test_a_cronjob_dumps_the_database_nightly_onto_a_volume_with_retention(
    base: dict[tuple[str, str], dict[str, Any]],
) -> None:
    cronjob = base[("CronJob", "cedar-backup")]["spec"]
    assert cronjob["concurrencyPolicy"] == "Forbid"
    pod = cronjob["jobTemplate"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    script = container["command"][-1]
    assert 'pg_dump -Fc --no-owner -d "$CEDAR_DATABASE_URL"' in script
    assert '-mtime +"$BACKUP_KEEP_DAYS"' in script
    env = {entry["name"]: entry for entry in container["env"]}
    assert env["CEDAR_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "cedar-secrets"
    assert int(env["BACKUP_KEEP_DAYS"]["value"]) > 0
    claims = {volume["persistentVolumeClaim"]["claimName"] for volume in pod["volumes"]}
    assert claims == {"cedar-backups"}
    assert ("PersistentVolumeClaim", "cedar-backups") in base
    assert {mount["mountPath"] for mount in container["volumeMounts"]} == {"/backups"}
