"""One settings object, read from the environment (every field: docs/configuration.md)."""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything configurable about one Exosuit deployment."""

    model_config = SettingsConfigDict(env_prefix="EXOSUIT_", extra="ignore", populate_by_name=True)

    data_dir: Path = Field(
        Path("./var"),
        description="Where embedded state lives: the SQLite database, Temporal's database, the "
        "tool workspace, the generated secret, the first-start credentials.",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL (`postgresql+psycopg://…` for PostgreSQL); default SQLite under "
        "the data dir.",
    )
    temporal_address: str | None = Field(
        None,
        validation_alias=AliasChoices("TEMPORAL_ADDRESS", "EXOSUIT_TEMPORAL_ADDRESS"),
        description="An existing Temporal cluster; unset means the embedded dev server.",
    )
    temporal_namespace: str = Field(
        "default",
        validation_alias=AliasChoices("TEMPORAL_NAMESPACE", "EXOSUIT_TEMPORAL_NAMESPACE"),
        description="The Temporal namespace the tasks' workflows run in.",
    )
    temporal_tls_cert: Path | None = Field(None, description="Client certificate (PEM) for mTLS to Temporal.")
    temporal_tls_key: Path | None = Field(None, description="Its private key (PEM).")
    temporal_tls_ca: Path | None = Field(
        None, description="The CA (PEM) that signed the server's certificate."
    )
    task_queue: str = Field("exosuit-tasks", description="The workers' task queue.")
    temporal_ui_url: str | None = Field(
        None,
        description="Base URL of the Temporal web UI, for links from task pages; `exosuit dev` sets it "
        "to the embedded server's UI.",
    )
    llm_base_url: str | None = Field(
        None,
        validation_alias=AliasChoices("EXOSUIT_LLM_BASE_URL", "OPENAI_BASE_URL"),
        description="Any OpenAI-compatible endpoint.",
    )
    llm_api_key: str | None = Field(
        None,
        validation_alias=AliasChoices("EXOSUIT_LLM_API_KEY", "OPENAI_API_KEY"),
        description="The endpoint's API key (kept out of logs).",
    )
    llm_model: str = Field("default", description="Model name sent to the endpoint.")
    llm_timeout_seconds: float = Field(120.0, description="One model call's HTTP timeout.")
    llm_dialect: Literal["json_schema", "json_object"] = Field(
        "json_schema",
        description="How the endpoint takes a schema: OpenAI's json_schema, or llama.cpp's "
        "json_object with a schema (its server answers 500 to json_schema).",
    )
    llm_plan_with: Literal["model", "rules"] = Field(
        "model",
        description="Who plans: the model, or the deterministic rules planner (the model still "
        "runs every step). The embedded model plans with rules.",
    )
    providers_file: Path | None = Field(
        None, description="An ordered providers list (TOML); default providers.toml in the data dir."
    )
    tools_file: Path | None = Field(
        None,
        description="What tool steps may reach (TOML); default tools.toml in the data dir; with no "
        "file, only the local tools (write_file, word_count) exist.",
    )
    tool_record_delay_seconds: float = Field(
        0.0,
        description="Fault injection for tests: a pause between a tool's call and the record of its "
        "result (the gap a crash may fall into).",
    )
    llm_plan_max_tokens: int | None = Field(
        None, description="Cap on a plan answer's tokens (embedded model: 900)."
    )
    llm_step_max_tokens: int | None = Field(
        None, description="Cap on a step answer's tokens (embedded model: 160)."
    )
    plan_min_steps: int = Field(1, description="Fewest steps a model's plan may have.")
    plan_max_steps: int = Field(20, description="Most steps a model's plan may have (embedded model: 7).")
    llm_price_input_per_million: float = Field(0.0, description="USD per 1M prompt tokens.")
    llm_price_output_per_million: float = Field(0.0, description="USD per 1M output tokens.")
    previous_secret_keys: str | None = Field(
        None,
        description="Earlier root secrets, comma-separated: what they sealed still opens after a rotation.",
    )
    secret_key: str | None = Field(
        None,
        description="The root secret: seals Temporal payloads and signs audit anchors (keys are derived "
        "from it); default generated once into `secret_key` in the data dir (mode 0600).",
    )
    max_body_bytes: int = Field(1_048_576, description="Largest request body the API accepts (413 above).")
    max_concurrent_requests: int = Field(
        256,
        ge=1,
        description="Requests one web process serves at once; past it, 429 with Retry-After at once. "
        "Health checks, metrics, long-polls, event streams and /mcp are counted apart.",
    )
    max_waiting_requests: int = Field(
        512,
        ge=1,
        description="Long-polls (`/wait`), event streams and /mcp calls one web process holds at once; "
        "past it, 429 with Retry-After.",
    )
    max_waiting_requests_per_person: int = Field(
        64,
        ge=1,
        description="Of those, the most one person (or one anonymous address) holds at once; never "
        "more than half the bound. Past it, 429 naming the person's limit.",
    )
    database_pool_size: int = Field(5, ge=1, description="Pooled database connections a process keeps.")
    database_max_overflow: int = Field(
        10, ge=0, description="Connections the pool may open beyond its size under load."
    )
    database_pool_timeout_seconds: float = Field(
        5.0, gt=0, description="How long a request waits for a pooled connection before a 503."
    )
    database_busy_timeout_seconds: float = Field(
        10.0, ge=0, description="How long a write waits for SQLite's write lock before it gives up."
    )
    login_limit_per_account: str = Field(
        "10 per 15 minutes", description="Failed sign-ins an account allows before it waits."
    )
    login_limit_per_address: str = Field("30 per minute", description="Sign-in attempts per client address.")
    claim_lease_minutes: float = Field(
        15.0, gt=0, description="How long an approver's claim on a gate lasts unless they claim it again."
    )
    event_streams_per_user: int = Field(20, description="Open server-sent-event streams per person.")
    limits_storage_url: str | None = Field(
        None,
        description="Where the rate limits count, shared by every web replica: a `limits` storage URL "
        "such as redis://HOST:6379 (default: each process's memory).",
    )
    worker_metrics_port: int | None = Field(
        None, description="Where a worker serves its and the Temporal SDK's Prometheus metrics."
    )
    worker_health_port: int | None = Field(
        None,
        description="Where a worker answers health checks: /healthz (alive), /readyz (polling Temporal).",
    )
    audit_checkpoint_seconds: float = Field(
        600.0, gt=0, description="How often a worker signs every task's audit head."
    )
    reconcile_seconds: float = Field(
        60.0,
        description="How often a worker holds the read model of tasks not yet ended against Temporal.",
    )
    worker_graceful_shutdown_seconds: float = Field(
        30.0,
        description="On SIGTERM/SIGINT a worker stops polling and gives its running activities this "
        "long to finish; then they are cancelled and Temporal hands them to another worker.",
    )
    dev_worker_process: bool = Field(
        False,
        description="`exosuit dev` runs its worker as a child process of its own (restarted if it dies; "
        "its log in the data dir's worker.log) instead of in the web app's process: a core each, "
        "about 130 MB more memory.",
    )
    worker_max_cached_workflows: int = Field(
        250,
        ge=0,
        description="Workflows a worker keeps in memory between their steps (each about 0.1 MB); "
        "one evicted is replayed from its history when its next gate is decided: keep it at or above "
        "the tasks decided at about the same time.",
    )
    worker_max_concurrent_activities: int = Field(
        100, ge=1, description="Activities (model calls, tool calls, records) a worker runs at once."
    )
    earned_autonomy_run: int = Field(
        50,
        ge=1,
        description="Unchanged approvals in a row, of the gates a level up would skip, that propose "
        "raising a template's default autonomy.",
    )
    earned_autonomy_window: int = Field(
        20, ge=1, description="The latest decisions of a template whose rejections are counted."
    )
    earned_autonomy_rejects: int = Field(
        5, ge=1, description="Rejections among those that propose lowering a template's default autonomy."
    )
    earned_autonomy_refresh_seconds: float = Field(
        60,
        ge=0,
        description="How often, at most, a web process runs the earned-autonomy rule again for a "
        "team when its suggestions are looked at; in between, the stored suggestions are shown "
        "(0: on every look).",
    )
    watch_interval_seconds: float = Field(
        0.02,
        gt=0,
        description="How often a web process reads the versions of the tasks someone waits on "
        "(long-polls, event streams): one query a tick, whatever the number of waiters.",
    )
    log_format: Literal["json", "text"] | None = Field(
        None,
        description="Log lines on stderr: `json` (one object a line) or `text`; default json "
        "when stderr is not a terminal (a container, a log file), text when it is.",
    )
    log_level: str | None = Field(
        None, description="The least severe level logged; default INFO for the servers, WARNING for the rest."
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        None,
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT", "EXOSUIT_OTEL_EXPORTER_OTLP_ENDPOINT"),
        description="An OTLP/HTTP collector (traces go to ENDPOINT/v1/traces); unset means no tracing.",
    )
    otel_service_name: str | None = Field(
        None,
        validation_alias=AliasChoices("OTEL_SERVICE_NAME", "EXOSUIT_OTEL_SERVICE_NAME"),
        description="The traces' service name; default exosuit-web, exosuit-worker or exosuit (dev).",
    )
    public_url: str | None = Field(
        None, description="Where people reach the web app; links in notifications. Default http://HOST:PORT."
    )
    webhook_allow_loopback: bool = Field(
        False,
        description="Let webhooks reach loopback addresses (tests, a receiver on the same machine); "
        "private, link-local and other non-public addresses are refused regardless.",
    )
    webhook_retry_initial_seconds: float = Field(5.0, description="A refused delivery's first retry.")
    webhook_retry_max_seconds: float = Field(3600.0, description="Retries of a delivery space out to this.")
    webhook_give_up_seconds: float = Field(
        25 * 3600.0,
        ge=0.0,
        description="How long a delivery is retried before it is given up (at least 24 h: 86400).",
    )
    webhook_timeout_seconds: float = Field(10.0, description="One delivery attempt's HTTP timeout.")
    notify_digest_seconds: float = Field(
        10.0, description="Notifications that arrive within this window go out as one digest."
    )
    notify_retry_max_seconds: float = Field(
        600.0, description="A notification's retries space out to this (or the webhooks' maximum, if less)."
    )
    notify_give_up_seconds: float = Field(
        6 * 3600.0, ge=0.0, description="How long a notification is retried before it is given up."
    )
    outbox_idle_seconds: float = Field(
        60.0,
        gt=0,
        description="A queue's delivery workflow (one per subscription and task, one per team's "
        "notifications) ends after this long with nothing to send; the next message starts it again.",
    )
    trusted_proxies: str = Field(
        "",
        description="Comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed (sign-in limits, logs, links); none by default.",
    )
    metrics_token: str | None = Field(
        None,
        description="When set, /metrics answers only `Authorization: Bearer TOKEN`; when unset, only "
        "clients on this machine (loopback).",
    )
    oidc_issuer: str | None = Field(
        None,
        description="OpenID Connect issuer URL; with the client id and secret, the sign-in page offers it.",
    )
    oidc_client_id: str | None = Field(None, description="This app's client id at the provider.")
    oidc_client_secret: str | None = Field(None, description="Its client secret.")
    oidc_team_claim: str = Field(
        "exosuit_team", description="The claim naming the person's team (a string or a list)."
    )
    oidc_role_claim: str = Field(
        "exosuit_role", description="The claim naming their role there: member, approver or admin."
    )
    oidc_scopes: str = Field("openid email profile", description="The scopes asked for at sign-in.")
    local_passwords: bool = Field(
        True, description="Whether people may also sign in with a local password (false: provider only)."
    )
    host: str = Field(
        "127.0.0.1",
        description="The address the web app, a worker's health port and its metrics port listen on.",
    )
    port: int = Field(8000, description="The web app's port (`exosuit dev` and `exosuit web` take `--port`).")

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id and self.oidc_client_secret)

    @property
    def trusted_proxy_list(self) -> list[str]:
        return [p.strip() for p in self.trusted_proxies.split(",") if p.strip()]

    @property
    def resolved_tools_file(self) -> Path:
        return self.tools_file or self.data_dir / "tools.toml"

    @property
    def resolved_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'exosuit.db'}"

    @cached_property
    def resolved_secret_key(self) -> str:
        """The configured secret, or one generated once into the data dir (mode 0600)."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process of this deployment wrote it first
                pass
            else:
                with os.fdopen(descriptor, "w") as out:
                    out.write(secrets.token_urlsafe(48))
        return path.read_text().strip()

    @property
    def sealing_secrets(self) -> list[str]:
        """The root secret first (it seals), then earlier ones (they only open)."""
        previous = [s.strip() for s in (self.previous_secret_keys or "").split(",") if s.strip()]
        return [self.resolved_secret_key, *previous]

    @property
    def known_secrets(self) -> list[str]:
        """The secrets to keep out of logs; reading them never generates one (nor the data dir)."""
        generated = self.data_dir / "secret_key"
        root = self.secret_key or (generated.read_text().strip() if generated.is_file() else None)
        previous = [s.strip() for s in (self.previous_secret_keys or "").split(",")]
        return [
            s for s in (root, *previous, self.llm_api_key, self.metrics_token, self.oidc_client_secret) if s
        ]
