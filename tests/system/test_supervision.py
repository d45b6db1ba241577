"""`exosuit dev` supervises its embedded Temporal: real processes, real `kill -9` by PID.

One `exosuit dev` per data dir; its children die with it; a Temporal child that dies alone
is restarted on the same database while tasks carry on; and nothing but the server it
started ever answers on its Temporal address.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.api.workflowservice.v1 import GetClusterInfoRequest
from temporalio.client import Client

from exosuit.cli import supervisor
from exosuit.cli.supervisor import TemporalSupervisor
from exosuit.domain.autonomy import AutonomyLevel, Role
from exosuit.domain.task import ENDED_STATUSES
from exosuit.processes import alive, free_port, port_free
from exosuit.storage.db import Database, migrate
from exosuit.storage.identity import Directory
from tests.support.cli import EXOSUIT
from tests.support.dev import Dev, dev_env, holding, launch, private_port, servers_on
from tests.support.model_server import ModelServer, ScriptedModel

WORDS = " ".join(f"word{n}" for n in range(40))
ONE_STEP = [{"title": "Write", "instructions": "Write it.", "kind": "llm", "tool": None, "risk": "low"}]


@pytest.fixture
async def running(tmp_path: Path, model_server: ModelServer) -> AsyncIterator[list[Dev]]:
    """The `exosuit dev`s a test starts, stopped at its end whatever happened."""
    started: list[Dev] = []
    yield started
    for dev in started:
        await dev.stop()


async def wait_done(http: httpx.AsyncClient, path: str, within: float = 30.0) -> dict[str, Any]:
    deadline = time.perf_counter() + within
    while (task := (await http.get(path)).json())["status"] not in ENDED_STATUSES:
        assert time.perf_counter() < deadline, f"the task did not finish: {task}"
        await asyncio.sleep(0.05)
    result: dict[str, Any] = task
    return result


async def cluster_id(address: str) -> str:
    client = await Client.connect(address)
    return (await client.workflow_service.get_cluster_info(GetClusterInfoRequest())).cluster_id


async def test_a_second_exosuit_dev_on_the_same_data_dir_is_refused_and_starts_nothing(
    tmp_path: Path, model_server: ModelServer, running: list[Dev]
) -> None:
    url = model_server.register(ScriptedModel())
    first = await launch(tmp_path / "data", url)
    running.append(first)
    port = free_port()
    second = await asyncio.create_subprocess_exec(
        EXOSUIT, "dev", "--port", str(port), env=dev_env(tmp_path / "data", url),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(second.communicate(), 30)
    assert second.returncode != 0
    message = err.decode().strip().splitlines()
    assert len(message) == 1 and not out, (out, err)
    assert str((tmp_path / "data").resolve()) in message[0] and f"PID {first.process.pid}" in message[0]
    assert servers_on(first.db) == [first.temporal_child()]  # no second server on the database
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{first.base_url}/readyz")).status_code == 200
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{port}/healthz")


async def test_kill_9_of_exosuit_dev_leaves_no_temporal_and_the_next_start_is_clean(
    tmp_path: Path, model_server: ModelServer, running: list[Dev]
) -> None:
    url = model_server.register(ScriptedModel())
    # Its worker as a child too (by default it runs in the process that is killed here).
    first = await launch(tmp_path / "data", url, EXOSUIT_DEV_WORKER_PROCESS="true")
    running.append(first)
    child = first.temporal_child()
    assert child is not None
    worker = int(re.search(r"Worker: PID (\d+)", first.output).group(1))  # type: ignore[union-attr]
    assert alive(worker)
    os.kill(first.process.pid, signal.SIGKILL)
    await first.process.wait()
    deadline = time.perf_counter() + 5
    for pid, what in ((child, "Temporal"), (worker, "the worker")):
        while alive(pid):
            assert time.perf_counter() < deadline, f"{what} (PID {pid}) outlived its exosuit dev"
            await asyncio.sleep(0.02)
    again = await launch(tmp_path / "data", url, "again")
    running.append(again)
    assert "left running" not in again.output  # nothing was left to clean up
    assert servers_on(again.db) == [again.temporal_child()]
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{again.base_url}/readyz")).status_code == 200


async def test_a_killed_temporal_is_restarted_and_a_task_running_before_finishes_after(
    tmp_path: Path, model_server: ModelServer, running: list[Dev]
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    url = f"sqlite:///{data_dir / 'exosuit.db'}"
    await asyncio.to_thread(migrate, url)
    db = Database.from_url(url)
    directory = Directory(db)
    await directory.add_user("ops@example.com", teams=["default"], role=Role.APPROVER)
    await directory.set_team_policy("default", max_autonomy=AutonomyLevel.AUTONOMOUS)
    token = await directory.create_token("ops@example.com", name="tests")
    await db.dispose()
    model = ScriptedModel(plan=ONE_STEP)
    model.step_answer = lambda prompt: WORDS
    model.chunk_delay = 0.1  # about 4 s of streaming: the kill lands mid-step
    dev = await launch(data_dir, model_server.register(model))
    running.append(dev)
    before = await cluster_id(dev.temporal)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=dev.base_url, headers=headers, timeout=30) as http:
        body = {"title": "Words", "instructions": "Write words.", "team": "default", "autonomy": "autonomous"}
        created = await http.post("/api/v1/tasks", json=body)
        assert created.status_code == 201, created.text
        path = f"/api/v1/tasks/{created.json()['id']}"
        deadline = time.perf_counter() + 30
        while not ((task := (await http.get(path)).json())["steps"] and task["steps"][0]["partial_output"]):
            assert time.perf_counter() < deadline, f"the step never streamed: {task}"
            await asyncio.sleep(0.03)
        child = dev.temporal_child()
        assert child is not None
        os.kill(child, signal.SIGKILL)
        killed = time.perf_counter()
        meanwhile = await http.post("/api/v1/tasks", json=body | {"title": "Meanwhile"})
        accepted = time.perf_counter() - killed  # the call waited for the server to be back
        assert meanwhile.status_code == 201, meanwhile.text
        restarted = await dev.new_temporal_child(besides=child)
        assert await cluster_id(dev.temporal) == before  # the same server, on the same database
        back = time.perf_counter() - killed
        task = await wait_done(http, path)
        done = time.perf_counter() - killed
        audit = (await http.get(f"{path}/audit")).json()["items"]
        later = await wait_done(http, f"/api/v1/tasks/{meanwhile.json()['id']}")
    print(
        f"Temporal answered again {back:.2f} s after the kill; a task submitted meanwhile was accepted"
        f" after {accepted:.2f} s; the running task finished {done:.1f} s after the kill"
    )
    assert task["status"] == "completed" and task["steps"][0]["output"] == WORDS, task
    assert later["status"] == "completed", later
    assert [e["action"] for e in audit].count("step.finished") == 1
    assert f"Temporal server (PID {child}) exited" in dev.log() and "is back" in dev.log()
    assert dev.process.returncode is None and servers_on(dev.db) == [restarted]


async def test_no_stranger_can_take_temporal_s_port_or_stand_in_for_the_killed_server(
    tmp_path: Path, model_server: ModelServer, running: list[Dev]
) -> None:
    dev = await launch(tmp_path / "data", model_server.register(ScriptedModel()))
    running.append(dev)
    before = await cluster_id(dev.temporal)
    child = dev.temporal_child()
    assert child is not None
    old_port, public_port = private_port(child), int(dev.temporal.rsplit(":", 1)[1])
    os.kill(child, signal.SIGKILL)
    # The advertised port stays exosuit dev's while its server is down.
    with socket.socket() as public, pytest.raises(OSError, match="in use"):
        public.bind(("127.0.0.1", public_port))
    stranger = socket.socket()
    stranger.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do (Go's, uvicorn)
    deadline = time.perf_counter() + 5
    while True:  # a stranger takes the dead server's own port as soon as it is free
        try:
            stranger.bind(("127.0.0.1", old_port))
            break
        except OSError:
            assert time.perf_counter() < deadline
            await asyncio.sleep(0.005)
    stranger.listen(16)
    stranger.setblocking(False)
    try:
        restarted = await dev.new_temporal_child(besides=child)
        assert await cluster_id(dev.temporal) == before
        assert private_port(restarted) != old_port
        with pytest.raises(BlockingIOError):  # nobody ever connected to the stranger
            stranger.accept()
    finally:
        stranger.close()


async def test_a_temporal_server_left_on_the_database_by_an_older_run_is_stopped_first(
    tmp_path: Path, model_server: ModelServer, running: list[Dev]
) -> None:
    db = tmp_path / "data" / "temporal" / "temporal.db"
    db.parent.mkdir(parents=True)
    cli, port = str(Path(EXOSUIT).parent / "temporal"), free_port()
    orphan = await asyncio.create_subprocess_exec(
        cli, "server", "start-dev", "--db-filename", "temporal/temporal.db", "--ip", "127.0.0.1",
        "--port", str(port), "--ui-port", str(free_port()), "--log-level", "error",
        cwd=tmp_path / "data", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        # Left running: up and serving (while it starts, it may not hold the file open yet).
        deadline = time.perf_counter() + 20
        while not (db.exists() and orphan.pid in holding(db) and not port_free(port)):
            assert time.perf_counter() < deadline
            await asyncio.sleep(0.05)
        dev = await launch(tmp_path / "data", model_server.register(ScriptedModel()))
        running.append(dev)
        assert f"stopped a Temporal server (PID {orphan.pid})" in dev.output
        assert await asyncio.wait_for(orphan.wait(), 5) is not None
        assert servers_on(db) == [dev.temporal_child()]
    finally:
        if orphan.returncode is None:
            orphan.kill()
            await orphan.wait()


async def test_anything_else_holding_the_temporal_database_is_named_and_nothing_starts(
    tmp_path: Path, model_server: ModelServer
) -> None:
    db = tmp_path / "data" / "temporal" / "temporal.db"
    db.parent.mkdir(parents=True)
    with db.open("wb"):
        second = await asyncio.create_subprocess_exec(
            EXOSUIT, "dev", "--port", str(free_port()),
            env=dev_env(tmp_path / "data", model_server.register(ScriptedModel())),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(second.communicate(), 30)
    assert second.returncode != 0 and not out, (out, err)
    assert f"is open in PID {os.getpid()}" in err.decode().strip().splitlines()[-1], err
    assert servers_on(db) == []


async def test_a_server_that_comes_back_on_another_database_stops_exosuit_dev(
    tmp_path: Path, model_server: ModelServer, running: list[Dev]
) -> None:
    dev = await launch(tmp_path / "data", model_server.register(ScriptedModel()))
    running.append(dev)
    child = dev.temporal_child()
    assert child is not None
    for path in dev.db.parent.glob("temporal.db*"):
        path.unlink()  # the restarted server starts on an empty database: another cluster
    os.kill(child, signal.SIGKILL)
    started = time.perf_counter()
    code = await asyncio.wait_for(dev.process.wait(), 40)
    print(f"exosuit dev stopped {time.perf_counter() - started:.1f} s after the kill")
    assert code != 0
    assert "is not the database it started with" in dev.log().strip().splitlines()[-1]
    assert servers_on(dev.db) == []


async def test_a_server_that_keeps_dying_is_given_up_on_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(supervisor, "RESTART_BACKOFF", (0.0, 0.0))
    monkeypatch.setattr(supervisor, "MAX_RESTARTS", 2)
    temporal = await TemporalSupervisor.start(tmp_path / "temporal")
    gave_up = asyncio.Event()
    try:
        temporal.supervise(on_give_up=gave_up.set)
        for _ in range(3):  # the first death and two restarts; the third death is one too many
            assert temporal.server is not None
            dying = temporal.server.process
            await asyncio.sleep(0.3)
            dying.kill()
            await dying.wait()
            deadline = time.perf_counter() + 20
            while temporal.server.process is dying and not gave_up.is_set():
                assert time.perf_counter() < deadline
                await asyncio.sleep(0.02)
        await asyncio.wait_for(gave_up.wait(), 20)
        assert temporal.failure and "keeps stopping (2 restarts in 300 s; last, it exited with code -9)" in (
            temporal.failure
        )
        with pytest.raises(ConnectionRefusedError):  # it refuses connections rather than hold them
            await asyncio.open_connection(*temporal.address.split(":"))
    finally:
        await temporal.stop()


async def test_a_hung_temporal_is_found_by_its_health_probe_killed_and_restarted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(supervisor, "PROBE_SECONDS", 0.5)
    monkeypatch.setattr(supervisor, "PROBE_TIMEOUT", 2.0)
    monkeypatch.setattr(supervisor, "PROBE_MISSES", 2)
    temporal = await TemporalSupervisor.start(tmp_path / "temporal")
    try:
        temporal.supervise(on_give_up=lambda: None)
        assert temporal.server is not None
        hung = temporal.server.process
        os.kill(hung.pid, signal.SIGSTOP)  # alive, holding its port, answering nothing
        # Asked through the kept address, the cluster answers again once the restarted server does.
        assert await supervisor.cluster_id(temporal.address, within=90) == temporal.cluster_id
        assert await asyncio.wait_for(hung.wait(), 10) == -signal.SIGKILL
        assert temporal.server.process is not hung and temporal.failure is None
    finally:
        await temporal.stop()
