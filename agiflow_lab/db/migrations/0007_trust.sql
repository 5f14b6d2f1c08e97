-- Custom header values of model connections are secrets like the API key: a Fernet token of a JSON object
-- here, and only the header names in options. Rows written before this are sealed by the server at start.
ALTER TABLE control.model_connections ADD COLUMN headers_secret bytea;

-- Users the server has seen signed in. Anyone can be named a member, so a name alone proves nothing:
-- a project's last-owner rule counts only owners who are known users (or the server owner).
CREATE TABLE control.known_users (
    name          text PRIMARY KEY,
    first_seen_at timestamptz NOT NULL DEFAULT now()
);
