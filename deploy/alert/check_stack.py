"""The single VM's watchdog (standard library only), run from cron beside docker-compose.yml:

    */5 * * * * cd /srv/cedar && python3 deploy/alert/check_stack.py https://lessons.school.example/health

Silent and exit 0 while every service is healthy (the one-shot jobs exited 0) and Cedar's /health answers 200;
otherwise one line per problem on stdout and exit 1, so cron mails them (MAILTO). With ALERT_WEBHOOK_URL set, the
same lines are also POSTed there as {"text": ...} (Slack, Mattermost and most chat tools take that shape).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

JOBS = {"temporal-schema", "temporal-setup", "migrate"}
TIMEOUT_SECONDS = 10


def compose_services() -> list[dict[str, Any]]:
    result = subprocess.run(
        ["docker", "compose", "ps", "--all", "--format", "json"],  # noqa: S607 (the host's docker)
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        raise RuntimeError(f"docker compose ps failed: {result.stderr.strip()}")
    text = result.stdout.strip()
    if text.startswith("["):  # older Compose prints one array, newer one object per line
        services: list[dict[str, Any]] = json.loads(text)
        return services
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def service_problems(services: list[dict[str, Any]]) -> list[str]:
    problems = []
    for service in services:
        name, state, health = service.get("Service", "?"), service.get("State", ""), service.get("Health", "")
        if name in JOBS:
            if state != "exited" or service.get("ExitCode", 0) != 0:
                problems.append(f"{name}: job {state} (exit code {service.get('ExitCode')})")
        elif state != "running":
            problems.append(f"{name}: {state or 'missing'}")
        elif health != "healthy":
            problems.append(f"{name}: {health or 'no health check'}")
    return problems


def health_problems(url: str) -> list[str]:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 (the operator's URL)
            return [] if response.status == 200 else [f"{url}: {response.status}"]
    except urllib.error.HTTPError as error:
        return [f"{url}: {error.code} {error.read(500).decode(errors='replace')}"]
    except OSError as error:
        return [f"{url}: {error}"]


def notify(webhook: str, lines: list[str]) -> None:
    body = json.dumps({"text": "Cedar: " + "; ".join(lines)}).encode()
    request = urllib.request.Request(webhook, data=body, headers={"Content-Type": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS):  # noqa: S310 (the operator's URL)
        pass


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: check_stack.py https://<domain>/health", file=sys.stderr)
        return 2
    try:
        problems = service_problems(compose_services())
    except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as error:
        problems = [str(error)]
    problems += health_problems(argv[0])
    if not problems:
        return 0
    for line in problems:
        print(line)
    webhook = os.environ.get("ALERT_WEBHOOK_URL")
    if webhook:
        notify(webhook, problems)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
