-- One document status vocabulary: queued, running, completed, failed.
--
-- The Redis document state, the `--json` summary and model::DocumentStatus already say
-- `running` for a document being worked on; the two tables said `processing`. This
-- renames the word in the stored rows and in every constraint and index that names it,
-- so that one type (model::DocumentStatus) reads and writes all of them.
--
-- sqlx runs a migration in one transaction: the rows and the constraints change together.
-- Stop the workers of the previous version before applying it: they still write
-- `processing`, which the new constraints refuse (their claims would fail, not corrupt).

ALTER TABLE documents DROP CONSTRAINT documents_status_known;
ALTER TABLE processing_queue DROP CONSTRAINT processing_queue_status_known;
ALTER TABLE processing_queue DROP CONSTRAINT processing_queue_processing_has_lease;
DROP INDEX processing_queue_lease_idx;

UPDATE documents SET status = 'running' WHERE status = 'processing';
UPDATE processing_queue SET status = 'running' WHERE status = 'processing';

ALTER TABLE documents ADD CONSTRAINT documents_status_known
    CHECK (status IN ('queued', 'running', 'completed', 'failed'));
ALTER TABLE processing_queue ADD CONSTRAINT processing_queue_status_known
    CHECK (status IN ('queued', 'running', 'completed', 'failed'));
-- An item being worked on always says by whom and until when.
ALTER TABLE processing_queue ADD CONSTRAINT processing_queue_running_has_lease
    CHECK (status <> 'running' OR (lease_until IS NOT NULL AND worker_id IS NOT NULL));

-- Reclaiming: running items whose lease ran out.
CREATE INDEX processing_queue_lease_idx ON processing_queue (lease_until)
    WHERE status = 'running';
