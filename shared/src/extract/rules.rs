//! Rule-based extractor for legal text. STUB: being written.

use crate::model::RawMention;

/// Rule-based entity extractor (regexes + gazetteers), deterministic and offline.
#[derive(Debug, Default)]
pub struct RuleExtractor {}

impl RuleExtractor {
    /// Name used in cache keys (`chunk:v{N}:{sha}:entities:{name}-{version}`).
    pub const NAME: &'static str = "rules";
    /// Bump whenever a rule changes what is found.
    pub const VERSION: u32 = 1;

    pub fn new() -> Self {
        RuleExtractor {}
    }

    /// Mentions in `text`, offsets in characters relative to `text`, sorted by start.
    pub fn extract(&self, text: &str) -> Vec<RawMention> {
        let _ = text;
        Vec::new()
    }
}
