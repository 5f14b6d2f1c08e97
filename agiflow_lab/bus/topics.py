"""Topic names, in one place so that a producer and its consumers cannot drift apart."""

JOBS = "jobs"  # a job to run; key: job id
JOB_EVENTS = "job-events"  # progress, logs and results of a job, in order; key: job id
SPANS = "spans"  # OpenTelemetry spans to store; key: trace id
NOTIFICATIONS = "notifications"  # one delivery of an alert or notice to one channel; key: "<project id>:<channel id>"
ALL_TOPICS: tuple[str, ...] = (JOBS, JOB_EVENTS, SPANS, NOTIFICATIONS)
