"""docker-compose.yml checked offline: Debian's docker-compose parses and interpolates it (no engine needed), and
the resolved file has the production shape (only the TLS proxy published, health checks, pinned images, backups)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.temporal import SEARCH_ATTRIBUTES

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
# The required variables, as dummies: the check is the file's shape, not a deployment's secrets.
REQUIRED_ENV = {
    "POSTGRES_PASSWORD": "dummy-password",
    "CEDAR_STRIPE_API_KEY": "sk_live_dummy",
    "CEDAR_STRIPE_PUBLISHABLE_KEY": "pk_live_dummy",
    "CEDAR_STRIPE_WEBHOOK_SECRETS": '["whsec_dummy"]',
    "CEDAR_JWT_SECRET": "dummy-jwt-secret-of-at-least-32-characters",
    "CEDAR_PAYLOAD_KEYS": '{"2026-01": "ZHVtbXktcGF5bG9hZC1rZXktb2YtMzItYnl0ZXMhISE="}',
    "CEDAR_PAYLOAD_KEY_CURRENT": "2026-01",
    "CEDAR_DOMAIN": "school.example",
    "ACME_EMAIL": "ops@school.example",
}
# Run to completion before what depends on them: no health check needed.
JOBS = {"temporal-schema", "temporal-setup", "search-attributes", "migrate", "schedules"}


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    # ./cedar test installs Debian's docker-compose when it is missing; without it this check cannot run.
    assert binary is not None, "docker-compose is missing: run the tests with ./cedar test (it installs it)"
    clean = {key: value for key, value in os.environ.items() if key not in REQUIRED_ENV and key != "COMPOSE_FILE"}
    with tempfile.TemporaryDirectory() as folder:
        # An empty env file: a developer's own .env beside the compose file must not fill in what the test omits.
        empty = Path(folder) / "empty.env"
        empty.touch()
        return subprocess.run(
            [binary, "--env-file", str(empty), "-f", str(COMPOSE_FILE), "config"],
            capture_output=True,
            text=True,
            env={**clean, **env},
            cwd=REPO_ROOT,
            timeout=60,
        )


def port(entry: str | dict[str, Any]) -> tuple[str | None, str]:
    """(host address or None for every address, published port) of a short or long port entry."""
    if isinstance(entry, dict):
        return entry.get("host_ip"), str(entry["published"])
    parts = entry.split("/")[0].split(":")
    return (parts[0] if len(parts) == 3 else None), parts[-2]


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Target → source of a service's volumes (short form: ``source:target[:mode]``)."""
    pairs = (volume.split(":")[:2] for volume in service.get("volumes", []))
    return {target: source for source, target in pairs}


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    result = compose_config(REQUIRED_ENV)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def test_compose_refuses_to_resolve_without_the_required_secrets() -> None:
    for missing in ("POSTGRES_PASSWORD", "CEDAR_JWT_SECRET", "CEDAR_DOMAIN", "CEDAR_PAYLOAD_KEYS"):
        result = compose_config({k: v for k, v in REQUIRED_ENV.items() if k != missing})
        assert result.returncode != 0
        assert f"set {missing}" in result.stderr


def test_only_the_tls_proxy_is_published_and_the_ui_on_loopback(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    published = {name: service.get("ports", []) for name, service in services.items() if service.get("ports")}
    assert set(published) == {"caddy", "temporal-ui"}
    assert {port(p) for p in published["caddy"]} == {(None, "80"), (None, "443")}
    assert [port(p) for p in published["temporal-ui"]] == [("127.0.0.1", "8233")]
    for private in ("postgres", "temporal", "api", "worker", "backup"):
        assert "ports" not in services[private], private


def test_every_long_running_service_has_a_health_check(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    assert JOBS < set(services)
    for name, service in services.items():
        if name in JOBS:
            continue
        check = service.get("healthcheck")
        assert check, f"{name} has no health check"
        assert check.get("test"), name
        assert not check.get("disable"), name
    # What depends on a job waits for it to finish; what depends on a server waits for it to be healthy.
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            expected = "service_completed_successfully" if dependency in JOBS else "service_healthy"
            if dependency == "api":  # the proxy starts as soon as the API does, and retries it
                expected = "service_started"
            assert condition["condition"] == expected, (name, dependency)


def test_images_are_pinned_and_temporal_runs_without_auto_setup(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    for name, service in services.items():
        if "build" in service:
            assert service["build"]["dockerfile"] == "deploy/Dockerfile", name
            continue
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository, image
        assert tag[:1].isdigit(), f"{name}: {image} is not pinned to a version"
    images = {name: service.get("image", "") for name, service in services.items()}
    assert not any("auto-setup" in image for image in images.values())
    assert images["temporal"].startswith("temporalio/server:")
    assert images["temporal-schema"].startswith("temporalio/admin-tools:")
    assert images["temporal"].split(":")[1] == images["temporal-schema"].split(":")[1]
    assert images["caddy"].startswith("caddy:")
    # The API, the worker and the migration run Cedar's one image.
    cedar = {services[name]["image"] for name in ("api", "worker", "migrate")}
    assert len(cedar) == 1
    assert services["worker"]["command"] == ["python", "-m", "workers.main"]
    assert services["api"]["environment"]["CEDAR_ENVIRONMENT"] == "production"


def test_caddy_terminates_tls_for_the_domain_in_front_of_the_api(resolved: dict[str, Any]) -> None:
    caddy = resolved["services"]["caddy"]
    mounted = mounts(caddy)
    source = Path(mounted["/etc/caddy/Caddyfile"])
    assert source == REPO_ROOT / "deploy" / "caddy" / "Caddyfile"
    caddyfile = source.read_text()
    assert "{$CEDAR_DOMAIN} {" in caddyfile  # a site address: Caddy's automatic HTTPS for it
    assert "reverse_proxy api:8000" in caddyfile
    assert caddy["environment"]["CEDAR_DOMAIN"] == REQUIRED_ENV["CEDAR_DOMAIN"]
    assert "/data" in mounted  # certificates survive a restart
    api = resolved["services"]["api"]["environment"]
    assert api["CEDAR_PUBLIC_BASE_URL"] == f"https://{REQUIRED_ENV['CEDAR_DOMAIN']}"


def test_postgres_is_dumped_on_a_schedule_with_retention(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    job = services["backup"]
    assert job["image"] == services["postgres"]["image"]  # pg_dump of the server's own version
    assert job["entrypoint"] == ["sh", "/backup/pg-backup.sh"]
    env = job["environment"]
    assert set(env["BACKUP_DATABASES"].split()) == {"cedar", "temporal", "temporal_visibility"}
    assert int(env["BACKUP_INTERVAL_SECONDS"]) > 0
    assert int(env["BACKUP_KEEP_DAYS"]) > 0
    targets = mounts(job)
    assert targets[env["BACKUP_DIR"]] in resolved["volumes"]  # a named volume, kept across restarts
    assert Path(targets["/backup"]) == REPO_ROOT / "deploy" / "backup"
    script = (REPO_ROOT / "deploy" / "backup" / "pg-backup.sh").read_text()
    assert 'pg_dump -Fc --no-owner -d "$db"' in script
    assert "-mtime +" in script


def test_the_deploy_shell_scripts_parse_and_fail_fast() -> None:
    scripts = sorted((REPO_ROOT / "deploy").rglob("*.sh"))
    assert {p.name for p in scripts} >= {"pg-backup.sh", "schema.sh", "namespace.sh", "prestart.sh"}
    for script in scripts:
        parsed = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True, timeout=30)
        assert parsed.returncode == 0, f"{script.name}: {parsed.stderr}"
        assert "set -eu" in script.read_text(), f"{script.name} must stop at the first failing command"


def test_search_attributes_are_registered_by_cedar_before_its_processes_start(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    assert services["search-attributes"]["command"] == ["python", "-m", "workers.search_attributes"]
    for name in ("api", "worker", "schedules"):
        assert services[name]["depends_on"]["search-attributes"]["condition"] == "service_completed_successfully"
    # One list of attributes (core/temporal.py): the namespace script no longer keeps a copy.
    script = (REPO_ROOT / "deploy" / "temporal" / "namespace.sh").read_text()
    assert "search-attribute" not in script
    assert not any(name in script for name in SEARCH_ATTRIBUTES)
