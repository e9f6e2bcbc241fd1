//! Writes one processed document ([`DocumentOutput`]) into PostgreSQL, idempotently.
//!
//! The persist stage may run more than once for a document: a Step Functions retry, a
//! duplicated event, a worker whose lease expired while another took over. Each run
//! writes the same rows, because every row's key is an identifier the pipeline derives
//! from the content (page numbers, chunk ids, `m0`/`e0`), upserts leave an identical row
//! untouched, and rows the new output no longer has are deleted. Concurrent runs are
//! serialised on the `documents` row (`SELECT … FOR UPDATE`), and a run whose fencing
//! token is older than one the document has already seen is refused
//! ([`DbError::StaleFencingToken`]) before it writes anything. This is the backstop that
//! holds when the Redis idempotency keys and locks are unavailable.
//!
//! Rows are written with one statement per table (`UNNEST` of arrays), not one per row.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::postgres::PgPool;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::db::{DbError, check_document_id, token_from_db, token_to_db};
use super::queue::parse_status;
use crate::model::{DocumentOutput, DocumentStatus};

/// Rows of one document, per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RowCounts {
    pub pages: u64,
    pub chunks: u64,
    pub canonical_entities: u64,
    pub mentions: u64,
    pub relationships: u64,
}

/// What [`persist_document`] did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PersistReport {
    pub document_id: Uuid,
    /// The document's fencing token after the write: the highest one seen.
    pub fencing_token: u64,
    /// Rows the document now has.
    pub stored: RowCounts,
    /// Rows inserted or changed by this call; all zero when the same output was already
    /// stored (a retry).
    pub written: RowCounts,
    /// Rows of an earlier run that the output no longer has, deleted by this call.
    pub deleted: RowCounts,
}

/// A stored document, for `lexpipe status` and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    pub id: Uuid,
    pub content_sha256: String,
    pub status: DocumentStatus,
    pub error: Option<String>,
    pub error_type: Option<String>,
    pub page_count: Option<i32>,
    pub ocr_method: Option<String>,
    pub fencing_token: u64,
    /// Every name the content arrived under, sorted.
    pub sources: Vec<String>,
    pub rows: RowCounts,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Relationship kinds (`relationships.kind`).
pub mod relationship {
    /// Document uuid → chunk id, for every chunk.
    pub const DOCUMENT_CHUNK: &str = "document_chunk";
    /// Chunk id → mention id, for every mention.
    pub const CHUNK_MENTION: &str = "chunk_mention";
    /// Mention id → canonical entity id, for every mention.
    pub const MENTION_CANONICAL: &str = "mention_canonical";
    /// Chunk id → the id of the chunk after it.
    pub const NEXT_CHUNK: &str = "next_chunk";
    /// Canonical entity id → canonical entity id, labelled with the verb structured
    /// extraction found between them (`represents`).
    pub const ENTITY_RELATION: &str = "entity_relation";
}

/// The output as column arrays, checked before the database is touched.
struct Rows {
    document_id: Uuid,
    page_numbers: Vec<i32>,
    page_texts: Vec<String>,
    page_has_text: Vec<bool>,
    chunk_indexes: Vec<i32>,
    chunk_ids: Vec<String>,
    chunk_shas: Vec<String>,
    chunk_starts: Vec<i32>,
    chunk_ends: Vec<i32>,
    entity_ids: Vec<String>,
    entity_kinds: Vec<String>,
    entity_names: Vec<String>,
    /// Each entity's aliases as a JSON array: `UNNEST` cannot take an array of arrays of
    /// varying length, so the statement turns each back into `text[]`.
    entity_aliases: Vec<String>,
    mention_ids: Vec<String>,
    mention_kinds: Vec<String>,
    mention_texts: Vec<String>,
    mention_normalized: Vec<String>,
    mention_starts: Vec<i32>,
    mention_ends: Vec<i32>,
    mention_confidences: Vec<f32>,
    mention_chunks: Vec<String>,
    mention_entities: Vec<String>,
    rel_kinds: Vec<&'static str>,
    rel_from: Vec<String>,
    rel_to: Vec<String>,
    /// Empty for graph edges; the verb of an entity relation.
    rel_labels: Vec<String>,
}

impl Rows {
    fn counts(&self) -> RowCounts {
        RowCounts {
            pages: self.page_numbers.len() as u64,
            chunks: self.chunk_ids.len() as u64,
            canonical_entities: self.entity_ids.len() as u64,
            mentions: self.mention_ids.len() as u64,
            relationships: self.rel_kinds.len() as u64,
        }
    }
}

fn int(what: &str, value: usize) -> Result<i32, DbError> {
    i32::try_from(value).map_err(|_| DbError::InvalidData(format!("{what} {value} is too large")))
}

fn unique<T: Eq + std::hash::Hash + std::fmt::Debug>(
    what: &str,
    ids: impl IntoIterator<Item = T>,
) -> Result<(), DbError> {
    let mut seen = HashSet::new();
    for id in ids {
        if let Some(id) = seen.replace(id) {
            return Err(DbError::InvalidData(format!("duplicate {what} {id:?}")));
        }
    }
    Ok(())
}

/// Checks that the output is one consistent document (the database would refuse most of
/// these too, but with a less helpful message, or after a partial write) and lays it out
/// as columns.
fn rows_of(out: &DocumentOutput) -> Result<Rows, DbError> {
    let document_id: Uuid = out.document_uuid.parse().map_err(|_| {
        DbError::InvalidData(format!(
            "document_uuid {:?} is not a UUID",
            out.document_uuid
        ))
    })?;
    check_document_id(document_id, &out.content_sha256)?;

    let page_numbers = out
        .pages
        .iter()
        .map(|p| int("page number", p.number as usize))
        .collect::<Result<Vec<_>, _>>()?;
    unique("page number", &page_numbers)?;
    unique("chunk id", out.chunks.iter().map(|c| c.id.as_str()))?;
    unique("chunk index", out.chunks.iter().map(|c| c.index))?;
    unique(
        "canonical entity id",
        out.entities.iter().map(|e| e.id.as_str()),
    )?;
    unique("mention id", out.mentions.iter().map(|m| m.id.as_str()))?;

    let chunk_ids: HashSet<&str> = out.chunks.iter().map(|c| c.id.as_str()).collect();
    let mention_ids: HashSet<&str> = out.mentions.iter().map(|m| m.id.as_str()).collect();
    let mut entity_of: HashMap<&str, &str> = HashMap::new();
    for e in &out.entities {
        for m in &e.mention_ids {
            if !mention_ids.contains(m.as_str()) {
                return Err(DbError::InvalidData(format!(
                    "canonical entity {} lists mention {m}, which is not in the document",
                    e.id
                )));
            }
            if let Some(other) = entity_of.insert(m, &e.id) {
                return Err(DbError::InvalidData(format!(
                    "mention {m} belongs to two canonical entities, {other} and {}",
                    e.id
                )));
            }
        }
    }

    let mut rows = Rows {
        document_id,
        page_numbers,
        page_texts: out.pages.iter().map(|p| p.text.clone()).collect(),
        page_has_text: out.pages.iter().map(|p| p.has_text_layer).collect(),
        chunk_indexes: Vec::with_capacity(out.chunks.len()),
        chunk_ids: Vec::with_capacity(out.chunks.len()),
        chunk_shas: Vec::with_capacity(out.chunks.len()),
        chunk_starts: Vec::with_capacity(out.chunks.len()),
        chunk_ends: Vec::with_capacity(out.chunks.len()),
        entity_ids: Vec::with_capacity(out.entities.len()),
        entity_kinds: Vec::with_capacity(out.entities.len()),
        entity_names: Vec::with_capacity(out.entities.len()),
        entity_aliases: Vec::with_capacity(out.entities.len()),
        mention_ids: Vec::with_capacity(out.mentions.len()),
        mention_kinds: Vec::with_capacity(out.mentions.len()),
        mention_texts: Vec::with_capacity(out.mentions.len()),
        mention_normalized: Vec::with_capacity(out.mentions.len()),
        mention_starts: Vec::with_capacity(out.mentions.len()),
        mention_ends: Vec::with_capacity(out.mentions.len()),
        mention_confidences: Vec::with_capacity(out.mentions.len()),
        mention_chunks: Vec::with_capacity(out.mentions.len()),
        mention_entities: Vec::with_capacity(out.mentions.len()),
        rel_kinds: Vec::new(),
        rel_from: Vec::new(),
        rel_to: Vec::new(),
        rel_labels: Vec::new(),
    };
    let mut edges: Vec<(&'static str, &str, &str)> = Vec::new();

    let mut chunks: Vec<_> = out.chunks.iter().collect();
    chunks.sort_by_key(|c| c.index);
    let document_ref = document_id.to_string();
    for c in &chunks {
        edges.push((relationship::DOCUMENT_CHUNK, &document_ref, &c.id));
    }
    for pair in chunks.windows(2) {
        edges.push((relationship::NEXT_CHUNK, &pair[0].id, &pair[1].id));
    }
    for m in &out.mentions {
        if !chunk_ids.contains(m.chunk_id.as_str()) {
            return Err(DbError::InvalidData(format!(
                "mention {} is in chunk {}, which is not in the document",
                m.id, m.chunk_id
            )));
        }
        let Some(entity) = entity_of.get(m.id.as_str()) else {
            return Err(DbError::InvalidData(format!(
                "mention {} belongs to no canonical entity",
                m.id
            )));
        };
        edges.push((relationship::CHUNK_MENTION, &m.chunk_id, &m.id));
        edges.push((relationship::MENTION_CANONICAL, &m.id, entity));
    }
    for (kind, from, to) in edges {
        rows.rel_kinds.push(kind);
        rows.rel_from.push(from.to_owned());
        rows.rel_to.push(to.to_owned());
        rows.rel_labels.push(String::new());
    }
    // Relations structured extraction linked to two entities of this document, each once.
    let entity_ids: HashSet<&str> = out.entities.iter().map(|e| e.id.as_str()).collect();
    let mut seen_relations = HashSet::new();
    for r in out.structured.iter().flat_map(|s| &s.relationships) {
        if let (Some(from), Some(to)) = (&r.subject_entity, &r.object_entity)
            && entity_ids.contains(from.as_str())
            && entity_ids.contains(to.as_str())
            && seen_relations.insert((from, to, &r.predicate))
        {
            rows.rel_kinds.push(relationship::ENTITY_RELATION);
            rows.rel_from.push(from.clone());
            rows.rel_to.push(to.clone());
            rows.rel_labels.push(r.predicate.clone());
        }
    }

    for c in chunks {
        rows.chunk_indexes.push(int("chunk index", c.index)?);
        rows.chunk_ids.push(c.id.clone());
        rows.chunk_shas.push(c.sha256.clone());
        rows.chunk_starts.push(int("chunk offset", c.start)?);
        rows.chunk_ends.push(int("chunk offset", c.end)?);
    }
    for e in &out.entities {
        rows.entity_ids.push(e.id.clone());
        rows.entity_kinds.push(e.kind.as_str().to_owned());
        rows.entity_names.push(e.name.clone());
        rows.entity_aliases.push(
            serde_json::to_string(&e.aliases)
                .map_err(|err| DbError::InvalidData(format!("aliases of {}: {err}", e.id)))?,
        );
    }
    for m in &out.mentions {
        rows.mention_ids.push(m.id.clone());
        rows.mention_kinds.push(m.kind.as_str().to_owned());
        rows.mention_texts.push(m.text.clone());
        rows.mention_normalized.push(m.normalized.clone());
        rows.mention_starts.push(int("mention offset", m.start)?);
        rows.mention_ends.push(int("mention offset", m.end)?);
        rows.mention_confidences.push(m.confidence);
        rows.mention_chunks.push(m.chunk_id.clone());
        rows.mention_entities.push(
            entity_of
                .get(m.id.as_str())
                .map(|e| (*e).to_owned())
                .unwrap_or_default(),
        );
    }
    Ok(rows)
}

/// Stores a processed document: the document row (status `completed`), its source, pages,
/// chunks, canonical entities, mentions and relationships, in one transaction.
///
/// `fencing_token` is the token of the lock under which the document was processed (the
/// queue claim's). When given, a token older than the highest one the document has seen
/// means this writer lost its lock: nothing is written. Without one (a run outside the
/// queue), the write is serialised with the others but not fenced.
///
/// # Errors
/// [`DbError::StaleFencingToken`] as above; [`DbError::InvalidData`] for an inconsistent
/// output (checked before anything is written); driver errors otherwise.
pub async fn persist_document(
    pool: &PgPool,
    out: &DocumentOutput,
    fencing_token: Option<u64>,
) -> Result<PersistReport, DbError> {
    let rows = rows_of(out)?;
    let token = fencing_token.map(token_to_db).transpose()?;
    let id = rows.document_id;
    let mut tx = pool.begin().await?;

    let current = match lock_document(&mut tx, id).await? {
        Some(current) => current,
        None => {
            sqlx::query(
                "INSERT INTO documents (id, content_sha256, status) VALUES ($1, $2, 'running') \
                 ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(&out.content_sha256)
            .execute(&mut *tx)
            .await?;
            lock_document(&mut tx, id).await?.ok_or_else(|| {
                DbError::InvalidData(format!(
                    "content {} is stored under another document id",
                    out.content_sha256
                ))
            })?
        }
    };
    if let Some(token) = token
        && token < current
    {
        // Dropping the transaction rolls back the (possibly inserted) document row.
        return Err(DbError::StaleFencingToken {
            document_id: id,
            presented: token_from_db(token),
            current: token_from_db(current),
        });
    }
    let stored_token: i64 = sqlx::query_scalar(
        "UPDATE documents \
         SET status = 'completed', error = NULL, error_type = NULL, page_count = $2, \
             ocr_method = $3, fencing_token = GREATEST(fencing_token, COALESCE($4, 0)), \
             updated_at = now() \
         WHERE id = $1 RETURNING fencing_token",
    )
    .bind(id)
    .bind(int("page count", out.pages.len())?)
    .bind(&out.ocr_method)
    .bind(token)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO document_sources (document_id, source) VALUES ($1, $2) \
         ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(&out.source)
    .execute(&mut *tx)
    .await?;

    let deleted = delete_stale(&mut tx, &rows).await?;
    let written = upsert(&mut tx, &rows).await?;
    if let Some(structured) = &out.structured {
        let data = serde_json::to_value(structured)
            .map_err(|e| DbError::InvalidData(format!("structured data: {e}")))?;
        sqlx::query(
            "INSERT INTO structured_extractions (document_id, scope, model_version, data) \
             VALUES ($1, 'document', $2, $3) \
             ON CONFLICT (document_id, scope, model_version) DO UPDATE SET data = EXCLUDED.data",
        )
        .bind(id)
        .bind(&structured.model_version)
        .bind(data)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(PersistReport {
        document_id: id,
        fencing_token: token_from_db(stored_token),
        stored: rows.counts(),
        written,
        deleted,
    })
}

/// Locks the document row for the rest of the transaction and returns its fencing token;
/// `None` when there is no such document yet.
async fn lock_document(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
) -> Result<Option<i64>, DbError> {
    Ok(
        sqlx::query_scalar("SELECT fencing_token FROM documents WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?,
    )
}

/// Deletes the rows of an earlier run that `rows` no longer has (a re-processed document
/// with fewer chunks, a mention that is gone).
///
/// The mention → chunk and mention → entity links are checked at commit for the rest of
/// the transaction: a mention that survives may point at a chunk or entity deleted here
/// until [`upsert`] re-points it.
async fn delete_stale(
    tx: &mut Transaction<'_, Postgres>,
    rows: &Rows,
) -> Result<RowCounts, DbError> {
    sqlx::query("SET CONSTRAINTS entity_mentions_chunk_fk, entity_mentions_canonical_fk DEFERRED")
        .execute(&mut **tx)
        .await?;
    let id = rows.document_id;
    let relationships = sqlx::query(
        "DELETE FROM relationships r WHERE r.document_id = $1 AND NOT EXISTS ( \
             SELECT 1 FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[]) \
                 AS n(kind, from_ref, to_ref, label) \
             WHERE n.kind = r.kind AND n.from_ref = r.from_ref AND n.to_ref = r.to_ref \
                 AND n.label = r.label)",
    )
    .bind(id)
    .bind(&rows.rel_kinds)
    .bind(&rows.rel_from)
    .bind(&rows.rel_to)
    .bind(&rows.rel_labels)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let mentions =
        sqlx::query("DELETE FROM entity_mentions WHERE document_id = $1 AND mention_id <> ALL($2)")
            .bind(id)
            .bind(&rows.mention_ids)
            .execute(&mut **tx)
            .await?
            .rows_affected();
    let canonical_entities = sqlx::query(
        "DELETE FROM canonical_entities WHERE document_id = $1 AND entity_id <> ALL($2)",
    )
    .bind(id)
    .bind(&rows.entity_ids)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    // A chunk is kept only if both its index and its id are unchanged; otherwise it is
    // deleted and inserted afresh, so the upsert below (keyed on the index) can never run
    // into another row's chunk id.
    let chunks = sqlx::query(
        "DELETE FROM chunks c WHERE c.document_id = $1 AND NOT EXISTS ( \
             SELECT 1 FROM UNNEST($2::int4[], $3::text[]) AS n(chunk_index, chunk_id) \
             WHERE n.chunk_index = c.chunk_index AND n.chunk_id = c.chunk_id)",
    )
    .bind(id)
    .bind(&rows.chunk_indexes)
    .bind(&rows.chunk_ids)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let pages = sqlx::query("DELETE FROM pages WHERE document_id = $1 AND page_number <> ALL($2)")
        .bind(id)
        .bind(&rows.page_numbers)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(RowCounts {
        pages,
        chunks,
        canonical_entities,
        mentions,
        relationships,
    })
}

/// Inserts the document's rows, updating those that differ; identical rows are left
/// alone (the `WHERE … IS DISTINCT FROM`), so a retry rewrites nothing.
async fn upsert(tx: &mut Transaction<'_, Postgres>, rows: &Rows) -> Result<RowCounts, DbError> {
    let id = rows.document_id;
    let pages = sqlx::query(
        "INSERT INTO pages AS p (document_id, page_number, text, has_text_layer) \
         SELECT $1::uuid, n.* FROM UNNEST($2::int4[], $3::text[], $4::bool[]) AS n \
         ON CONFLICT (document_id, page_number) DO UPDATE \
         SET text = EXCLUDED.text, has_text_layer = EXCLUDED.has_text_layer \
         WHERE (p.text, p.has_text_layer) IS DISTINCT FROM (EXCLUDED.text, EXCLUDED.has_text_layer)",
    )
    .bind(id)
    .bind(&rows.page_numbers)
    .bind(&rows.page_texts)
    .bind(&rows.page_has_text)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let chunks = sqlx::query(
        "INSERT INTO chunks AS c (document_id, chunk_index, chunk_id, sha256, start_offset, end_offset) \
         SELECT $1::uuid, n.* \
         FROM UNNEST($2::int4[], $3::text[], $4::text[], $5::int4[], $6::int4[]) AS n \
         ON CONFLICT (document_id, chunk_index) DO UPDATE \
         SET sha256 = EXCLUDED.sha256, start_offset = EXCLUDED.start_offset, \
             end_offset = EXCLUDED.end_offset \
         WHERE (c.sha256, c.start_offset, c.end_offset) \
               IS DISTINCT FROM (EXCLUDED.sha256, EXCLUDED.start_offset, EXCLUDED.end_offset)",
    )
    .bind(id)
    .bind(&rows.chunk_indexes)
    .bind(&rows.chunk_ids)
    .bind(&rows.chunk_shas)
    .bind(&rows.chunk_starts)
    .bind(&rows.chunk_ends)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let canonical_entities = sqlx::query(
        "INSERT INTO canonical_entities AS e (document_id, entity_id, kind, name, aliases) \
         SELECT $1::uuid, n.entity_id, n.kind, n.name, \
                ARRAY(SELECT jsonb_array_elements_text(n.aliases::jsonb)) \
         FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[]) AS n(entity_id, kind, name, aliases) \
         ON CONFLICT (document_id, entity_id) DO UPDATE \
         SET kind = EXCLUDED.kind, name = EXCLUDED.name, aliases = EXCLUDED.aliases \
         WHERE (e.kind, e.name, e.aliases) IS DISTINCT FROM (EXCLUDED.kind, EXCLUDED.name, EXCLUDED.aliases)",
    )
    .bind(id)
    .bind(&rows.entity_ids)
    .bind(&rows.entity_kinds)
    .bind(&rows.entity_names)
    .bind(&rows.entity_aliases)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let mentions = sqlx::query(
        "INSERT INTO entity_mentions AS m (document_id, mention_id, kind, text, normalized, \
             start_offset, end_offset, confidence, chunk_id, canonical_entity_id) \
         SELECT $1::uuid, n.* FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], \
             $6::int4[], $7::int4[], $8::float4[], $9::text[], $10::text[]) AS n \
         ON CONFLICT (document_id, mention_id) DO UPDATE \
         SET kind = EXCLUDED.kind, text = EXCLUDED.text, normalized = EXCLUDED.normalized, \
             start_offset = EXCLUDED.start_offset, end_offset = EXCLUDED.end_offset, \
             confidence = EXCLUDED.confidence, chunk_id = EXCLUDED.chunk_id, \
             canonical_entity_id = EXCLUDED.canonical_entity_id \
         WHERE (m.kind, m.text, m.normalized, m.start_offset, m.end_offset, m.confidence, \
                m.chunk_id, m.canonical_entity_id) \
               IS DISTINCT FROM (EXCLUDED.kind, EXCLUDED.text, EXCLUDED.normalized, \
                EXCLUDED.start_offset, EXCLUDED.end_offset, EXCLUDED.confidence, \
                EXCLUDED.chunk_id, EXCLUDED.canonical_entity_id)",
    )
    .bind(id)
    .bind(&rows.mention_ids)
    .bind(&rows.mention_kinds)
    .bind(&rows.mention_texts)
    .bind(&rows.mention_normalized)
    .bind(&rows.mention_starts)
    .bind(&rows.mention_ends)
    .bind(&rows.mention_confidences)
    .bind(&rows.mention_chunks)
    .bind(&rows.mention_entities)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let relationships = sqlx::query(
        "INSERT INTO relationships (document_id, kind, from_ref, to_ref, label) \
         SELECT $1::uuid, n.* FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[]) AS n \
         ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(&rows.rel_kinds)
    .bind(&rows.rel_from)
    .bind(&rows.rel_to)
    .bind(&rows.rel_labels)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(RowCounts {
        pages,
        chunks,
        canonical_entities,
        mentions,
        relationships,
    })
}

#[derive(sqlx::FromRow)]
struct DocumentRow {
    id: Uuid,
    content_sha256: String,
    status: String,
    error: Option<String>,
    error_type: Option<String>,
    page_count: Option<i32>,
    ocr_method: Option<String>,
    fencing_token: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    sources: Vec<String>,
    pages: i64,
    chunks: i64,
    canonical_entities: i64,
    mentions: i64,
    relationships: i64,
}

/// A stored document with its sources and row counts; `None` when there is none.
///
/// # Errors
/// Driver errors.
pub async fn load_document(pool: &PgPool, id: Uuid) -> Result<Option<StoredDocument>, DbError> {
    let row: Option<DocumentRow> = sqlx::query_as(
        "SELECT d.id, d.content_sha256, d.status, d.error, d.error_type, d.page_count, \
                d.ocr_method, d.fencing_token, d.created_at, d.updated_at, \
                ARRAY(SELECT s.source FROM document_sources s WHERE s.document_id = d.id \
                      ORDER BY s.source) AS sources, \
                (SELECT count(*) FROM pages WHERE document_id = d.id) AS pages, \
                (SELECT count(*) FROM chunks WHERE document_id = d.id) AS chunks, \
                (SELECT count(*) FROM canonical_entities WHERE document_id = d.id) \
                    AS canonical_entities, \
                (SELECT count(*) FROM entity_mentions WHERE document_id = d.id) AS mentions, \
                (SELECT count(*) FROM relationships WHERE document_id = d.id) AS relationships \
         FROM documents d WHERE d.id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    row.map(|r| {
        Ok(StoredDocument {
            id: r.id,
            content_sha256: r.content_sha256,
            status: parse_status(&r.status)?,
            error: r.error,
            error_type: r.error_type,
            page_count: r.page_count,
            ocr_method: r.ocr_method,
            fencing_token: token_from_db(r.fencing_token),
            sources: r.sources,
            rows: RowCounts {
                pages: n(r.pages),
                chunks: n(r.chunks),
                canonical_entities: n(r.canonical_entities),
                mentions: n(r.mentions),
                relationships: n(r.relationships),
            },
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    })
    .transpose()
}
