-- Documents and everything extracted from them.
--
-- One row in `documents` per distinct content (id = runner::document_uuid(content_sha256)),
-- however many names the bytes arrived under. Every other table hangs off it with
-- ON DELETE CASCADE, and its keys are the identifiers the pipeline already produces
-- (page numbers, chunk indexes and ids, m0/e0 ids), so a retried or duplicated write meets
-- the same key and cannot add a second copy.

CREATE TABLE documents (
    id             uuid        PRIMARY KEY,
    content_sha256 text        NOT NULL UNIQUE
                               CONSTRAINT documents_content_sha256_hex CHECK (content_sha256 ~ '^[0-9a-f]{64}$'),
    status         text        NOT NULL DEFAULT 'queued'
                               CONSTRAINT documents_status_known
                               CHECK (status IN ('queued', 'processing', 'completed', 'failed')),
    error          text,
    error_type     text,
    page_count     integer     CHECK (page_count >= 0),
    ocr_method     text,
    -- The highest fencing token any writer has presented: a writer with an older one lost
    -- its lock and is refused (see store::persist).
    fencing_token  bigint      NOT NULL DEFAULT 0 CHECK (fencing_token >= 0),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX documents_status_idx ON documents (status, updated_at);

-- The same content under several names is one document with several sources.
CREATE TABLE document_sources (
    document_id   uuid        NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    source        text        NOT NULL,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT document_sources_unique UNIQUE (document_id, source)
);

CREATE TABLE pages (
    document_id    uuid    NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    page_number    integer NOT NULL CHECK (page_number >= 1),
    text           text    NOT NULL,
    has_text_layer boolean NOT NULL,
    PRIMARY KEY (document_id, page_number)
);

CREATE TABLE chunks (
    document_id  uuid    NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    chunk_index  integer NOT NULL CHECK (chunk_index >= 0),
    chunk_id     text    NOT NULL,
    sha256       text    NOT NULL,
    start_offset integer NOT NULL,
    end_offset   integer NOT NULL,
    PRIMARY KEY (document_id, chunk_index),
    CONSTRAINT chunks_chunk_id_unique UNIQUE (document_id, chunk_id),
    CONSTRAINT chunks_offsets_ordered CHECK (0 <= start_offset AND start_offset <= end_offset)
);

CREATE TABLE canonical_entities (
    document_id uuid   NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    entity_id   text   NOT NULL,
    kind        text   NOT NULL CONSTRAINT canonical_entities_kind_known CHECK (kind IN
                    ('PERSON', 'ORG', 'LOCATION', 'DATE', 'MONEY', 'COURT', 'CASE_NUMBER',
                     'STATUTE', 'EMAIL', 'PHONE')),
    name        text   NOT NULL,
    aliases     text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (document_id, entity_id)
);

-- The mention -> chunk and mention -> canonical entity links are real columns with
-- composite foreign keys, so a mention can point only at a chunk and an entity of its own
-- document. Deleting a chunk or entity that a mention still points at is refused (NO
-- ACTION: the document_id foreign keys do the cascading when a whole document goes). The
-- two links are DEFERRABLE, checked immediately unless a transaction asks otherwise, so
-- that persisting a re-processed document can delete the chunks and entities that are
-- gone and re-point the mentions that remain, checked once at commit.
CREATE TABLE entity_mentions (
    document_id         uuid    NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    mention_id          text    NOT NULL,
    kind                text    NOT NULL CONSTRAINT entity_mentions_kind_known CHECK (kind IN
                            ('PERSON', 'ORG', 'LOCATION', 'DATE', 'MONEY', 'COURT', 'CASE_NUMBER',
                             'STATUTE', 'EMAIL', 'PHONE')),
    text                text    NOT NULL,
    normalized          text    NOT NULL,
    start_offset        integer NOT NULL,
    end_offset          integer NOT NULL,
    confidence          real    NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    chunk_id            text    NOT NULL,
    canonical_entity_id text    NOT NULL,
    PRIMARY KEY (document_id, mention_id),
    CONSTRAINT entity_mentions_offsets_ordered CHECK (0 <= start_offset AND start_offset <= end_offset),
    CONSTRAINT entity_mentions_chunk_fk FOREIGN KEY (document_id, chunk_id)
        REFERENCES chunks (document_id, chunk_id)
        DEFERRABLE INITIALLY IMMEDIATE,
    CONSTRAINT entity_mentions_canonical_fk FOREIGN KEY (document_id, canonical_entity_id)
        REFERENCES canonical_entities (document_id, entity_id)
        DEFERRABLE INITIALLY IMMEDIATE
);

CREATE INDEX entity_mentions_chunk_idx ON entity_mentions (document_id, chunk_id);
CREATE INDEX entity_mentions_canonical_idx ON entity_mentions (document_id, canonical_entity_id);

-- The document graph as edges: document -> chunk, chunk -> mention, mention -> canonical
-- entity, chunk -> next chunk. Refs are the ids above (the document's uuid as text).
CREATE TABLE relationships (
    document_id uuid NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    kind        text NOT NULL CONSTRAINT relationships_kind_known CHECK (kind IN
                    ('document_chunk', 'chunk_mention', 'mention_canonical', 'next_chunk')),
    from_ref    text NOT NULL,
    to_ref      text NOT NULL,
    CONSTRAINT relationships_unique UNIQUE (document_id, kind, from_ref, to_ref)
);

-- Structured data (document type, parties, dates, amounts...) per document or per chunk,
-- one row per model version so a model upgrade adds rows instead of overwriting.
CREATE TABLE structured_extractions (
    document_id   uuid        NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    scope         text        NOT NULL, -- 'document' or a chunk id
    model_version text        NOT NULL,
    data          jsonb       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT structured_extractions_unique UNIQUE (document_id, scope, model_version)
);
