-- A scheduled evaluation's pass-rate gate: when a run a schedule started ends with a pass rate below it, the
-- project's channels hear of it (built-in notification schedule.pass_rate_below_gate). Nullable: no gate.
ALTER TABLE control.schedules
    ADD COLUMN pass_rate_gate double precision CHECK (pass_rate_gate BETWEEN 0 AND 1);
