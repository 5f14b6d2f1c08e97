-- How long each project keeps its traces (agiflow_lab/traces/retention.py); NULL: the deployment's default.
ALTER TABLE control.projects ADD COLUMN trace_retention_days integer
    CHECK (trace_retention_days BETWEEN 1 AND 3650);
