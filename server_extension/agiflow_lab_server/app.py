"""The ``AgiflowLab`` extension: configuration (traitlets), routes and the platform's lifetime."""

from __future__ import annotations

import asyncio
import gc
from dataclasses import replace
from pathlib import Path
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Float, Integer, Type, Unicode

from agiflow_lab.alerts.evaluator import AlertEvaluator
from agiflow_lab.bus.factory import make_bus
from agiflow_lab.config import Settings
from agiflow_lab.core.shutdown import finish_within
from agiflow_lab.jobs.backend import JobBackend
from agiflow_lab.notifications.delivery import Notifier
from agiflow_lab.platform import Platform
from agiflow_lab.schedules.scheduler import Scheduler
from agiflow_lab.traces.ingest import TraceIngest
from agiflow_lab.traces.store import PostgresSpanStore
from agiflow_lab.upkeep import Upkeep
from agiflow_lab_server.base import PlatformState
from agiflow_lab_server.handlers import (
    alerts,
    bus,
    datasets,
    docs,
    evals,
    events,
    jobs,
    models,
    notifications,
    otel,
    projects,
    prompts,
    schedules,
    scores,
    trace_activity,
    traces,
)
from agiflow_lab_server.redaction import install_filter
from agiflow_lab_server.routing import API_PREFIX, Route, path_regex
from agiflow_lab_server.supervisor import WorkerSupervisor
from agiflow_lab_workers.roles import JOBS_ROLE, SPANS_ROLE

P = "/projects/{project}"
ROUTES: list[Route] = [
    Route("/openapi.json", docs.OpenApiHandler),
    Route("/docs", docs.DocsHandler),
    Route("/getting-started", docs.GettingStartedHandler),
    Route("/projects", projects.ProjectsHandler),
    Route(P, projects.ProjectHandler),
    Route(P + "/members", projects.MembersHandler),
    Route(P + "/members/{user}", projects.MemberHandler),
    Route(P + "/keys", projects.KeysHandler),
    Route(P + "/keys/{key_id}", projects.KeyHandler),
    Route(P + "/audit", projects.AuditHandler),
    Route(P + "/prompts", prompts.PromptsHandler),
    Route(P + "/prompts/{name}", prompts.PromptHandler),
    Route(P + "/prompts/{name}/summary", prompts.PromptSummaryHandler),
    Route(P + "/prompts/{name}/versions", prompts.VersionsHandler),
    Route(P + "/prompts/{name}/versions/{version}", prompts.VersionHandler),
    Route(P + "/prompts/{name}/labels/{label}", prompts.LabelHandler),
    Route(P + "/prompts/{name}/labels/{label}/history", prompts.LabelHistoryHandler),
    Route(P + "/prompts/{name}/labels/{label}/rollback", prompts.LabelRollbackHandler),
    Route(P + "/prompts/{name}/render", prompts.RenderHandler),
    Route(P + "/prompts/{name}/diff", prompts.DiffHandler),
    Route(P + "/prompts/{name}/archive", prompts.ArchiveHandler),
    Route(P + "/datasets", datasets.DatasetsHandler),
    Route(P + "/datasets/{name}", datasets.DatasetHandler),
    Route(P + "/datasets/{name}/versions", datasets.VersionsHandler),
    Route(P + "/datasets/{name}/items", datasets.ItemsHandler),
    Route(P + "/datasets/{name}/items/{item_id}", datasets.ItemHandler),
    Route(P + "/datasets/{name}/import", datasets.ImportHandler),
    Route(P + "/datasets/{name}/export", datasets.ExportHandler),
    Route(P + "/datasets/{name}/from-spans", datasets.FromSpansHandler),
    Route(P + "/models", models.ConnectionsHandler),
    Route(P + "/models/{name}", models.ConnectionHandler),
    Route(P + "/models/{name}/test", models.ConnectionTestHandler),
    Route(P + "/prices", models.PricesHandler),
    Route(P + "/prices/{model}", models.PriceHandler),
    Route(P + "/evals/runs", evals.RunsHandler),
    Route(P + "/evals/runs/{run_id}", evals.RunHandler),
    Route(P + "/evals/runs/{run_id}/results", evals.RunResultsHandler),
    Route(P + "/evals/runs/{run_id}/cancel", evals.RunCancelHandler),
    Route(P + "/evals/compare", evals.CompareHandler),
    Route(P + "/evals/evaluators", evals.EvaluatorTypesHandler),
    Route(P + "/jobs", jobs.JobsHandler),
    Route(P + "/jobs/{job_id}", jobs.JobHandler),
    Route(P + "/jobs/{job_id}/cancel", jobs.JobCancelHandler),
    Route(P + "/jobs/{job_id}/retry", jobs.JobRetryHandler),
    Route(P + "/jobs/{job_id}/events", jobs.JobEventsHandler),
    Route(P + "/jobs/{job_id}/notebook", jobs.JobNotebookHandler),
    Route(P + "/jobs/{job_id}/notebook/open", jobs.JobNotebookOpenHandler),
    Route(P + "/schedules", schedules.SchedulesHandler),
    Route(P + "/schedules/{name}", schedules.ScheduleHandler),
    Route(P + "/schedules/{name}/pause", schedules.SchedulePauseHandler),
    Route(P + "/schedules/{name}/resume", schedules.ScheduleResumeHandler),
    Route(P + "/schedules/{name}/run", schedules.ScheduleRunHandler),
    Route(P + "/schedules/{name}/firings", schedules.FiringsHandler),
    Route(P + "/alerts/rules", alerts.RulesHandler),
    Route(P + "/alerts/rules/{name}", alerts.RuleHandler),
    Route(P + "/alerts/incidents", alerts.IncidentsHandler),
    Route(P + "/alerts/silences", alerts.SilencesHandler),
    Route(P + "/alerts/silences/{silence_id}", alerts.SilenceHandler),
    Route(P + "/notifications", notifications.NotificationsHandler),
    Route(P + "/notifications/live", notifications.NotificationActivitySocket),
    Route(P + "/notifications/unread", notifications.UnreadHandler),
    Route(P + "/notifications/read", notifications.ReadAllHandler),
    Route(P + "/notifications/channels", notifications.ChannelsHandler),
    Route(P + "/notifications/channels/{name}", notifications.ChannelHandler),
    Route(P + "/notifications/channels/{name}/test", notifications.ChannelTestHandler),
    Route(P + "/notifications/{notification_id}/read", notifications.ReadHandler),
    Route(P + "/traces", traces.TraceListHandler),
    Route(P + "/traces/live", trace_activity.TraceActivitySocket),
    Route(P + "/traces/{trace_id}", traces.TraceHandler),
    Route(P + "/sessions", traces.SessionListHandler),
    Route(P + "/users", traces.UserListHandler),
    Route(P + "/metrics", traces.MetricsHandler),
    Route(P + "/scores", scores.ScoresHandler),
    Route(P + "/scores/{score_id}", scores.ScoreHandler),
    Route("/status", jobs.StatusHandler),
    Route("/bus/dead-letters", bus.DeadLettersHandler),
    Route("/bus/dead-letters/{message_id}/requeue", bus.RequeueHandler),
    Route("/events", events.EventsSocket),
    Route("/otel/v1/traces", otel.TracesHandler),
    Route("/otel/v1/agiflow/actions/{action_id}/score", otel.SdkScoreHandler),
    Route("/otel/v1/agiflow/steps/{step_id}", otel.SdkStepHandler),
]


class AgiflowLab(ExtensionApp):  # type: ignore[misc]
    name = "agiflow_lab"
    load_other_extensions = True

    database_url = Unicode(
        None, allow_none=True, config=True,
        help="Postgres URL. Unset: an embedded Postgres is started under data_dir. Env: AGIFLOW_DATABASE_URL.",
    )  # fmt: skip
    data_dir = Unicode("", config=True, help="Where AGIFlow keeps its embedded database. Env: AGIFLOW_DATA_DIR.")
    owner = Unicode(
        "", config=True,
        help="The user who owns the default project; default: the OS user running the server. Env: AGIFLOW_OWNER.",
    )  # fmt: skip
    default_project = Unicode("default", config=True, help="Slug of the project created on first start.")
    bus = Unicode(
        "postgres", config=True, help="Message bus: 'postgres' (embedded default) or 'kafka'. Env: AGIFLOW_BUS."
    )
    kafka_bootstrap = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Kafka bootstrap servers for bus='kafka'. Env: AGIFLOW_KAFKA_BOOTSTRAP.",
    )
    workers = Integer(
        1, config=True, help="Worker processes this server supervises (0: run workers yourself). Env: AGIFLOW_WORKERS."
    )
    worker_concurrency = Integer(2, config=True, help="Jobs each supervised worker runs at once.")
    span_writers = Integer(
        1, config=True,
        help="Span-writer processes this server supervises beside its workers (which then run jobs only), so loading "
        "traces never shares an event loop with an evaluation's model calls. 0: the workers write spans too. "
        "Only with workers > 0. Env: AGIFLOW_SPAN_WRITERS.",
    )  # fmt: skip
    worker_standby = Bool(
        True, config=True,
        help="Keep a spare worker beside each supervised one (imports done, kernels started, database open), which "
        "takes over at once when the worker dies. Costs a process and its kernels. Env: AGIFLOW_WORKER_STANDBY.",
    )  # fmt: skip
    max_running_jobs = Integer(32, config=True, help="Jobs running at once across the deployment.")
    max_running_jobs_per_project = Integer(8, config=True, help="Jobs running at once in one project.")
    max_body_bytes = Integer(
        2 * 1024 * 1024, config=True,
        help="Largest JSON request body; a larger one is refused with 413 before it is read. Env: AGIFLOW_MAX_BODY_BYTES.",
    )  # fmt: skip
    max_import_bytes = Integer(
        512 * 1024 * 1024, config=True,
        help="Largest streamed dataset import (CSV/JSONL) body. Env: AGIFLOW_MAX_IMPORT_BYTES.",
    )  # fmt: skip
    max_json_depth = Integer(
        64, config=True, help="Deepest nesting accepted in JSON bodies and imported rows. Env: AGIFLOW_MAX_JSON_DEPTH."
    )
    secret_key_file = Unicode(
        "", config=True,
        help="Fernet key file that encrypts provider API keys at rest (created 0600 on first use); default: "
        "<data_dir>/secret.key. AGIFLOW_SECRET_KEY (the key itself) wins if set. Env: AGIFLOW_SECRET_KEY_FILE.",
    )  # fmt: skip

    allow_private_model_hosts = Bool(
        True, config=True,
        help="Model connections may call loopback and private-network addresses (a laptop's Ollama on 127.0.0.1). "
        "Turn off in a shared deployment so connections cannot probe the server's network; link-local and "
        "cloud-metadata addresses are refused either way. Env: AGIFLOW_ALLOW_PRIVATE_MODEL_HOSTS.",
    )  # fmt: skip
    keys_manage_members = Bool(
        False, config=True,
        help="Project API keys (owner role) may add, change and remove members. Off: only signed-in owners "
        "manage members. Env: AGIFLOW_KEYS_MANAGE_MEMBERS.",
    )  # fmt: skip

    scheduler = Bool(
        True, config=True,
        help="This server takes part in firing schedules: one server at a time fires them (an advisory lock "
        "elects it), the others stand by. Off: this one never fires. Env: AGIFLOW_SCHEDULER.",
    )  # fmt: skip

    alert_evaluator = Bool(
        True, config=True,
        help="This server takes part in evaluating alert rules: one server at a time evaluates them (an advisory "
        "lock elects it). Off: this one never does. Env: AGIFLOW_ALERT_EVALUATOR.",
    )  # fmt: skip
    alert_interval = Float(
        10.0, config=True,
        help="Seconds between evaluations of every alert rule (a rule's change is evaluated at once). "
        "Env: AGIFLOW_ALERT_INTERVAL_SECONDS.",
    )  # fmt: skip

    bus_class = Type(
        default_value=None, klass="agiflow_lab.bus.base.Bus", allow_none=True, config=True,
        help="A Bus subclass to use instead of the built-in 'postgres' or 'kafka' (it builds itself with "
        "from_settings); supervised workers get its import path as AGIFLOW_BUS. Wins over 'bus'.",
    )  # fmt: skip
    kernel_sandbox = Unicode(
        "auto", config=True,
        help="Run each job's kernel (user code) as an unprivileged uid of its own: 'auto' (when the worker runs "
        "as root), 'on' (required) or 'off'. Env: AGIFLOW_KERNEL_SANDBOX.",
    )  # fmt: skip
    kernel_uids = Unicode(
        "", config=True, help="The uids kernels are leased from, e.g. '61000-61511' (the default). "
        "Env: AGIFLOW_KERNEL_UIDS."
    )  # fmt: skip
    kernel_start = Unicode(
        "fork", config=True,
        help="How job kernels start: 'fork' (from a process that imported IPython and ipykernel once: about a "
        "tenth of the CPU per kernel) or 'exec' (a fresh 'python -m ipykernel_launcher'). "
        "Env: AGIFLOW_KERNEL_START.",
    )  # fmt: skip

    def settings_from_config(self) -> Settings:
        base = Settings(
            database_url=self.database_url or None, default_project=self.default_project, bus=self.bus,
            kafka_bootstrap=self.kafka_bootstrap, workers=self.workers, worker_concurrency=self.worker_concurrency,
            worker_standby=self.worker_standby, span_writers=self.span_writers,
            max_running_jobs=self.max_running_jobs, max_running_jobs_per_project=self.max_running_jobs_per_project,
            max_body_bytes=self.max_body_bytes, max_import_bytes=self.max_import_bytes,
            max_json_depth=self.max_json_depth,
            allow_private_model_hosts=self.allow_private_model_hosts, keys_manage_members=self.keys_manage_members,
            scheduler=self.scheduler, alert_evaluator=self.alert_evaluator,
            alert_interval_seconds=self.alert_interval,
        )  # fmt: skip
        changes: dict[str, Any] = {}
        if self.data_dir:
            changes["data_dir"] = Path(self.data_dir)
        if self.owner:
            changes["owner"] = self.owner
        if self.secret_key_file:
            changes["secret_key_file"] = Path(self.secret_key_file)
        changes["kernel_sandbox"] = self.kernel_sandbox
        changes["kernel_start"] = self.kernel_start
        if self.bus_class is not None:
            changes["bus"] = f"{self.bus_class.__module__}.{self.bus_class.__qualname__}"
        if self.kernel_uids:
            changes["kernel_uids"] = self.kernel_uids
        return replace(base, **changes).with_env()

    def initialize_settings(self) -> None:
        serverapp = self.serverapp
        assert serverapp is not None, "settings are initialised once the extension is linked to its server"
        token = getattr(getattr(serverapp, "identity_provider", None), "token", "") or ""
        install_filter([self.log, serverapp.log], [token])
        self.state = PlatformState()
        self.settings.update(agiflow=self.state, agiflow_routes=ROUTES)

    def initialize_handlers(self) -> None:
        for route in ROUTES:
            self.handlers.append((f"/{API_PREFIX}{path_regex(route.template)}", route.handler))

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        try:
            settings = self.settings_from_config()  # a setting refused here is the startup error the API reports
            platform = await Platform.open(settings)
            self.state.platform = platform
            bus = make_bus(settings, platform.db)
            platform.status.follow_bus(bus.health)
            self.state.backend = JobBackend(platform.db, bus, platform.jobs)
            await self.state.backend.start()  # starts the bus, which the trace receiver publishes on too
            serverapp.web_app.settings[otel.INGEST_SETTING] = TraceIngest(
                platform.projects, platform.authz, bus, max_body_bytes=settings.max_body_bytes,
                accepts=PostgresSpanStore(platform.db).accepts,  # the store's day window, its defaults
            )  # fmt: skip
            worker_env = {
                "AGIFLOW_DATABASE_URL": platform.url, "AGIFLOW_BUS": settings.bus,
                "AGIFLOW_SECRET_KEY_FILE": str(settings.secret_key_path.absolute()),
                "AGIFLOW_ALLOW_PRIVATE_MODEL_HOSTS": str(settings.allow_private_model_hosts).lower(),
                "AGIFLOW_KERNEL_SANDBOX": settings.kernel_sandbox, "AGIFLOW_KERNEL_START": settings.kernel_start,
                **({"AGIFLOW_KERNEL_UIDS": settings.kernel_uids} if settings.kernel_uids else {}),
                **({"AGIFLOW_KAFKA_BOOTSTRAP": settings.kafka_bootstrap} if settings.kafka_bootstrap else {}),
            }  # fmt: skip
            span_writers = settings.span_writers if settings.workers > 0 else 0
            jobs_only = ["--roles", JOBS_ROLE] if span_writers else []
            self.supervisors = [
                WorkerSupervisor(
                    settings.workers, env=worker_env, args=["--concurrency", str(settings.worker_concurrency), *jobs_only],
                    on_exit=platform.jobs.worker_exited, standby=settings.worker_standby,
                ),
                # A span writer registers no worker and holds no job: nothing to hand back when one dies.
                WorkerSupervisor(span_writers, env=worker_env, args=["--roles", SPANS_ROLE], slot_prefix="s"),
            ]  # fmt: skip
            for supervisor in self.supervisors:
                supervisor.start()
            if settings.scheduler:
                self.firing_role = Scheduler(platform.db, platform.schedules)
                self.firing_role.start()
            self.notifier = Notifier(platform.db, self.state.backend.bus, platform.models.cipher,
                                     platform.models.host_policy)  # fmt: skip
            self.notifier.start()
            if settings.alert_evaluator:
                self.alert_role = AlertEvaluator(platform.db, platform.alerts, interval=settings.alert_interval_seconds)
                self.alert_role.start()
            if settings.upkeep:
                self.upkeep_role = Upkeep(
                    platform.db, settings.retention, every=settings.upkeep_interval_seconds,
                    trace_default_days=settings.trace_retention_default_days,
                )  # fmt: skip
                self.upkeep_role.start()
        except Exception as exc:
            self.log.exception("AGIFlow could not start")
            self.state.startup_error = str(exc)
        else:
            where = "configured" if settings.database_url else f"embedded under {settings.data_dir}"
            self.log.info("AGIFlow Lab ready (database: %s)", where)
            # What the server loaded to get here lives as long as it does; a full collection would walk it
            # all again with the event loop stopped (about 0.1 s per collection): frozen, it walks new objects.
            gc.freeze()
        self.state.ready.set()

    async def stop_extension(self) -> None:
        """Stop workers, then the backend, then the platform, each step bounded: Jupyter waits for this
        coroutine before it stops its loop, so a step that hangs (or raises a CancelledError that is not
        ours, as aiokafka's close does when the broker is gone) would keep the server alive forever."""
        if supervisors := getattr(self, "supervisors", None):
            await finish_within(max(s.stop_timeout for s in supervisors) + 5,
                                asyncio.gather(*(s.stop() for s in supervisors)), "the worker supervisors")  # fmt: skip
        if getattr(self, "firing_role", None) is not None:
            await finish_within(2, self.firing_role.stop(), "the scheduler")
        if getattr(self, "alert_role", None) is not None:
            await finish_within(2, self.alert_role.stop(), "the alert evaluator")
        if getattr(self, "upkeep_role", None) is not None:
            await finish_within(5, self.upkeep_role.stop(), "the upkeep")
        if getattr(self, "notifier", None) is not None:
            await finish_within(5, self.notifier.stop(), "the notifier")
        if self.state.backend is not None:
            await finish_within(10, self.state.backend.stop(), "the job backend")
        if self.state.platform is not None:
            await finish_within(5, self.state.platform.close(), "the platform")
