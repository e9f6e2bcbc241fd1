//! The LLM endpoint and the extractor choice: `LEXPIPE_LLM_*`, `OPENAI_API_KEY` and
//! `LEXPIPE_EXTRACTOR` (see the table in [`crate::config`]). Used by [`crate::llm`].

use std::time::Duration;

use url::Url;

use super::{ConfigError, Secret, Vars, quoted};

const BASE_URL: &str = "LEXPIPE_LLM_BASE_URL";
const API_KEY: &str = "OPENAI_API_KEY";
const MODEL: &str = "LEXPIPE_LLM_MODEL";
const TEMPERATURE: &str = "LEXPIPE_LLM_TEMPERATURE";
const TOP_P: &str = "LEXPIPE_LLM_TOP_P";
const SEED: &str = "LEXPIPE_LLM_SEED";
const MAX_TOKENS: &str = "LEXPIPE_LLM_MAX_TOKENS";
const TIMEOUT_MS: &str = "LEXPIPE_LLM_TIMEOUT_MS";
const MAX_RETRIES: &str = "LEXPIPE_LLM_MAX_RETRIES";
const RETRY_BASE_MS: &str = "LEXPIPE_LLM_RETRY_BASE_MS";
const EXTRACTOR: &str = "LEXPIPE_EXTRACTOR";
const ADJUDICATE: &str = "LEXPIPE_LLM_ADJUDICATE";

/// The model when `LEXPIPE_LLM_MODEL` is unset.
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";

/// Which engine extracts entities and structured data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtractorChoice {
    /// The built-in rules: offline, free, deterministic.
    Rules,
    /// The LLM endpoint.
    Llm,
    /// Both, mentions merged (the rules' offsets win where both found a mention).
    Both,
}

impl ExtractorChoice {
    /// `rules`, `llm` or `both`, as `LEXPIPE_EXTRACTOR` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ExtractorChoice::Rules => "rules",
            ExtractorChoice::Llm => "llm",
            ExtractorChoice::Both => "both",
        }
    }

    /// True when the LLM is asked.
    pub fn uses_llm(self) -> bool {
        !matches!(self, ExtractorChoice::Rules)
    }

    /// True when the rules run.
    pub fn uses_rules(self) -> bool {
        !matches!(self, ExtractorChoice::Llm)
    }
}

/// How to reach the OpenAI-compatible endpoint and what to ask it.
///
/// Sampling settings are kept in integer units (thousandths) so that the configuration
/// stays `Eq`; [`LlmConfig::temperature`] and [`LlmConfig::top_p`] give the numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmConfig {
    /// `LEXPIPE_LLM_BASE_URL`, e.g. `http://127.0.0.1:8080/v1` (the path before
    /// `/chat/completions`); `None`: no LLM.
    pub base_url: Option<Url>,
    /// `OPENAI_API_KEY`, sent as a bearer token; never logged, never in a key or an error.
    pub api_key: Option<Secret>,
    /// `LEXPIPE_LLM_MODEL`.
    pub model: String,
    /// `LEXPIPE_LLM_TEMPERATURE` in thousandths (default 0).
    pub temperature_milli: u32,
    /// `LEXPIPE_LLM_TOP_P` in thousandths; `None`: not sent.
    pub top_p_milli: Option<u32>,
    /// `LEXPIPE_LLM_SEED`; `None`: not sent.
    pub seed: Option<u64>,
    /// `LEXPIPE_LLM_MAX_TOKENS`: completion tokens per request.
    pub max_tokens: u32,
    /// `LEXPIPE_LLM_TIMEOUT_MS`: one request, connection to last byte.
    pub timeout: Duration,
    /// `LEXPIPE_LLM_MAX_RETRIES`: retries after a 5xx, a timeout or a 429.
    pub max_retries: u32,
    /// `LEXPIPE_LLM_RETRY_BASE_MS`: the first backoff; doubled per retry, with full jitter.
    pub retry_base: Duration,
    /// `LEXPIPE_EXTRACTOR`.
    pub extractor: ExtractorChoice,
    /// `LEXPIPE_LLM_ADJUDICATE`: ask the LLM whether PERSON/ORG entities with close names
    /// that the rules kept apart are one (off by default: one more call per document that
    /// has such pairs).
    pub adjudicate: bool,
}

impl LlmConfig {
    /// Sampling temperature.
    pub fn temperature(&self) -> f64 {
        f64::from(self.temperature_milli) / 1000.0
    }

    /// Nucleus sampling, when set.
    pub fn top_p(&self) -> Option<f64> {
        self.top_p_milli.map(|t| f64::from(t) / 1000.0)
    }

    /// Reads the LLM variables through `get`.
    ///
    /// # Errors
    /// A malformed value, naming its variable; `LEXPIPE_EXTRACTOR=llm|both` without
    /// `LEXPIPE_LLM_BASE_URL`. Never quotes the API key or the base URL (which may embed
    /// credentials).
    pub fn from_vars(get: &dyn Fn(&str) -> Option<String>) -> Result<LlmConfig, ConfigError> {
        let vars = Vars::new(get);
        let base_url = match vars.trimmed(BASE_URL) {
            None => None,
            Some(v) => Some(parse_base_url(&v)?),
        };
        let model = vars
            .trimmed(MODEL)
            .unwrap_or_else(|| DEFAULT_MODEL.to_string());
        if model.len() > 200 || model.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ConfigError::new(
                MODEL,
                format!(
                    "expected a model name without spaces, at most 200 bytes, got {}",
                    quoted(&model)
                ),
            ));
        }
        let temperature_milli = milli(&vars, TEMPERATURE, 0.0, 2.0, true)?.unwrap_or(0);
        let top_p_milli = milli(&vars, TOP_P, 0.0, 1.0, false)?;
        let seed = match vars.trimmed(SEED) {
            None => None,
            Some(_) => Some(vars.whole::<u64>(SEED, 0, 0, "a whole number")?),
        };
        let extractor = match vars.trimmed(EXTRACTOR) {
            None if base_url.is_some() => ExtractorChoice::Llm,
            None => ExtractorChoice::Rules,
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "rules" => ExtractorChoice::Rules,
                "llm" => ExtractorChoice::Llm,
                "both" => ExtractorChoice::Both,
                _ => {
                    return Err(ConfigError::new(
                        EXTRACTOR,
                        format!("expected rules, llm or both, got {}", quoted(&v)),
                    ));
                }
            },
        };
        if extractor.uses_llm() && base_url.is_none() {
            return Err(ConfigError::new(
                EXTRACTOR,
                format!(
                    "is {} but {BASE_URL} is not set (the OpenAI-compatible endpoint, e.g. \
                     http://127.0.0.1:8080/v1)",
                    extractor.as_str()
                ),
            ));
        }
        let adjudicate = vars.flag(ADJUDICATE, false)?;
        if adjudicate && base_url.is_none() {
            return Err(ConfigError::new(
                ADJUDICATE,
                format!("is on but {BASE_URL} is not set"),
            ));
        }
        Ok(LlmConfig {
            adjudicate,
            base_url,
            api_key: vars.raw(API_KEY).map(Secret::new),
            model,
            temperature_milli,
            top_p_milli,
            seed,
            max_tokens: vars.whole(MAX_TOKENS, 2048, 1, "a whole number of tokens")?,
            timeout: vars.millis(TIMEOUT_MS, 60_000)?,
            max_retries: vars.whole_in(MAX_RETRIES, 3, 0..=10, "a whole number of retries")?,
            retry_base: vars.millis(RETRY_BASE_MS, 500)?,
            extractor,
        })
    }
}

fn parse_base_url(v: &str) -> Result<Url, ConfigError> {
    // The value is never quoted: a base URL may carry a token in its user part or query.
    let url = Url::parse(v).map_err(|e| {
        ConfigError::new(BASE_URL, format!("not a valid URL ({e}); value not shown"))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::new(
            BASE_URL,
            "expected an http:// or https:// URL with a host, e.g. http://127.0.0.1:8080/v1; \
             value not shown",
        ));
    }
    Ok(url)
}

/// A decimal in `[lo, hi]` (`lo` excluded unless `lo_inclusive`), in thousandths.
fn milli<F: Fn(&str) -> Option<String>>(
    vars: &Vars<F>,
    var: &str,
    lo: f64,
    hi: f64,
    lo_inclusive: bool,
) -> Result<Option<u32>, ConfigError> {
    let Some(v) = vars.trimmed(var) else {
        return Ok(None);
    };
    match v.parse::<f64>() {
        Ok(x) if x.is_finite() && x <= hi && (x > lo || (lo_inclusive && x == lo)) => {
            Ok(Some((x * 1000.0).round() as u32))
        }
        _ => Err(ConfigError::new(
            var,
            format!(
                "expected a number {} {lo} and at most {hi}, got {}",
                if lo_inclusive { "of at least" } else { "above" },
                quoted(&v)
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<LlmConfig, ConfigError> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        LlmConfig::from_vars(&|k| map.get(k).cloned())
    }

    #[test]
    fn without_a_base_url_the_rules_extract_and_nothing_calls_an_llm() {
        let c = load(&[]).unwrap();
        assert_eq!(c.extractor, ExtractorChoice::Rules);
        assert_eq!(c.model, DEFAULT_MODEL);
        assert_eq!(c.temperature(), 0.0);
        assert!(c.base_url.is_none() && c.api_key.is_none());
    }

    #[test]
    fn a_base_url_makes_the_llm_the_default_extractor() {
        let c = load(&[(BASE_URL, "http://127.0.0.1:8080/v1")]).unwrap();
        assert_eq!(c.extractor, ExtractorChoice::Llm);
        let c = load(&[(BASE_URL, "http://h/v1"), (EXTRACTOR, "Both")]).unwrap();
        assert_eq!(c.extractor, ExtractorChoice::Both);
    }

    #[test]
    fn asking_for_the_llm_without_a_base_url_is_an_error_naming_lexpipe_extractor() {
        let e = load(&[(EXTRACTOR, "llm")]).unwrap_err();
        assert_eq!(e.var, EXTRACTOR);
        assert!(e.problem.contains(BASE_URL), "{e}");
        assert_eq!(load(&[(EXTRACTOR, "regex")]).unwrap_err().var, EXTRACTOR);
        assert_eq!(load(&[(ADJUDICATE, "on")]).unwrap_err().var, ADJUDICATE);
        assert!(
            load(&[(BASE_URL, "http://h/v1"), (ADJUDICATE, "on")])
                .unwrap()
                .adjudicate
        );
    }

    #[test]
    fn sampling_settings_are_read_and_bounded() {
        let c = load(&[
            (TEMPERATURE, "0.7"),
            (TOP_P, "0.9"),
            (SEED, "42"),
            (MAX_TOKENS, "512"),
        ])
        .unwrap();
        assert_eq!(c.temperature(), 0.7);
        assert_eq!(c.top_p(), Some(0.9));
        assert_eq!((c.seed, c.max_tokens), (Some(42), 512));
        for (var, bad) in [
            (TEMPERATURE, "-0.1"),
            (TEMPERATURE, "2.5"),
            (TOP_P, "0"),
            (MAX_TOKENS, "0"),
            (MODEL, "gpt 4"),
        ] {
            assert_eq!(load(&[(var, bad)]).unwrap_err().var, var, "{var}={bad}");
        }
    }

    #[test]
    fn a_bad_base_url_or_any_api_key_never_appears_in_an_error_or_debug_output() {
        let key = "sk-test-SECRET-123";
        let e = load(&[(BASE_URL, "ftp://user:sk-url-SECRET@host/v1")]).unwrap_err();
        assert_eq!(e.var, BASE_URL);
        assert!(!e.to_string().contains("SECRET"), "{e}");
        let c = load(&[(BASE_URL, "http://h/v1"), (API_KEY, key)]).unwrap();
        assert_eq!(c.api_key.as_ref().map(Secret::expose), Some(key));
        assert!(!format!("{c:?}").contains(key));
    }
}
