-- Batch inference: an evaluation run may write every item with its model output as a dataset once all
-- its items are done (a new version when the name exists). output_version is set when that version is
-- written, so a retried attempt answers it again instead of writing a second one.
ALTER TABLE control.eval_runs
    ADD COLUMN output_dataset text,
    ADD COLUMN output_version integer;
