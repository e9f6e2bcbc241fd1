//! `lexpipe status`: where one document stands, stage by stage, or every document by
//! status. Reads the document state that runs keep in Redis (`lexpipe::redis::state`).
//!
//! Exit status: 0 when shown, 1 when the document is unknown (never processed with state
//! tracking, or its state expired), 2 when Redis is unreachable or switched off.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lexpipe::app::{App, AppOptions};
use lexpipe::config::Config;
use lexpipe::model::DocumentStatus;
use lexpipe::redis::RedisStatus;
use lexpipe::redis::state::{DocumentState, DocumentStates, StageStatus, StateError, Uuid};

/// Documents listed per status by `--all` (the counts cover every one).
const LIST_PER_STATUS: usize = 20;
/// Redraw interval of `--watch`.
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// How dates are shown (UTC, to the second).
const DATE: &str = "%Y-%m-%d %H:%M:%S UTC";
/// Width of the progress bar.
const BAR: usize = 20;
/// The order `--all` shows groups in: work in flight first.
const GROUPS: [DocumentStatus; 4] = [
    DocumentStatus::Running,
    DocumentStatus::Queued,
    DocumentStatus::Failed,
    DocumentStatus::Completed,
];

const UNKNOWN: u8 = 1;
const UNREACHABLE: u8 = 2;

/// `lexpipe status [TARGET] [--all] [--json] [--watch]`.
///
/// `target` is a document UUID or the path of a file (hashed to find its UUID). `--json`
/// prints the typed state (with `--watch`, one compact line per change); `--watch`
/// redraws every second until the document is completed or failed (with `--all`, until
/// interrupted).
///
/// # Errors
/// Neither or both of a target and `--all`; a file that cannot be read; a malformed
/// `LEXPIPE_STATE_TTL_SECS`; unreadable state in Redis. (Unknown document and unreachable
/// Redis are exit statuses 1 and 2, not errors.)
pub async fn run(
    config: Config,
    target: Option<String>,
    all: bool,
    json: bool,
    watch: bool,
) -> anyhow::Result<ExitCode> {
    let doc = match (target, all) {
        (Some(_), true) => anyhow::bail!("give a document or --all, not both"),
        (None, false) => anyhow::bail!("give a document (its UUID or its file) or --all"),
        (Some(t), false) => Some(resolve_target(&t).await?),
        (None, true) => None,
    };
    let store = match connect(&config).await {
        Ok(store) => store,
        Err(message) => {
            eprintln!("lexpipe: {message}");
            return Ok(ExitCode::from(UNREACHABLE));
        }
    };
    let mut screen = Screen::new(json, watch);
    let result = match doc {
        Some(doc) => show_document(store.as_ref(), doc, &mut screen).await,
        None => show_all(store.as_ref(), &config, &mut screen).await,
    };
    match result {
        Ok(code) => Ok(code),
        Err(StateError::Unavailable(e)) => {
            eprintln!("lexpipe: Redis is unreachable: {e}");
            Ok(ExitCode::from(UNREACHABLE))
        }
        Err(e) => Err(e.into()),
    }
}

/// A UUID as given, else the UUID of the file's content (as `lexpipe process` derives it).
async fn resolve_target(target: &str) -> anyhow::Result<Uuid> {
    if let Ok(uuid) = Uuid::parse_str(target.trim()) {
        return Ok(uuid);
    }
    let path = Path::new(target);
    match tokio::fs::read(path).await {
        Ok(bytes) => Ok(lexpipe::model::document_uuid(&lexpipe::text::sha256_hex(
            &bytes,
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            anyhow::bail!(
                "{}: not a document UUID, and no such file",
                printable(target)
            )
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The document states of the app this configuration builds; the message says why
/// there are none.
async fn connect(config: &Config) -> Result<Arc<dyn DocumentStates>, String> {
    if !config.redis.features.state {
        return Err(
            "document state lives in Redis, which is switched off for it \
                    (LEXPIPE_REDIS_ENABLED or LEXPIPE_REDIS_STATE is false)"
                .into(),
        );
    }
    let app = App::build(
        config.clone(),
        AppOptions {
            skip_database: true,
            ..AppOptions::default()
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    match (&app.states, app.redis_status) {
        (Some(states), RedisStatus::Connected) => Ok(states.clone()),
        _ => Err(format!(
            "Redis is unreachable ({}), so document state cannot be read",
            config.describe()
        )),
    }
}

async fn show_document(
    store: &dyn DocumentStates,
    doc: Uuid,
    screen: &mut Screen,
) -> Result<ExitCode, StateError> {
    let Some(mut state) = store.get(doc).await? else {
        eprintln!(
            "lexpipe: no state for document {doc} (not processed with state tracking on, or \
             expired)"
        );
        return Ok(ExitCode::from(UNKNOWN));
    };
    loop {
        screen.draw(&state, || render_document(&state, now_ms()));
        if !screen.watch || state.status.is_terminal() {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(WATCH_EVERY).await;
        match store.get(doc).await? {
            Some(s) => state = s,
            None => {
                eprintln!("lexpipe: the state of document {doc} expired");
                return Ok(ExitCode::from(UNKNOWN));
            }
        }
    }
}

/// What `--all` shows: counts, and the most recent documents of each status.
#[derive(serde::Serialize)]
struct Overview {
    prefix: String,
    counts: lexpipe::redis::state::StatusCounts,
    documents: std::collections::BTreeMap<DocumentStatus, Vec<DocumentState>>,
}

async fn show_all(
    store: &dyn DocumentStates,
    config: &Config,
    screen: &mut Screen,
) -> Result<ExitCode, StateError> {
    loop {
        let counts = store.counts().await?;
        let mut documents = std::collections::BTreeMap::new();
        for status in GROUPS {
            documents.insert(status, store.list(Some(status), LIST_PER_STATUS).await?);
        }
        let overview = Overview {
            prefix: config.key_prefix(),
            counts,
            documents,
        };
        screen.draw(&overview, || render_overview(&overview, now_ms()));
        if !screen.watch {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(WATCH_EVERY).await;
    }
}

/// Where output goes: JSON or text; with `--watch`, redrawn in place on a terminal, or
/// printed again only when it changed otherwise.
struct Screen {
    json: bool,
    watch: bool,
    tty: bool,
    /// Lines drawn last time (to move back over them).
    drawn: usize,
    /// JSON of what was shown last, to print a pipe only what changed.
    last: Option<String>,
}

impl Screen {
    fn new(json: bool, watch: bool) -> Screen {
        Screen {
            json,
            watch,
            tty: std::io::stdout().is_terminal(),
            drawn: 0,
            last: None,
        }
    }

    fn draw<T: serde::Serialize>(&mut self, value: &T, text: impl FnOnce() -> String) {
        let fingerprint = serde_json::to_string(value).unwrap_or_default();
        let changed = self.last.as_deref() != Some(fingerprint.as_str());
        if self.json {
            if !changed {
                return;
            }
            // One compact line per change while watching, readable otherwise.
            if self.watch {
                println!("{fingerprint}");
            } else {
                println!(
                    "{}",
                    serde_json::to_string_pretty(value).unwrap_or_default()
                );
            }
        } else if self.watch && self.tty {
            // Redraw in place (elapsed times move even when nothing else does).
            let text = text();
            if self.drawn > 0 {
                print!("\x1b[{}F\x1b[J", self.drawn);
            }
            print!("{text}");
            self.drawn = text.lines().count();
        } else if changed {
            if self.last.is_some() {
                println!();
            }
            print!("{}", text());
        }
        let _ = std::io::stdout().flush();
        self.last = Some(fingerprint);
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn render_document(s: &DocumentState, now: u64) -> String {
    let mut o = String::new();
    let line = |o: &mut String, l: String| {
        o.push_str(l.trim_end());
        o.push('\n');
    };
    line(&mut o, format!("document  {}", s.document_uuid));
    line(&mut o, format!("source    {}", printable(&s.source)));
    line(&mut o, format!("sha256    {}", s.content_sha256));
    let at = match (&s.current_stage, s.status) {
        (Some(stage), DocumentStatus::Failed) => format!("  failed in {stage}"),
        (Some(stage), DocumentStatus::Running) => format!("  at {stage}"),
        (Some(stage), DocumentStatus::Queued) => format!("  next: {stage}"),
        _ => String::new(),
    };
    line(
        &mut o,
        format!(
            "status    {:<9} {:>3}%  [{}]{at}",
            s.status,
            s.progress,
            bar(s.progress)
        ),
    );
    line(
        &mut o,
        format!(
            "updated   {} ({} ago), created {}",
            date(s.updated_at().map(|t| t.format(DATE).to_string())),
            human_ms(now.saturating_sub(s.updated_ms)),
            date(s.created_at().map(|t| t.format(DATE).to_string()))
        ),
    );
    line(&mut o, String::new());
    line(
        &mut o,
        format!(
            "{:<20} {:<10} {:>8} {:>10} {:>8}  {}",
            "stage", "status", "attempts", "duration", "count", "error"
        ),
    );
    for st in &s.stages {
        let duration = match (st.status, st.duration_ms(), st.started_ms) {
            (_, Some(ms), _) => human_ms(ms),
            // Still running: time so far.
            (StageStatus::Running, None, Some(start)) => {
                format!("{}…", human_ms(now.saturating_sub(start)))
            }
            _ => String::new(),
        };
        let count = st.count.map(|c| c.to_string()).unwrap_or_default();
        let error = st.error_type.as_deref().map(printable).unwrap_or_default();
        line(
            &mut o,
            format!(
                "{:<20} {:<10} {:>8} {:>10} {:>8}  {}",
                st.name,
                st.status.as_str(),
                st.attempts,
                duration,
                count,
                error
            ),
        );
    }
    for st in s.stages.iter().filter(|st| st.error.is_some()) {
        line(&mut o, String::new());
        line(
            &mut o,
            format!(
                "{} failed ({}): {}",
                st.name,
                printable(st.error_type.as_deref().unwrap_or("?")),
                printable(st.error.as_deref().unwrap_or_default())
            ),
        );
    }
    o
}

fn render_overview(v: &Overview, now: u64) -> String {
    let mut o = String::new();
    o.push_str(&format!(
        "documents under {} ({} in all)\n",
        v.prefix,
        v.counts.total()
    ));
    for status in GROUPS {
        o.push_str(&format!("  {:<10} {:>6}\n", status, v.counts.get(status)));
    }
    for status in GROUPS {
        let docs = v.documents.get(&status).map(Vec::as_slice).unwrap_or(&[]);
        if docs.is_empty() {
            continue;
        }
        let total = v.counts.get(status);
        o.push('\n');
        if (docs.len() as u64) < total {
            o.push_str(&format!(
                "{status} ({total}, the {} most recent shown)\n",
                docs.len()
            ));
        } else {
            o.push_str(&format!("{status} ({total})\n"));
        }
        for d in docs {
            let detail = match (d.status, &d.current_stage) {
                (DocumentStatus::Failed, Some(stage)) => {
                    let kind = d
                        .stage(stage)
                        .and_then(|st| st.error_type.as_deref())
                        .unwrap_or("?");
                    format!("{stage}: {}", printable(kind))
                }
                (DocumentStatus::Queued, Some(stage)) => format!("next: {stage}"),
                (_, Some(stage)) => format!("at {stage}"),
                (_, None) => String::new(),
            };
            o.push_str(&format!(
                "  {}  {:>3}%  {:<28} {:<32} {} ago\n",
                d.document_uuid,
                d.progress,
                clip_end(&detail, 28),
                clip_end(&printable(&d.source), 32),
                human_ms(now.saturating_sub(d.updated_ms))
            ));
        }
    }
    if v.counts.total() == 0 {
        o.push_str("\n(no documents: none processed with state tracking on, or all expired)\n");
    }
    o
}

fn bar(progress: u8) -> String {
    let filled = (progress.min(100) as usize * BAR) / 100;
    format!("{}{}", "#".repeat(filled), "-".repeat(BAR - filled))
}

fn date(d: Option<String>) -> String {
    d.unwrap_or_else(|| "?".into())
}

/// `850 ms`, `4.2 s`, `3 m 05 s`, `2 h 07 m`, `3 d 04 h`.
fn human_ms(ms: u64) -> String {
    let s = ms / 1000;
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} m {:02} s", s / 60, s % 60),
        3_600_000..86_400_000 => format!("{} h {:02} m", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {:02} h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// File names, S3 keys and error messages come from outside: control characters (escape
/// sequences, newlines) are shown escaped so they cannot drive the terminal or break the
/// layout.
fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// At most `n` characters, keeping the end (where a file name is).
fn clip_end(s: &str, n: usize) -> String {
    let count = s.chars().count();
    if count <= n {
        s.to_string()
    } else {
        let tail: String = s.chars().skip(count - (n - 1)).collect();
        format!("…{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lexpipe::redis::state::StageState;
    use lexpipe::redis::state::{StateConfig, StateStore};

    fn stage(name: &str, status: StageStatus) -> StageState {
        StageState {
            name: name.into(),
            status,
            started_ms: None,
            finished_ms: None,
            count: None,
            error: None,
            error_type: None,
            attempts: 0,
        }
    }

    fn failed_document() -> DocumentState {
        let mut ocr = stage("ocr", StageStatus::Completed);
        (ocr.started_ms, ocr.finished_ms, ocr.count, ocr.attempts) =
            (Some(1_000), Some(2_200), Some(12), 1);
        let mut chunk = stage("chunk", StageStatus::Failed);
        (chunk.started_ms, chunk.finished_ms, chunk.attempts) = (Some(3_000), Some(3_040), 2);
        chunk.error_type = Some("ReadError".into());
        chunk.error = Some("cannot read\n\x1b[31mpage 2".into());
        DocumentState {
            document_uuid: Uuid::from_u128(42),
            status: DocumentStatus::Failed,
            progress: 50,
            current_stage: Some("chunk".into()),
            source: "evil\x1b]0;title\x07.pdf".into(),
            content_sha256: "ab".repeat(32),
            created_ms: 1_000,
            updated_ms: 3_040,
            stages: vec![ocr, chunk],
        }
    }

    #[test]
    fn a_failed_document_shows_each_stage_and_the_full_error() {
        let text = render_document(&failed_document(), 5_040);
        assert!(text.contains("failed     50%  [##########----------]  failed in chunk"));
        assert!(text.contains("ocr") && text.contains("1.2 s") && text.contains("12"));
        assert!(text.contains("chunk failed (ReadError): cannot read\\n\\u{1b}[31mpage 2"));
        assert!(text.contains("(2.0 s ago)"));
    }

    #[test]
    fn control_characters_from_names_and_errors_never_reach_the_terminal() {
        let text = render_document(&failed_document(), 5_040);
        assert!(!text.contains('\x1b') && !text.contains('\x07'));
    }

    #[test]
    fn a_running_stage_shows_its_time_so_far() {
        let mut d = failed_document();
        d.status = DocumentStatus::Running;
        d.stages[1] = StageState {
            started_ms: Some(3_000),
            attempts: 1,
            ..stage("chunk", StageStatus::Running)
        };
        let text = render_document(&d, 7_500);
        assert!(text.contains("4.5 s…"), "{text}");
    }

    #[test]
    fn the_overview_lists_counts_and_groups_with_what_is_not_shown() {
        let mut documents = std::collections::BTreeMap::new();
        documents.insert(DocumentStatus::Failed, vec![failed_document()]);
        let v = Overview {
            prefix: "lexpipe:dev:".into(),
            counts: lexpipe::redis::state::StatusCounts {
                failed: 3,
                completed: 1,
                ..Default::default()
            },
            documents,
        };
        let text = render_overview(&v, 10_000);
        assert!(text.starts_with("documents under lexpipe:dev: (4 in all)\n"));
        assert!(text.contains("failed (3, the 1 most recent shown)"));
        assert!(text.contains("chunk: ReadError"));
    }

    #[test]
    fn durations_read_like_a_person_would_say_them() {
        assert_eq!(human_ms(850), "850 ms");
        assert_eq!(human_ms(4_200), "4.2 s");
        assert_eq!(human_ms(185_000), "3 m 05 s");
        assert_eq!(human_ms(7_620_000), "2 h 07 m");
        assert_eq!(human_ms(273_600_000), "3 d 04 h");
    }

    #[tokio::test]
    async fn a_file_target_is_the_uuid_of_its_content_and_a_uuid_target_is_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.pdf");
        std::fs::write(&path, b"%PDF-1.4 hello").unwrap();
        let expected = lexpipe::model::document_uuid(&lexpipe::text::sha256_hex(b"%PDF-1.4 hello"));
        assert_eq!(
            resolve_target(path.to_str().unwrap()).await.unwrap(),
            expected
        );
        assert_eq!(
            resolve_target(&expected.to_string()).await.unwrap(),
            expected
        );
        let missing = resolve_target("/no/such/file.pdf").await.unwrap_err();
        assert!(missing.to_string().contains("no such file"));
    }

    // Exit statuses, against the real Redis the integration tests use.

    fn redis_url() -> String {
        std::env::var("LEXPIPE_TEST_REDIS_URL")
            .or_else(|_| std::env::var("REDIS_URL"))
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string())
    }

    fn config(env: &str, url: &str) -> Config {
        let vars: std::collections::HashMap<&str, String> = [
            ("LEXPIPE_ENV", env.to_string()),
            ("REDIS_URL", url.to_string()),
        ]
        .into();
        Config::from_vars(|k| vars.get(k).cloned()).expect("valid test configuration")
    }

    /// A store under a fresh prefix, and the configuration pointing at it.
    async fn fresh() -> (Config, StateStore) {
        let env = format!("t-status-{}", &Uuid::new_v4().simple().to_string()[..10]);
        let cfg = config(&env, &redis_url());
        let handle = lexpipe::redis::RedisHandle::new(&cfg).expect("a Redis handle");
        handle
            .connect()
            .await
            .unwrap_or_else(|e| panic!("these tests need Redis at {} ({e})", redis_url()));
        let store = StateStore::new(
            handle,
            lexpipe::redis::KeyBuilder::new(&cfg.env),
            StateConfig::default(),
        );
        (cfg, store)
    }

    async fn remove_all(store: &StateStore, docs: &[Uuid]) {
        let mut keys: Vec<String> = docs.iter().map(|d| store.state_key(*d)).collect();
        for d in docs {
            keys.extend(
                DocumentStatus::ALL
                    .iter()
                    .map(|s| store.index_key_of(*d, *s)),
            );
        }
        let handle =
            lexpipe::redis::RedisHandle::new(&config("t-status-cleanup", &redis_url())).unwrap();
        let mut c = handle.connection().await.unwrap();
        for key in keys {
            let _: i64 = redis::cmd("DEL")
                .arg(key)
                .query_async(&mut c)
                .await
                .unwrap();
        }
    }

    const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[tokio::test]
    async fn exit_status_is_0_for_a_known_document_and_1_for_an_unknown_one() {
        let (cfg, store) = fresh().await;
        let doc = Uuid::new_v4();
        store.init(doc, "a.pdf", SHA, &["ocr"]).await.unwrap();
        let known = run(cfg.clone(), Some(doc.to_string()), false, true, false).await;
        let unknown = run(
            cfg.clone(),
            Some(Uuid::new_v4().to_string()),
            false,
            false,
            false,
        )
        .await;
        let all = run(cfg, None, true, false, false).await;
        remove_all(&store, &[doc]).await;
        assert_eq!(known.unwrap(), ExitCode::SUCCESS);
        assert_eq!(unknown.unwrap(), ExitCode::from(UNKNOWN));
        assert_eq!(all.unwrap(), ExitCode::SUCCESS);
    }

    #[tokio::test]
    async fn exit_status_is_2_when_redis_is_unreachable() {
        let cfg = config("t-status-down", "redis://127.0.0.1:1");
        let code = run(cfg, Some(Uuid::new_v4().to_string()), false, false, false).await;
        assert_eq!(code.unwrap(), ExitCode::from(UNREACHABLE));
    }

    #[tokio::test]
    async fn watch_returns_once_the_document_completes() {
        let (cfg, store) = fresh().await;
        let doc = Uuid::new_v4();
        store.init(doc, "a.pdf", SHA, &["ocr"]).await.unwrap();
        store.start_stage(doc, "ocr").await.unwrap();
        let writer = store.clone();
        let finish = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            writer.complete_stage(doc, "ocr", 1).await.unwrap();
        });
        let code = run(cfg, Some(doc.to_string()), false, false, true).await;
        finish.await.unwrap();
        remove_all(&store, &[doc]).await;
        assert_eq!(code.unwrap(), ExitCode::SUCCESS);
    }

    #[tokio::test]
    async fn a_target_and_all_together_are_refused() {
        let cfg = config("t-status-usage", "redis://127.0.0.1:1");
        assert!(
            run(cfg.clone(), Some("x".into()), true, false, false)
                .await
                .is_err()
        );
        assert!(run(cfg, None, false, false, false).await.is_err());
    }
}
