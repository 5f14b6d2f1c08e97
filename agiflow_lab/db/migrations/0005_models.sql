-- Model connections (provider endpoints and their encrypted API keys) and per-project price overrides.
-- The built-in "echo" connection is not stored: it exists in every project, so the name is reserved here.
CREATE TABLE control.model_connections (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id    bigint NOT NULL REFERENCES control.projects(id),
    name          text NOT NULL CHECK (lower(name) <> 'echo'),
    kind          text NOT NULL CHECK (kind IN ('openai', 'azure_openai', 'anthropic')),
    base_url      text,                          -- NULL: the vendor's default endpoint
    default_model text,
    description   text NOT NULL DEFAULT '',
    options       jsonb NOT NULL DEFAULT '{}',   -- api_version, headers: never secrets
    secret        bytea,                         -- Fernet token of the API key; NULL: no key
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name)
);

CREATE TABLE control.model_prices (
    project_id         bigint NOT NULL REFERENCES control.projects(id),
    model              text NOT NULL,            -- lower case, as looked up
    input_per_million  double precision NOT NULL CHECK (input_per_million >= 0),
    output_per_million double precision NOT NULL CHECK (output_per_million >= 0),
    updated_by         text NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, model)
);
