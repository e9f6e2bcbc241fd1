-- The work queue, its per-attempt history, and Textract jobs.
--
-- The claim protocol is described in shared/src/store/queue.rs. The constraints below are
-- the part of it that does not depend on the code being right: one queue item per
-- document, one attempt row per (item, attempt number), and at most one running attempt
-- per item.

CREATE TABLE processing_queue (
    id            bigserial   PRIMARY KEY,
    document_id   uuid        NOT NULL REFERENCES documents (id) ON DELETE CASCADE
                              CONSTRAINT processing_queue_document_unique UNIQUE,
    source_path   text        NOT NULL,
    priority      integer     NOT NULL DEFAULT 0,
    status        text        NOT NULL DEFAULT 'queued'
                              CONSTRAINT processing_queue_status_known
                              CHECK (status IN ('queued', 'processing', 'completed', 'failed')),
    attempts      integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts  integer     NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    lease_until   timestamptz,
    worker_id     text,
    fencing_token bigint      NOT NULL DEFAULT 0 CHECK (fencing_token >= 0),
    last_error    text,
    enqueued_at   timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    completed_at  timestamptz,
    -- An item being processed always says by whom and until when.
    CONSTRAINT processing_queue_processing_has_lease
        CHECK (status <> 'processing' OR (lease_until IS NOT NULL AND worker_id IS NOT NULL))
);

-- Claiming: queued items by priority, then age.
CREATE INDEX processing_queue_claim_idx ON processing_queue (status, priority DESC, enqueued_at);
-- Reclaiming: processing items whose lease ran out.
CREATE INDEX processing_queue_lease_idx ON processing_queue (lease_until)
    WHERE status = 'processing';

CREATE TABLE queue_attempts (
    id            bigserial   PRIMARY KEY,
    item_id       bigint      NOT NULL REFERENCES processing_queue (id) ON DELETE CASCADE,
    attempt       integer     NOT NULL CHECK (attempt >= 1),
    worker_id     text        NOT NULL,
    fencing_token bigint      NOT NULL CHECK (fencing_token >= 0),
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    outcome       text        NOT NULL DEFAULT 'running'
                              CONSTRAINT queue_attempts_outcome_known
                              CHECK (outcome IN ('running', 'completed', 'failed', 'abandoned', 'stale')),
    CONSTRAINT queue_attempts_unique UNIQUE (item_id, attempt)
);

-- Two workers can never both be running the same item, whatever the code does.
CREATE UNIQUE INDEX queue_attempts_one_running ON queue_attempts (item_id)
    WHERE outcome = 'running';

-- Textract jobs (status names as Textract reports them), so a retried OCR stage finds the
-- job it started instead of starting and paying for another.
CREATE TABLE textract_jobs (
    job_id         text        PRIMARY KEY,
    document_id    uuid        NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    content_sha256 text        NOT NULL,
    status         text        NOT NULL DEFAULT 'IN_PROGRESS'
                               CONSTRAINT textract_jobs_status_known
                               CHECK (status IN ('IN_PROGRESS', 'SUCCEEDED', 'FAILED', 'PARTIAL_SUCCESS')),
    started_at     timestamptz NOT NULL DEFAULT now(),
    completed_at   timestamptz,
    page_count     integer     CHECK (page_count >= 0),
    error          text
);

CREATE INDEX textract_jobs_document_idx ON textract_jobs (document_id);
