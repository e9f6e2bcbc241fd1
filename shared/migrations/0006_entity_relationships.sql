-- Relationships between canonical entities that structured extraction finds (`Jane Roe`
-- `represents` `Acme Corp.`): kind 'entity_relation', from_ref and to_ref the entity ids
-- (e0, e3), the verb phrase in the new `label` column. The document-graph edges keep an
-- empty label. Two different verbs between the same pair are two rows, so the unique key
-- gains the label.

ALTER TABLE relationships ADD COLUMN label text NOT NULL DEFAULT '';

ALTER TABLE relationships DROP CONSTRAINT relationships_kind_known;
ALTER TABLE relationships ADD CONSTRAINT relationships_kind_known CHECK (kind IN
    ('document_chunk', 'chunk_mention', 'mention_canonical', 'next_chunk', 'entity_relation'));

ALTER TABLE relationships DROP CONSTRAINT relationships_unique;
ALTER TABLE relationships ADD CONSTRAINT relationships_unique
    UNIQUE (document_id, kind, from_ref, to_ref, label);
