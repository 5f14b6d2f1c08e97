-- Alerts and notifications.
-- A rule's state (ok, pending, firing, resolved) changes only in a transaction holding its row; an incident is
-- opened on pending -> firing and closed on firing -> resolved, and the notification messages of either change
-- are written to the outbox in that same transaction: one incident, one "firing" and one "resolved" message.
CREATE TABLE control.alert_rules (
    id              uuid PRIMARY KEY,
    project_id      bigint NOT NULL REFERENCES control.projects(id),
    name            text NOT NULL,
    description     text NOT NULL DEFAULT '',
    metric          text NOT NULL,
    score_name      text,
    comparison      text NOT NULL CHECK (comparison IN ('>', '>=', '<', '<=')),
    threshold       double precision NOT NULL,
    window_seconds  integer NOT NULL CHECK (window_seconds > 0),
    for_seconds     integer NOT NULL DEFAULT 0 CHECK (for_seconds >= 0),
    enabled         boolean NOT NULL DEFAULT true,
    state           text NOT NULL DEFAULT 'ok' CHECK (state IN ('ok', 'pending', 'firing', 'resolved')),
    pending_since   timestamptz,
    incident_id     bigint,                  -- the open incident while firing
    last_value      double precision,
    evaluated_at    timestamptz,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name)
);
CREATE INDEX alert_rules_enabled ON control.alert_rules (id) WHERE enabled;

CREATE TABLE control.alert_incidents (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule_id       uuid NOT NULL REFERENCES control.alert_rules(id) ON DELETE CASCADE,
    project_id    bigint NOT NULL REFERENCES control.projects(id),
    started_at    timestamptz NOT NULL,
    resolved_at   timestamptz,
    start_value   double precision,
    end_value     double precision,
    peak_value    double precision,
    notified      boolean NOT NULL,          -- false: a silence held its "firing" back (and so its "resolved")
    UNIQUE (rule_id, started_at)
);
CREATE INDEX alert_incidents_by_project ON control.alert_incidents (project_id, id DESC);

CREATE TABLE control.alert_silences (
    id          uuid PRIMARY KEY,
    project_id  bigint NOT NULL REFERENCES control.projects(id),
    rule_id     uuid REFERENCES control.alert_rules(id) ON DELETE CASCADE,   -- NULL: every rule of the project
    ends_at     timestamptz NOT NULL,
    reason      text NOT NULL DEFAULT '',
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_silences_by_project ON control.alert_silences (project_id, ends_at);

CREATE TABLE control.notification_channels (
    id          uuid PRIMARY KEY,
    project_id  bigint NOT NULL REFERENCES control.projects(id),
    name        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('in_app', 'webhook', 'email')),
    config      jsonb NOT NULL DEFAULT '{}',  -- what is not secret (url, format, host, port, from, to, ...)
    secret      bytea,                        -- Fernet: a webhook's signing secret, an SMTP password
    enabled     boolean NOT NULL DEFAULT true,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name)
);

-- In-app notifications: one row per delivery message (its id makes a redelivery a no-op), read state per user.
CREATE TABLE control.notifications (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  bigint NOT NULL REFERENCES control.projects(id),
    message_id  text NOT NULL UNIQUE,
    event       text NOT NULL,
    severity    text NOT NULL,
    title       text NOT NULL,
    body        text NOT NULL DEFAULT '',
    data        jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notifications_by_project ON control.notifications (project_id, id DESC);

CREATE TABLE control.notification_reads (
    notification_id bigint NOT NULL REFERENCES control.notifications(id) ON DELETE CASCADE,
    principal       text NOT NULL,
    read_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (notification_id, principal)
);
