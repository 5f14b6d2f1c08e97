"""The assembled core: one object per process that owns the pool and the services.

The server extension, the CLI and the workers all build the same thing from ``Settings``, so a rule
lives in one service and every entry point reaches it the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from agiflow_lab.alerts.metrics import MetricReader
from agiflow_lab.alerts.service import AlertService
from agiflow_lab.audit.service import AuditService
from agiflow_lab.authz.admins import ServerAdmins
from agiflow_lab.authz.enforcer import Authorizer
from agiflow_lab.bus.admin import BusAdmin
from agiflow_lab.config import Settings
from agiflow_lab.datasets.service import DatasetService
from agiflow_lab.db import migrate
from agiflow_lab.db.database import Database
from agiflow_lab.db.embedded import resolve_database_url
from agiflow_lab.evals.service import EvalService
from agiflow_lab.jobs.service import JobService
from agiflow_lab.jobs.status import StatusService
from agiflow_lab.keys.service import KeyService
from agiflow_lab.notifications.service import NotificationService
from agiflow_lab.projects.service import ProjectService
from agiflow_lab.prompts.service import PromptService
from agiflow_lab.providers.service import ModelService, open_model_service
from agiflow_lab.schedules.service import ScheduleService
from agiflow_lab.traces.annotations import AnnotationStore
from agiflow_lab.traces.live import SpanActivity
from agiflow_lab.traces.scores import ScoreService
from agiflow_lab.traces.service import TraceService
from agiflow_lab.traces.store import PostgresSpanStore
from agiflow_lab.traces.to_dataset import SpanItems

log = logging.getLogger(__name__)


@dataclass
class Platform:
    settings: Settings
    db: Database
    authz: Authorizer
    projects: ProjectService
    prompts: PromptService
    models: ModelService
    datasets: DatasetService
    keys: KeyService
    audit: AuditService
    jobs: JobService
    evals: EvalService
    schedules: ScheduleService
    alerts: AlertService
    notifications: NotificationService
    bus_admin: BusAdmin
    status: StatusService
    traces: TraceService
    scores: ScoreService
    span_items: SpanItems
    admins: ServerAdmins
    url: str

    @classmethod
    def build(cls, settings: Settings, db: Database, url: str) -> Platform:
        """The services wired on an open pool, and nothing started: the one composition root for the
        server (``open``), the CLI and the workers, which start only what they use."""
        authz = Authorizer(db)
        admins = ServerAdmins.of([settings.owner])
        projects = ProjectService(db, authz, admins=admins, keys_manage_members=settings.keys_manage_members)
        prompts = PromptService(db, projects)
        models = open_model_service(db, projects, settings)
        datasets = DatasetService(db, projects, max_json_depth=settings.max_json_depth)
        jobs = JobService(
            db, projects, max_running=settings.max_running_jobs,
            max_running_per_project=settings.max_running_jobs_per_project, stale_after=settings.worker_stale_seconds,
        )  # fmt: skip
        annotations, spans = AnnotationStore(db), PostgresSpanStore(db)
        evals = EvalService(db, projects, prompts, datasets, models, jobs)
        return cls(
            settings=settings,
            db=db,
            authz=authz,
            projects=projects,
            prompts=prompts,
            models=models,
            datasets=datasets,
            keys=KeyService(db, authz, projects, settings.key_cache_seconds),
            audit=AuditService(db, projects),
            jobs=jobs,
            evals=evals,
            schedules=ScheduleService(db, projects, jobs, evals),
            alerts=AlertService(db, projects, MetricReader(db, spans, annotations, settings.worker_stale_seconds)),
            notifications=NotificationService(db, authz, projects, models.cipher, models.host_policy),
            bus_admin=BusAdmin(db, admins, settings.bus),
            status=StatusService(db, authz, projects, admins, stale_after=settings.worker_stale_seconds),
            traces=TraceService(projects, authz, spans, annotations, SpanActivity(db)),
            span_items=SpanItems(projects, authz, spans, datasets),
            scores=ScoreService(projects, authz, annotations),
            admins=admins,
            url=url,
        )

    @classmethod
    async def open(cls, settings: Settings) -> Platform:
        """For an API server: database (embedded if none is configured) migrated, policies and the prompt
        cache live, the default project there."""
        url = await resolve_database_url(settings.database_url, settings.data_dir)
        await migrate.upgrade(url)
        db = Database(url, min_size=settings.db_pool_min, max_size=settings.db_pool_max)
        await db.open()
        platform = cls.build(settings, db, url)
        await platform.authz.start()
        platform.prompts.cache.start()
        platform.traces.activity.start()  # live views in this server; the CLI and workers build it unstarted
        platform.notifications.activity.start()
        await platform.projects.ensure(settings.default_project, "Default project", settings.owner)
        await platform.models.seal_plaintext_headers()
        await platform.authz.reload()
        return platform

    async def close(self) -> None:
        await self.notifications.activity.stop()
        await self.traces.activity.stop()
        await self.prompts.cache.stop()
        await self.authz.stop()
        await self.db.close()
