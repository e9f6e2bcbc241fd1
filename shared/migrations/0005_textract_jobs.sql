-- Textract jobs as the OCR step records them (shared/src/ocr/textract.rs).
--
-- A job starts during the OCR step, long before the persist step writes the document row:
-- the foreign key to documents made recording it impossible, so it goes (the document id is
-- still the content's uuid, and a job row without its document is a job whose document has
-- not been persisted yet, or failed). The new columns say what was sent and how it was
-- labelled: the idempotency token (from the content hash and the page set) lets a retried
-- step find the job it started instead of paying for another.

ALTER TABLE textract_jobs DROP CONSTRAINT IF EXISTS textract_jobs_document_id_fkey;

ALTER TABLE textract_jobs
    ADD COLUMN client_request_token text,
    ADD COLUMN job_tag              text,
    ADD COLUMN s3_object            text,
    ADD COLUMN pages                text,
    ADD COLUMN pages_sent           integer CHECK (pages_sent >= 0);

CREATE INDEX textract_jobs_token_idx ON textract_jobs (client_request_token, started_at);
