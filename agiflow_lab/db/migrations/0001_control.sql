-- Control plane: projects, prompts, access control, audit.
CREATE SCHEMA IF NOT EXISTS control;
CREATE SCHEMA IF NOT EXISTS analytics;

CREATE TABLE control.projects (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug        text NOT NULL UNIQUE,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    archived_at timestamptz
);

CREATE TABLE control.prompts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  bigint NOT NULL REFERENCES control.projects(id),
    name        text NOT NULL,
    type        text NOT NULL CHECK (type IN ('text', 'chat')),
    description text NOT NULL DEFAULT '',
    tags        text[] NOT NULL DEFAULT '{}',
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    archived_at timestamptz,
    latest_version integer NOT NULL DEFAULT 0,
    UNIQUE (project_id, name)
);
CREATE INDEX prompts_project_updated ON control.prompts (project_id, name);

CREATE TABLE control.prompt_versions (
    prompt_id      bigint NOT NULL REFERENCES control.prompts(id),
    version        integer NOT NULL,
    template       jsonb NOT NULL,
    variables      text[] NOT NULL,
    config         jsonb NOT NULL DEFAULT '{}',
    commit_message text NOT NULL DEFAULT '',
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (prompt_id, version)
);

CREATE TABLE control.prompt_labels (
    prompt_id  bigint NOT NULL REFERENCES control.prompts(id),
    label      text NOT NULL,
    version    integer NOT NULL,
    updated_by text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (prompt_id, label),
    FOREIGN KEY (prompt_id, version) REFERENCES control.prompt_versions(prompt_id, version)
);

CREATE TABLE control.prompt_label_history (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    prompt_id    bigint NOT NULL REFERENCES control.prompts(id),
    label        text NOT NULL,
    from_version integer,
    to_version   integer,
    moved_by     text NOT NULL,
    moved_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX prompt_label_history_by_label ON control.prompt_label_history (prompt_id, label, id);

-- Casbin policy rows (ptype p: role permissions, g: user→role in a project domain).
CREATE TABLE control.casbin_rule (
    id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ptype text NOT NULL,
    v0    text NOT NULL DEFAULT '',
    v1    text NOT NULL DEFAULT '',
    v2    text NOT NULL DEFAULT '',
    v3    text NOT NULL DEFAULT '',
    v4    text NOT NULL DEFAULT '',
    v5    text NOT NULL DEFAULT '',
    UNIQUE (ptype, v0, v1, v2, v3, v4, v5)
);

CREATE TABLE control.api_keys (
    id           text PRIMARY KEY,
    project_id   bigint NOT NULL REFERENCES control.projects(id),
    name         text NOT NULL,
    role         text NOT NULL CHECK (role IN ('owner', 'editor', 'viewer')),
    secret_hash  text NOT NULL,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_keys_project ON control.api_keys (project_id);

CREATE TABLE control.audit_log (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id    bigint REFERENCES control.projects(id),
    actor         text NOT NULL,
    action        text NOT NULL,
    resource_type text NOT NULL,
    resource_id   text NOT NULL,
    before        jsonb,
    after         jsonb,
    at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_project ON control.audit_log (project_id, id DESC);
