//! Shared rate limits on the paid APIs: `LEXPIPE_RL_*` (see the table in
//! [`crate::config`]). Enforced by `redis::ratelimit`.

use std::time::Duration;

use super::{ConfigError, Vars, quoted};

const START_PER_SEC: &str = "LEXPIPE_RL_TEXTRACT_START_PER_SEC";
const GET_PER_SEC: &str = "LEXPIPE_RL_TEXTRACT_GET_PER_SEC";
const LLM_REQUESTS_PER_MIN: &str = "LEXPIPE_RL_LLM_REQUESTS_PER_MIN";
const LLM_TOKENS_PER_MIN: &str = "LEXPIPE_RL_LLM_TOKENS_PER_MIN";
const LOCAL_SHARE: &str = "LEXPIPE_RL_LOCAL_SHARE";
const MAX_WAIT_MS: &str = "LEXPIPE_RL_MAX_WAIT_MS";

/// At most `max` units (calls, tokens) in any interval of length `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: u64,
    pub window: Duration,
}

impl Limit {
    pub const fn per_second(max: u64) -> Limit {
        Limit {
            max,
            window: Duration::from_secs(1),
        }
    }

    pub const fn per_minute(max: u64) -> Limit {
        Limit {
            max,
            window: Duration::from_secs(60),
        }
    }
}

/// The fraction of each limit one process allows itself while Redis is unreachable.
///
/// Kept in millionths rather than as an `f64` so that configurations stay `Eq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalShare(u32);

impl LocalShare {
    const ONE: u32 = 1_000_000;

    /// `None` unless `0 < share ≤ 1`.
    pub fn new(share: f64) -> Option<LocalShare> {
        if !(share > 0.0 && share <= 1.0) {
            return None;
        }
        let millionths = (share * f64::from(Self::ONE)).round() as u32;
        Some(LocalShare(millionths.clamp(1, Self::ONE)))
    }

    pub fn get(self) -> f64 {
        f64::from(self.0) / f64::from(Self::ONE)
    }

    /// The share of `max`, at least 1 so that a process can always make progress.
    pub fn of(self, max: u64) -> u64 {
        let part = u128::from(max) * u128::from(self.0) / u128::from(Self::ONE);
        (part as u64).max(1)
    }
}

/// Limits per API and how long callers wait; read once at start and handed to
/// `redis::ratelimit::RateLimiter::new`, which enforces them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// `LEXPIPE_RL_TEXTRACT_START_PER_SEC`, default 15 per second.
    pub textract_start: Limit,
    /// `LEXPIPE_RL_TEXTRACT_GET_PER_SEC`, default 25 per second.
    pub textract_get: Limit,
    /// `LEXPIPE_RL_LLM_REQUESTS_PER_MIN`, default 500 per minute.
    pub llm_requests: Limit,
    /// `LEXPIPE_RL_LLM_TOKENS_PER_MIN`, default 200 000 per minute.
    pub llm_tokens: Limit,
    /// `LEXPIPE_RL_LOCAL_SHARE`, default 0.25: the share of each limit a process allows
    /// itself when Redis is down.
    pub local_share: LocalShare,
    /// `LEXPIPE_RL_MAX_WAIT_MS`, default 30 000: how long
    /// `RateLimiter::acquire` waits for a grant.
    pub max_wait: Duration,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            textract_start: Limit::per_second(15),
            textract_get: Limit::per_second(25),
            llm_requests: Limit::per_minute(500),
            llm_tokens: Limit::per_minute(200_000),
            local_share: LocalShare(250_000),
            max_wait: Duration::from_secs(30),
        }
    }
}

impl RateLimitConfig {
    /// Reads the `LEXPIPE_RL_*` variables through `get`; unset or empty ones keep their
    /// default.
    ///
    /// # Errors
    /// A limit that is not a whole number ≥ 1, a share outside `0 < x ≤ 1`, or a wait that
    /// is not a whole number of milliseconds; the error names the variable.
    pub fn from_vars(get: &dyn Fn(&str) -> Option<String>) -> Result<RateLimitConfig, ConfigError> {
        let d = RateLimitConfig::default();
        let vars = Vars::new(get);
        let count = |var: &str, default: u64| vars.whole(var, default, 1, "a whole number");
        let local_share = match vars.trimmed(LOCAL_SHARE) {
            None => d.local_share,
            Some(v) => v
                .parse::<f64>()
                .ok()
                .and_then(LocalShare::new)
                .ok_or_else(|| {
                    ConfigError::new(
                        LOCAL_SHARE,
                        format!("expected a fraction 0 < x ≤ 1, got {}", quoted(&v)),
                    )
                })?,
        };
        let max_wait = Duration::from_millis(vars.whole(
            MAX_WAIT_MS,
            u64::try_from(d.max_wait.as_millis()).unwrap_or(u64::MAX),
            0,
            "a whole number of milliseconds",
        )?);
        Ok(RateLimitConfig {
            textract_start: Limit::per_second(count(START_PER_SEC, d.textract_start.max)?),
            textract_get: Limit::per_second(count(GET_PER_SEC, d.textract_get.max)?),
            llm_requests: Limit::per_minute(count(LLM_REQUESTS_PER_MIN, d.llm_requests.max)?),
            llm_tokens: Limit::per_minute(count(LLM_TOKENS_PER_MIN, d.llm_tokens.max)?),
            local_share,
            max_wait,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_match_the_provider_limits() {
        let cfg = RateLimitConfig::from_vars(&|_| None).unwrap();
        assert_eq!(cfg, RateLimitConfig::default());
        assert_eq!(cfg.textract_start, Limit::per_second(15));
        assert_eq!(cfg.textract_get, Limit::per_second(25));
        assert_eq!(cfg.llm_requests, Limit::per_minute(500));
        assert_eq!(cfg.llm_tokens, Limit::per_minute(200_000));
        assert_eq!(cfg.local_share.get(), 0.25);
        assert_eq!(cfg.max_wait, Duration::from_secs(30));
    }

    #[test]
    fn config_reads_every_variable() {
        let vars = [
            (START_PER_SEC, "5"),
            (GET_PER_SEC, " 7 "),
            (LLM_REQUESTS_PER_MIN, "60"),
            (LLM_TOKENS_PER_MIN, "1000"),
            (LOCAL_SHARE, "1"),
            (MAX_WAIT_MS, "0"),
        ];
        let get = |k: &str| {
            vars.iter()
                .find(|(v, _)| *v == k)
                .map(|(_, x)| x.to_string())
        };
        let cfg = RateLimitConfig::from_vars(&get).unwrap();
        assert_eq!(cfg.textract_start, Limit::per_second(5));
        assert_eq!(cfg.textract_get, Limit::per_second(7));
        assert_eq!(cfg.llm_requests, Limit::per_minute(60));
        assert_eq!(cfg.llm_tokens, Limit::per_minute(1000));
        assert_eq!(cfg.local_share.get(), 1.0);
        assert_eq!(cfg.max_wait, Duration::ZERO);
    }

    #[test]
    fn malformed_config_is_an_error_naming_the_variable() {
        let cases = [
            (START_PER_SEC, "0"),
            (GET_PER_SEC, "-3"),
            (LLM_REQUESTS_PER_MIN, "lots"),
            (LLM_TOKENS_PER_MIN, "1.5"),
            (LOCAL_SHARE, "0"),
            (LOCAL_SHARE, "1.01"),
            (LOCAL_SHARE, "NaN"),
            (LOCAL_SHARE, "quarter"),
            (MAX_WAIT_MS, "-1"),
            (MAX_WAIT_MS, "30s"),
        ];
        for (var, value) in cases {
            let get = |k: &str| (k == var).then(|| value.to_string());
            let err = RateLimitConfig::from_vars(&get).unwrap_err();
            assert_eq!(err.var, var, "{var}={value:?}");
        }
    }

    #[test]
    fn local_share_of_a_limit_rounds_down_but_never_to_zero() {
        let quarter = LocalShare::new(0.25).unwrap();
        assert_eq!(quarter.of(40), 10);
        assert_eq!(quarter.of(15), 3);
        assert_eq!(quarter.of(2), 1);
        assert_eq!(LocalShare::new(1.0).unwrap().of(u64::MAX), u64::MAX);
    }
}
