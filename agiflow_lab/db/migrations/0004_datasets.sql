-- Datasets: per-project, versioned, immutable versions.
-- An item row is valid for a range of versions [first_version, last_version] (last_version NULL: still live),
-- so a new version writes only the items it adds, changes or removes, never copies of unchanged ones.
CREATE TABLE control.datasets (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id     bigint NOT NULL REFERENCES control.projects(id),
    name           text NOT NULL,
    description    text NOT NULL DEFAULT '',
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    archived_at    timestamptz,
    latest_version integer NOT NULL DEFAULT 0,   -- 0: created empty, no version written yet
    next_ordinal   bigint NOT NULL DEFAULT 1,    -- the ordinal the next new item gets
    UNIQUE (project_id, name)
);

CREATE TABLE control.dataset_versions (
    dataset_id bigint NOT NULL REFERENCES control.datasets(id),
    version    integer NOT NULL,
    item_count integer NOT NULL,
    message    text NOT NULL DEFAULT '',
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dataset_id, version)
);

CREATE TABLE control.dataset_items (
    dataset_id    bigint NOT NULL REFERENCES control.datasets(id),
    item_id       text NOT NULL,
    ordinal       bigint NOT NULL,               -- order of first appearance; kept when the item changes
    first_version integer NOT NULL,
    last_version  integer,
    input         jsonb NOT NULL,
    expected      jsonb,
    metadata      jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (dataset_id, item_id, first_version),
    CHECK (last_version IS NULL OR last_version >= first_version)
);
-- Reading version v in order with keyset paging (ordinal > after) walks this index; the version range is
-- checked from the included columns. At most one row per ordinal is valid in any one version.
CREATE INDEX dataset_items_by_ordinal ON control.dataset_items (dataset_id, ordinal)
    INCLUDE (first_version, last_version);
-- One live row per item: writers find the row to close through this index.
CREATE UNIQUE INDEX dataset_items_live ON control.dataset_items (dataset_id, item_id) WHERE last_version IS NULL;
