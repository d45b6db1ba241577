"""The soak's driver and its checks (tests/support/soak.py has the system and the faults).

N tasks in flight, each decided gate after gate as an automation would: POST the decision with
an Idempotency-Key, then long-poll `/wait?for=gate` until the next gate is open. Every answer is
classified. A 503 or 429 is the product's honest "try again": the driver waits out its
Retry-After and sends the same request again, with the same key. While the web process
restarts, a refused connection (nothing was sent) and a connection the stopping process closed
before answering are sent again too (the same key), and counted. A client timeout, a closed
connection at any other time, and any 5xx but 503 are failures.

The checks at the end: every decision the driver saw accepted is in the task's audit once as
`gate.decided`, none it saw refused or unanswered is there twice, and nothing else is; every
task's audit chain verifies; no task is stuck (each reached its next gate or its end within a
bound once the faults were over) or ended otherwise than completed; no 5xx but 503, and no
unanswered request. `timeline` prints the run per 10 s window with the faults marked;
`recoveries` says how soon the p99 of approve -> next gate came back after each fault.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from exosuit.domain.task import ENDED_STATUSES
from tests.support.model_server import ModelServer, ScriptedModel
from tests.support.soak import TEAM, Fault, FaultPlan, SoakSystem

STEPS = 10  # a plan of 10 steps: 11 gates per supervised task, then a new task
WAIT_SECONDS = 20  # one long-poll
REQUEST_SECONDS = 60.0  # the client's timeout: longer than any wait the server bounds

Task = dict[str, Any]


@dataclass
class Decided:
    task_id: str
    gate_id: str
    outcome: str  # accepted (200), refused (another answer), unanswered (given up on)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"


@dataclass
class Record:
    """What the driver saw, on the run's clock (seconds since the drive began)."""

    decided_at: list[float] = field(default_factory=list)  # accepted decisions
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (next gate seen at, ms)
    errors: list[tuple[float, str]] = field(default_factory=list)  # (when, class)
    decisions: list[Decided] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    completed: int = 0
    stuck: list[str] = field(default_factory=list)
    ended_badly: list[str] = field(default_factory=list)
    false_refusals: list[str] = field(default_factory=list)  # refused, yet the gate stayed open
    faults: list[Fault] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # what each unusual answer said (the first few)

    def note(self, at: float, text: str) -> None:
        if len(self.notes) < 40:
            self.notes.append(f"{at:6.1f} s {text[:300]}")


class Driver:
    def __init__(self, system: SoakSystem, in_flight: int, stuck_seconds: float) -> None:
        self.system, self.in_flight, self.stuck_seconds = system, in_flight, stuck_seconds
        self.record = Record()
        self._t0 = time.perf_counter()
        # An idle connection is dropped before the server's keep-alive timeout (uvicorn's 5 s):
        # at the same 5 s, a request sent as the server closes the connection gets no answer.
        limits = httpx.Limits(max_connections=in_flight * 2 + 10, keepalive_expiry=2.0)

        def client(token: str) -> httpx.AsyncClient:
            headers = {"Authorization": f"Bearer {token}"}
            return httpx.AsyncClient(base_url=system.base_url, limits=limits, timeout=REQUEST_SECONDS,
                                     headers=headers)  # fmt: skip

        self.submitter, self.approver = client(system.submit_token), client(system.approve_token)

    def clock(self) -> float:
        return time.perf_counter() - self._t0

    async def run(self, seconds: float, plan: FaultPlan) -> Record:
        """Drive for `seconds` while the faults of `plan` land; then check what was done."""
        self._t0 = time.perf_counter()
        faults = asyncio.create_task(self.system.inject(plan, self.clock, self.record.faults))
        slots = [asyncio.create_task(self._slot(seconds)) for _ in range(self.in_flight)]
        try:
            await faults
            await asyncio.gather(*slots)
        finally:
            for slot in slots:
                slot.cancel()
        self.record.seconds = self.clock()
        return self.record

    async def close(self) -> None:
        await self.submitter.aclose()
        await self.approver.aclose()

    # Driving

    def _error(self, kind: str) -> None:
        self.record.errors.append((self.clock(), kind))

    def _overdue(self, since: float) -> bool:
        """Whether a wait that began at `since` has lasted longer than the bound once every
        fault so far was over (never while one lasts)."""
        if any(f.ended is None for f in self.record.faults):
            return False
        quiet = max((f.ended or 0.0 for f in self.record.faults), default=0.0)
        return self.clock() - max(since, quiet) > self.stuck_seconds

    async def _send(
        self, http: httpx.AsyncClient, method: str, url: str, since: float, **kwargs: Any
    ) -> httpx.Response | None:
        """The request until it gets an answer other than "try again" (None: overdue)."""
        while not self._overdue(since):
            try:
                answer = await http.request(method, url, **kwargs)
            except httpx.ConnectError:  # nothing was sent: the web process is down
                self._error("refused")
                await asyncio.sleep(0.2)
                continue
            except httpx.TimeoutException as error:
                self._error("timeout")
                self.record.note(self.clock(), f"timeout: {method} {url}: {error!r}")
                continue
            except httpx.TransportError as error:  # sent, and the connection closed before an answer
                self._error("dropped")
                self.record.note(self.clock(), f"dropped: {method} {url}: {error!r}")
                await asyncio.sleep(0.2)
                continue
            if answer.status_code in (429, 503) or answer.status_code >= 500:
                self._error(str(answer.status_code))
                if answer.status_code != 503 or len(self.record.notes) < 10:
                    self.record.note(self.clock(), f"{answer.status_code}: {method} {url}: {answer.text}")
                await asyncio.sleep(float(answer.headers.get("Retry-After", "1")))
                continue
            return answer
        return None

    async def _slot(self, seconds: float) -> None:
        task = await self._submit()
        while self.clock() < seconds:
            if task is None or task["status"] in ENDED_STATUSES:
                if task is not None and task["status"] == "completed":
                    self.record.completed += 1
                elif task is not None:
                    self.record.ended_badly.append(task["id"])
                task = await self._submit()
                continue
            task_id, gate_id = task["id"], task["open_gate"]["id"]
            started = self.clock()
            outcome = await self._decide(task_id, gate_id, started)
            self.record.decisions.append(Decided(task_id, gate_id, outcome))
            if outcome == "accepted":
                self.record.decided_at.append(self.clock())
            # Refused: the gate may still be open (then it is decided again, with a new key).
            task = await self._next_gate(task_id, gate_id if outcome == "accepted" else None, started)
            if outcome == "refused" and task is not None and (task["open_gate"] or {}).get("id") == gate_id:
                self.record.false_refusals.append(f"{task_id} gate {gate_id}")
            if outcome == "accepted" and task is not None and task["status"] not in ENDED_STATUSES:
                self.record.latencies.append((self.clock(), (self.clock() - started) * 1000))

    async def _submit(self) -> Task | None:
        since = self.clock()
        body = {"title": "Soak", "instructions": "Go.", "team": TEAM, "autonomy": "supervised"}
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        answer = await self._send(self.submitter, "POST", "/api/v1/tasks", since, json=body, headers=headers)
        if answer is None or answer.status_code != 201:
            self._error("submission refused")
            self.record.note(self.clock(), f"submission: {answer.text if answer else 'given up'}")
            await asyncio.sleep(1)
            return None
        task_id = answer.json()["id"]
        self.record.tasks.append(task_id)
        return await self._next_gate(task_id, None, since)

    async def _decide(self, task_id: str, gate_id: str, since: float) -> str:
        url = f"/api/v1/tasks/{task_id}/decisions"
        body = {"gate_id": gate_id, "action": "approve"}
        headers = {"Idempotency-Key": uuid.uuid4().hex}  # the same key on every retry
        answer = await self._send(self.approver, "POST", url, since, json=body, headers=headers)
        if answer is None:
            return "unanswered"
        if answer.status_code != 200:
            self._error(str(answer.status_code))
            self.record.note(self.clock(), f"{answer.status_code}: POST {url}: {answer.text}")
            return "refused"
        return "accepted"

    async def _next_gate(self, task_id: str, after: str | None, since: float) -> Task | None:
        """The task once a gate other than `after` is open or it has ended (None: stuck)."""
        url = f"/api/v1/tasks/{task_id}/wait"
        params = {"for": "gate", "timeout": WAIT_SECONDS}
        while True:
            answer = await self._send(self.approver, "GET", url, since, params=params)
            if answer is None:
                self.record.stuck.append(task_id)
                return None
            if answer.status_code != 200:
                self._error(str(answer.status_code))
                self.record.note(self.clock(), f"{answer.status_code}: GET {url}: {answer.text}")
                await asyncio.sleep(1)
                continue
            task: Task = answer.json()
            gate = task["open_gate"]
            if task["status"] in ENDED_STATUSES or (gate is not None and gate["id"] != after):
                return task
            await asyncio.sleep(0.02)  # the decided gate still shows: its record is on the way

    # Checking

    async def check(self) -> list[Check]:
        """The checks every soak makes (the benchmark adds the p99 recoveries)."""
        record = self.record
        seen = Counter[str]()
        chains_bad: list[str] = []
        limit = asyncio.Semaphore(8)

        async def audit(task_id: str) -> None:
            async with limit:
                events = await self._read(f"/api/v1/tasks/{task_id}/audit")
                verify = await self._read(f"/api/v1/tasks/{task_id}/audit/verify")
            seen.update(e["data"]["gate_id"] for e in events["items"] if e["action"] == "gate.decided")
            if not verify["ok"]:
                chains_bad.append(f"{task_id} (first bad seq {verify['first_bad_seq']})")

        await asyncio.gather(*(audit(t) for t in record.tasks))
        accepted = {d.gate_id for d in record.decisions if d.outcome == "accepted"}
        others = {d.gate_id for d in record.decisions} - accepted
        lost = sorted(g for g in accepted if seen[g] == 0)
        twice = sorted(g for g, n in seen.items() if n > 1)
        unknown = sorted(set(seen) - accepted - others)
        errors = Counter(kind for _, kind in record.errors)
        server = {k: n for k, n in errors.items() if k.isdigit() and int(k) >= 500 and k != "503"}
        unanswered = {"timeout": errors["timeout"]} if errors["timeout"] else {}
        restarts = [f for f in record.faults if f.name == "web restarted"]
        dropped = [at for at, kind in record.errors if kind == "dropped"]
        stray = [at for at in dropped if not any(_during(f, at) for f in restarts)]
        if stray:
            unanswered["dropped outside a web restart"] = len(stray)
        outcomes = Counter(d.outcome for d in record.decisions)
        return [
            Check("no decision lost", not lost,
                  f"{len(accepted)} accepted, {len(lost)} not in the audit {lost[:5]}"),
            Check("no decision refused while its gate was open", not record.false_refusals,
                  f"{len(record.false_refusals)} {record.false_refusals[:5]}"),
            Check("no decision applied twice", not twice and not unknown,
                  f"{len(twice)} gates decided twice {twice[:5]}, {len(unknown)} decided by no one "
                  f"the driver saw; outcomes {dict(outcomes)}"),
            Check("every audit chain verifies", not chains_bad,
                  f"{len(record.tasks)} tasks, bad: {chains_bad[:5]}"),
            Check("no task stuck", not (record.stuck or record.ended_badly or errors["submission refused"]),
                  f"stuck {record.stuck[:5]}, ended otherwise than completed {record.ended_badly[:5]}, "
                  f"submissions refused {errors['submission refused']}; {record.completed} completed"),
            Check("no 5xx but 503", not server, f"503 {errors['503']} (retried), other 5xx {server or 0}"),
            Check("no unanswered request", not unanswered,
                  f"{unanswered or 0}; while the web process restarted (retried, the same key): connections "
                  f"refused {errors['refused']}, closed before an answer {len(dropped) - len(stray)}"),
        ]  # fmt: skip

    async def _read(self, path: str) -> dict[str, Any]:
        answer = await self._send(self.approver, "GET", path, self.clock())
        assert answer is not None and answer.status_code == 200, (path, answer)
        found: dict[str, Any] = answer.json()
        return found


def _during(fault: Fault, at: float) -> bool:
    return fault.started <= at <= (fault.ended if fault.ended is not None else at)


def _pct(values: list[float], q: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _between(record: Record, start: float, end: float) -> list[float]:
    return [ms for at, ms in record.latencies if start <= at < end]


def timeline(record: Record, window: float = 10.0) -> list[str]:
    """Per window: decisions/s, p50/p99 of approve -> next gate, errors by class, faults."""
    lines = [f"{'window s':>9} {'dec/s':>6} {'p50 ms':>8} {'p99 ms':>8}  {'errors':<30} faults"]
    start = 0.0
    while start < record.seconds:
        end = start + window
        decided = sum(start <= t < end for t in record.decided_at)
        latencies = _between(record, start, end)
        errors = Counter(kind for at, kind in record.errors if start <= at < end)
        marks = [f"{f.name} start" for f in record.faults if start <= f.started < end]
        marks += [f"{f.name} end" for f in record.faults if f.ended is not None and start <= f.ended < end]
        text = ", ".join(f"{kind} {n}" for kind, n in sorted(errors.items())) or "-"
        lines.append(
            f"{start:4.0f}-{end:<4.0f} {decided / window:6.1f} {_pct(latencies, 50):8.0f} "
            f"{_pct(latencies, 99):8.0f}  {text:<30} {'; '.join(marks)}"
        )
        start = end
    return lines


def recoveries(
    record: Record, within: float = 60.0, window: float = 10.0, factor: float = 2.0
) -> list[Check]:
    """Per fault: the p99 of the minute before it, and how soon after its end a `window` of
    approvals had a p99 within `factor` times that again (sliding by a second)."""
    checks = []
    ordered = sorted(record.faults, key=lambda f: f.started)
    for n, fault in enumerate(ordered):
        assert fault.ended is not None
        calm = (ordered[n - 1].ended or 0.0) if n else 0.0
        before = _between(record, max(calm, fault.started - within), fault.started)
        baseline = _pct(before, 99)
        back: float | None = None
        offset = 0.0
        while offset + window <= within:
            after = _between(record, fault.ended + offset, fault.ended + offset + window)
            if after and _pct(after, 99) <= factor * baseline:
                back = offset + window
                break
            offset += 1.0
        checks.append(Check(
            f"p99 back after '{fault.name}'", back is not None,
            f"p99 before {baseline:.0f} ms; a {window:.0f} s window within {factor:g}x of it "
            + (f"{back:.0f} s after the fault ended" if back is not None else f"not within {within:.0f} s"),
        ))  # fmt: skip
    return checks


async def soak(
    model_server: ModelServer,
    data_dir: Path,
    *,
    in_flight: int,
    seconds: float,
    plan: FaultPlan,
    stuck_seconds: float,
) -> tuple[Record, list[Check]]:
    """The system started, driven for `seconds` under `plan`'s faults, checked, stopped."""
    steps = [{"title": f"Step {i}", "instructions": f"Do {i}.", "kind": "llm", "tool": None, "risk": "low"}
             for i in range(STEPS)]  # fmt: skip
    system = SoakSystem(data_dir, model_server.register(ScriptedModel(steps)))
    try:
        await system.start()
        driver = Driver(system, in_flight, stuck_seconds)
        try:
            record = await driver.run(seconds, plan)
            checks = await driver.check()
        finally:
            await driver.close()
    except BaseException:
        print(f"the processes' logs are in {data_dir}", file=sys.stderr)
        raise
    finally:
        await system.stop()
    return record, checks
