"""The deployable shapes: docker-compose.yml, deploy/k8s/, and the worker's own health check.

Checked offline: `docker-compose config` (Debian's docker-compose, installed by `make test`)
validates the compose file, kubernetes-validate validates every manifest against the
Kubernetes schemas it bundles, and the rest reads the files as specifications. The worker's
health check and its patient connection to Temporal run for real.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml  # type: ignore[import-untyped]
from fastapi.routing import APIRoute
from temporalio.testing import WorkflowEnvironment

from exosuit.cli import serve
from exosuit.cli.temporal_server import temporal_cli
from exosuit.cli.worker_health import PATHS as WORKER_HEALTH_PATHS
from exosuit.processes import free_port
from exosuit.settings import Settings
from tests.support.cli import EXOSUIT
from tests.support.paths import ROOT
from web.app import health as web_health

K8S = ROOT / "deploy" / "k8s"
WEB_HEALTH_PATHS = {route.path for route in web_health.routes if isinstance(route, APIRoute)}
NOT_SETTINGS = {"EXOSUIT_LOG_FORMAT"}  # read by the logging set-up, not Settings
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())


# --- docker-compose.yml ------------------------------------------------------------------


def compose() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return spec


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("docker-compose")
    assert tool, "docker-compose is installed by `make test` to validate the compose file"
    clean = {k: v for k, v in os.environ.items() if k not in ("POSTGRES_PASSWORD", "EXOSUIT_SECRET_KEY")}
    return subprocess.run(
        [tool, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        env=clean | env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_compose_file_is_valid_and_refuses_to_start_without_its_secrets() -> None:
    checked = compose_config({"POSTGRES_PASSWORD": "pw", "EXOSUIT_SECRET_KEY": "secret"})
    assert checked.returncode == 0, checked.stderr
    missing = compose_config({"EXOSUIT_SECRET_KEY": "secret"})
    assert missing.returncode != 0 and "POSTGRES_PASSWORD" in missing.stderr
    missing = compose_config({"POSTGRES_PASSWORD": "pw"})
    assert missing.returncode != 0 and "EXOSUIT_SECRET_KEY" in missing.stderr


def test_compose_runs_a_temporal_server_with_its_schema_and_namespace_set_up_first() -> None:
    services = compose()["services"]
    assert set(services) == {
        "postgresql", "temporal-schema", "temporal", "temporal-namespace", "temporal-ui", "web", "worker",
    }  # fmt: skip
    server = services["temporal"]
    assert server["image"].startswith("temporalio/server:")  # not the deprecated auto-setup image
    tag = server["image"].split(":", 1)[1]
    for one_shot in ("temporal-schema", "temporal-namespace"):
        assert services[one_shot]["image"] == f"temporalio/admin-tools:{tag}"  # the schema of that server
        assert "restart" not in services[one_shot]
    assert server["environment"]["DB"] == "postgres12"
    assert server["environment"]["POSTGRES_SEEDS"] == "postgresql"
    assert server["depends_on"] == {"temporal-schema": {"condition": "service_completed_successfully"}}
    assert services["temporal-schema"]["depends_on"] == {"postgresql": {"condition": "service_healthy"}}
    assert services["temporal-namespace"]["depends_on"] == {"temporal": {"condition": "service_healthy"}}
    assert services["web"]["depends_on"]["temporal-namespace"] == {
        "condition": "service_completed_successfully"
    }
    # Workers start once the web app is healthy: it has migrated, so they never race to.
    assert services["worker"]["depends_on"] == {"web": {"condition": "service_healthy"}}

    # What the one-shots and the server mount exists, and the schema script uses the
    # versioned schema dirs that ship in admin-tools.
    for service in ("temporal-schema", "temporal-namespace", "temporal"):
        for volume in services[service]["volumes"]:
            source = volume.split(":", 1)[0]
            assert (ROOT / source).exists(), volume
    script = (ROOT / "deploy" / "temporal" / "setup-schema.sh").read_text()
    for needed in ("create", "setup-schema -v 0.0", "update-schema", "/etc/temporal/schema/postgresql/v12/"):
        assert needed in script
    dynamic = yaml.safe_load((ROOT / "deploy" / "temporal" / "dynamicconfig.yaml").read_text())
    assert all(isinstance(v, list) and "value" in v[0] for v in dynamic.values())


def test_compose_has_healthchecks_named_volumes_and_no_temporal_ports_on_the_host() -> None:
    spec = compose()
    services = spec["services"]
    for name in ("postgresql", "temporal", "temporal-ui", "web", "worker"):
        assert services[name]["healthcheck"]["test"], name
    web, worker = services["web"], services["worker"]
    assert web["command"][:2] == ["exosuit", "web"] and worker["command"] == ["exosuit", "worker"]
    # The worker has a check of its own, on its own port and path, never the web app's.
    port = worker["environment"]["EXOSUIT_WORKER_HEALTH_PORT"]
    assert f"http://127.0.0.1:{port}/readyz" in " ".join(worker["healthcheck"]["test"])
    assert "/readyz" in WORKER_HEALTH_PATHS and "/readyz" in WEB_HEALTH_PATHS
    assert "http://127.0.0.1:8000/readyz" in " ".join(web["healthcheck"]["test"])
    assert worker["healthcheck"] != web["healthcheck"]
    assert worker["deploy"]["replicas"] >= 2
    # Docker's 10 s default would cut a stopping worker's running activities short.
    grace = Settings().worker_graceful_shutdown_seconds
    assert float(worker["stop_grace_period"].removesuffix("s")) > grace

    assert "ports" not in services["temporal"]  # the frontend stays on the compose network
    assert all(p.startswith("127.0.0.1:") for p in services["temporal-ui"]["ports"])
    assert set(spec["volumes"]) == {"postgres-data", "exosuit-data"}
    assert "postgres-data:/var/lib/postgresql/data" in services["postgresql"]["volumes"]
    for service in (web, worker):
        env = service["environment"]
        assert env["EXOSUIT_LOG_FORMAT"] == "json"
        assert f"exosuit-data:{env['EXOSUIT_DATA_DIR']}" in service["volumes"]
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
    assert (ROOT / web["build"]["dockerfile"]).exists()


def test_the_image_runs_as_a_numeric_user_and_owns_its_data_dir_without_a_web_only_healthcheck() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    instructions = [line.split(" ", 1)[0] for line in dockerfile.splitlines() if not line.startswith("#")]
    assert "HEALTHCHECK" not in instructions  # a worker would inherit the web app's
    assert "USER 10001:10001" in dockerfile
    assert "EXOSUIT_DATA_DIR=/home/exosuit/var" in dockerfile
    assert "-o 10001 -g 10001" in dockerfile and "/home/exosuit/var" in dockerfile
    assert "EXOSUIT_LOG_FORMAT=json" in dockerfile


async def test_the_namespace_script_creates_the_namespace_once(
    temporal_env: WorkflowEnvironment,
) -> None:
    namespace = f"exo-{uuid.uuid4().hex[:8]}"
    env = os.environ | {
        "PATH": f"{Path(temporal_cli()).parent}{os.pathsep}{os.environ['PATH']}",
        "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": namespace,
    }
    script = str(ROOT / "deploy" / "temporal" / "create-namespace.sh")
    outputs = []
    for _ in range(2):
        process = await asyncio.create_subprocess_exec(
            "sh", script, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, out.decode()
        outputs.append(out.decode())
    assert f"created namespace {namespace}" in outputs[0]
    assert f"namespace {namespace} exists" in outputs[1]


# --- deploy/k8s --------------------------------------------------------------------------


def manifest(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((K8S / name).read_text())
    return loaded


def kustomization() -> dict[str, Any]:
    return manifest("kustomization.yaml")


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [m for name in kustomization()["resources"] if (m := manifest(name))["kind"] == kind]


def deployment(component: str) -> dict[str, Any]:
    [found] = [d for d in by_kind("Deployment") if d["metadata"]["name"] == f"exosuit-{component}"]
    return found


def test_the_kustomization_lists_every_manifest_but_never_the_example_secret() -> None:
    files = {p.name for p in K8S.iterdir() if p.is_file() and p.name != "kustomization.yaml"}
    examples = {name for name in files if name.endswith(".example.yaml")}
    assert examples == {"secret.example.yaml"}
    assert sorted(kustomization()["resources"]) == sorted(files - examples)
    [image] = kustomization()["images"]
    for component in ("web", "worker"):
        assert [c["image"] for c in deployment(component)["spec"]["template"]["spec"]["containers"]] == [
            image["name"]
        ]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_is_valid_kubernetes(version: str) -> None:
    names = [*kustomization()["resources"], "secret.example.yaml"]
    for name in names:
        kubernetes_validate.validate(manifest(name), version, strict=True)
    kinds = {manifest(name)["kind"] for name in names}
    assert kinds == {"ConfigMap", "Secret", "Deployment", "Service", "HorizontalPodAutoscaler", "Job"}


def test_a_migration_job_upgrades_the_schema_with_the_apps_image_config_and_secret() -> None:
    [job] = by_kind("Job")
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    [web] = deployment("web")["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["exosuit", "db", "upgrade"]
    assert container["image"] == web["image"] and container["envFrom"] == web["envFrom"]
    assert all(e in web["env"] for e in container["env"])  # the same database and secret
    assert {"EXOSUIT_DATABASE_URL", "EXOSUIT_SECRET_KEY"} <= {e["name"] for e in container["env"]}
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["restartPolicy"] == "OnFailure"


def test_selectors_match_the_pods_they_select() -> None:
    for component in ("web", "worker"):
        spec = deployment(component)["spec"]
        labels = spec["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items()
        assert labels["app.kubernetes.io/component"] == component
    [service] = by_kind("Service")
    web_pod = deployment("web")["spec"]["template"]
    assert service["spec"]["selector"].items() <= web_pod["metadata"]["labels"].items()
    port_names = {p["name"] for p in web_pod["spec"]["containers"][0]["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names


def test_probes_ask_paths_that_exist_on_the_ports_that_serve_them() -> None:
    config = by_kind("ConfigMap")[0]["data"]
    expected = {
        "web": (WEB_HEALTH_PATHS, 8000),
        "worker": (WORKER_HEALTH_PATHS, int(config["EXOSUIT_WORKER_HEALTH_PORT"])),
    }
    for component, (paths, port) in expected.items():
        [container] = deployment(component)["spec"]["template"]["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        probes = {k: v for k, v in container.items() if k.endswith("Probe")}
        assert {"livenessProbe", "readinessProbe"} <= set(probes), component
        for probe in probes.values():
            assert probe["httpGet"]["path"] in paths, (component, probe)
            assert ports[probe["httpGet"]["port"]] == port, (component, probe)
        assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert probes["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "--port" in deployment("web")["spec"]["template"]["spec"]["containers"][0]["args"]


def test_deployments_read_only_keys_the_config_map_and_the_example_secret_define() -> None:
    [config] = by_kind("ConfigMap")
    secret = manifest("secret.example.yaml")
    assert secret["kind"] == "Secret" and all("REPLACE-ME" in v for v in secret["stringData"].values())
    assert config["data"]["TEMPORAL_ADDRESS"] and config["data"]["EXOSUIT_LOG_FORMAT"] == "json"
    for component in ("web", "worker"):
        [container] = deployment(component)["spec"]["template"]["spec"]["containers"]
        assert [e["configMapRef"]["name"] for e in container["envFrom"]] == [config["metadata"]["name"]]
        refs = [e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e]
        assert {"EXOSUIT_SECRET_KEY", "EXOSUIT_DATABASE_URL"} <= {r["key"] for r in refs}
        for ref in refs:
            assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]
        for variable in [e["name"] for e in container["env"]] + list(config["data"]):
            field = variable.lower().removeprefix("exosuit_")
            assert field in Settings.model_fields or variable in NOT_SETTINGS, variable


def test_pods_run_as_non_root_on_a_read_only_root_with_bounded_resources() -> None:
    for component in ("web", "worker"):
        pod = deployment(component)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False and pod["enableServiceLinks"] is False
        mounted = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        [container] = pod["containers"]
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert {m["mountPath"] for m in container["volumeMounts"]} == {"/home/exosuit/var", "/tmp"}
        assert {m["name"] for m in container["volumeMounts"]} == mounted
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind]), (component, kind)


def test_the_autoscaler_scales_the_worker_deployment_which_leaves_its_replicas_to_it() -> None:
    [hpa] = by_kind("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    worker = deployment("worker")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": worker["apiVersion"], "kind": "Deployment", "name": worker["metadata"]["name"],
    }  # fmt: skip
    assert "replicas" not in worker["spec"]
    pod = worker["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > Settings().worker_graceful_shutdown_seconds
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    [container] = worker["spec"]["template"]["spec"]["containers"]
    assert "cpu" in container["resources"]["requests"]  # what utilization is measured against


# --- the worker's health check and its patient connection, for real ----------------------


async def probe(port: int, path: str) -> int | None:
    """The status a probe gets, or None when nothing answers."""
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            return (await http.get(f"http://127.0.0.1:{port}{path}")).status_code
    except httpx.TransportError:
        return None


async def answers(port: int, path: str, status: int) -> bool:
    return await probe(port, path) == status


async def until(check: Callable[[], Awaitable[bool]], what: str, within: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def compose_check_passes(port: int) -> bool:
    """The worker's healthcheck command from docker-compose.yml, aimed at `port`."""
    command = compose()["services"]["worker"]["healthcheck"]["test"][1:]
    command = [
        sys.executable if part == "python" else part.replace(":8001/", f":{port}/") for part in command
    ]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    return await process.wait() == 0


async def test_worker_health_check_passes_only_while_the_worker_polls_temporal(tmp_path: Path) -> None:
    temporal_port, health_port = free_port(), free_port()
    env = os.environ | {
        "TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",  # nothing there yet
        "EXOSUIT_WORKER_HEALTH_PORT": str(health_port),
        "EXOSUIT_DATA_DIR": str(tmp_path),
        "EXOSUIT_SECRET_KEY": "test-secret",
        "EXOSUIT_LLM_BASE_URL": "http://127.0.0.1:9/v1",
    }
    env.pop("EXOSUIT_DATABASE_URL", None)
    log = (tmp_path / "worker.log").open("wb")
    worker = await asyncio.create_subprocess_exec(EXOSUIT, "worker", env=env, stdout=log, stderr=log)
    temporal: asyncio.subprocess.Process | None = None
    try:
        # Alive while it waits for Temporal, but not ready: it does not crash, it retries.
        await until(lambda: answers(health_port, "/healthz", 200), "the worker's /healthz", 20)
        assert await probe(health_port, "/readyz") == 503
        assert not await compose_check_passes(health_port)
        temporal = await asyncio.create_subprocess_exec(
            temporal_cli(), "server", "start-dev", "--headless", "--ip", "127.0.0.1",
            "--port", str(temporal_port), "--log-level", "error",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await until(lambda: answers(health_port, "/readyz", 200), "the worker to poll", 20)
        assert await compose_check_passes(health_port)
        assert worker.returncode is None
        assert await probe(health_port, "/nothing") == 404

        worker.send_signal(signal.SIGTERM)
        stopped = await asyncio.wait_for(worker.wait(), 20)
        assert stopped == 0, (tmp_path / "worker.log").read_text(errors="replace")[-4000:]
        assert await probe(health_port, "/readyz") is None
        assert not await compose_check_passes(health_port)
    finally:
        for process in (worker, temporal):
            if process is not None and process.returncode is None:
                process.kill()
                await process.wait()
        log.close()
    output = (tmp_path / "worker.log").read_text()
    assert f"Temporal at 127.0.0.1:{temporal_port} does not answer yet (try 1)" in output, output


async def test_web_and_worker_wait_for_temporal_as_long_as_it_takes_with_capped_backoff(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    failures = 14
    calls: list[float] = []
    connected = object()

    async def flaky_connect(*_: Any, **__: Any) -> Any:
        calls.append(asyncio.get_running_loop().time())
        if len(calls) <= failures:
            raise RuntimeError("Failed client connect: connection refused")
        return connected

    monkeypatch.setattr(serve, "connect", flaky_connect)
    monkeypatch.setattr(serve, "_CONNECT_MAX_DELAY", 0.02)
    settings = Settings(temporal_address="temporal:7233")
    with caplog.at_level(logging.WARNING, logger=serve.__name__):
        assert await serve._connect_when_up(settings, within=None) is connected
    assert len(calls) == failures + 1
    gaps = [b - a for a, b in itertools.pairwise(calls[1:])]
    assert max(gaps) < 0.2  # capped
    tries = [r.getMessage() for r in caplog.records]
    assert len(tries) == 3 and all("temporal:7233 does not answer yet" in t for t in tries)  # 1, 7, 13

    calls.clear()
    with pytest.raises(RuntimeError):  # `exosuit dev` keeps a bounded wait
        await serve._connect_when_up(settings, within=0.1)
