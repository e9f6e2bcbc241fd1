//! Idempotency settings: `LEXPIPE_IDEMPOTENCY_TTL_SECS`,
//! `LEXPIPE_IDEMPOTENCY_IN_PROGRESS_SECS` (see the table in [`crate::config`]).

use std::time::Duration;

use super::{ConfigError, Vars};

/// Variable for [`IdempotencyConfig::record_ttl`], in seconds.
const TTL_VAR: &str = "LEXPIPE_IDEMPOTENCY_TTL_SECS";
/// Variable for [`IdempotencyConfig::in_progress_expiry`], in seconds.
const IN_PROGRESS_VAR: &str = "LEXPIPE_IDEMPOTENCY_IN_PROGRESS_SECS";

const DEFAULT_RECORD_TTL: Duration = Duration::from_secs(24 * 60 * 60);
const DEFAULT_IN_PROGRESS: Duration = Duration::from_secs(15 * 60);
/// Longest accepted setting (a year): keeps millisecond arithmetic far from overflow.
const MAX_SECS: u64 = 366 * 24 * 60 * 60;

/// Lifetimes of idempotency records; handed to `redis::idempotency::Idempotency::new`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyConfig {
    /// `LEXPIPE_IDEMPOTENCY_TTL_SECS`: lifetime of a record, from its creation and again
    /// from its completion.
    pub record_ttl: Duration,
    /// `LEXPIPE_IDEMPOTENCY_IN_PROGRESS_SECS`: how long an `IN_PROGRESS` record is
    /// protected when the caller gives no deadline.
    /// Longer than the work can take (a Lambda's timeout), or a slow caller is taken over.
    pub in_progress_expiry: Duration,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        IdempotencyConfig {
            record_ttl: DEFAULT_RECORD_TTL,
            in_progress_expiry: DEFAULT_IN_PROGRESS,
        }
    }
}

impl IdempotencyConfig {
    /// Reads the two variables through `get` (empty or blank counts as unset).
    ///
    /// # Errors
    /// A value that is not a whole number of seconds from 1 to 366 days, or an in-progress
    /// expiry longer than the record ttl; the error names the variable.
    pub fn from_vars(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars::new(get);
        let record_ttl = vars.secs_in(TTL_VAR, DEFAULT_RECORD_TTL.as_secs(), MAX_SECS)?;
        let in_progress_expiry =
            vars.secs_in(IN_PROGRESS_VAR, DEFAULT_IN_PROGRESS.as_secs(), MAX_SECS)?;
        if in_progress_expiry > record_ttl {
            return Err(ConfigError::new(
                IN_PROGRESS_VAR,
                format!(
                    "must not exceed {TTL_VAR} ({} s), got {} s",
                    record_ttl.as_secs(),
                    in_progress_expiry.as_secs()
                ),
            ));
        }
        Ok(IdempotencyConfig {
            record_ttl,
            in_progress_expiry,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<IdempotencyConfig, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        IdempotencyConfig::from_vars(&|k| map.get(k).cloned())
    }

    #[test]
    fn no_variables_give_a_day_of_records_and_fifteen_minutes_in_progress() {
        let cfg = load(&[]).unwrap();
        assert_eq!(cfg, IdempotencyConfig::default());
        assert_eq!(cfg.record_ttl, Duration::from_secs(86_400));
        assert_eq!(cfg.in_progress_expiry, Duration::from_secs(900));
    }

    #[test]
    fn both_lifetimes_are_read_in_seconds_and_blank_counts_as_unset() {
        let cfg = load(&[(TTL_VAR, " 3600 "), (IN_PROGRESS_VAR, "60")]).unwrap();
        assert_eq!(cfg.record_ttl, Duration::from_secs(3600));
        assert_eq!(cfg.in_progress_expiry, Duration::from_secs(60));
        let cfg = load(&[(TTL_VAR, "  ")]).unwrap();
        assert_eq!(cfg.record_ttl, Duration::from_secs(86_400));
    }

    #[test]
    fn zero_negative_huge_or_malformed_values_are_errors_naming_the_variable() {
        for var in [TTL_VAR, IN_PROGRESS_VAR] {
            for bad in ["0", "-5", "1.5", "ten", "99999999999999999999", "40000000"] {
                let e = load(&[(var, bad)]).unwrap_err();
                assert_eq!(e.var, var, "{bad}");
                assert!(e.problem.contains(&format!("{bad:?}")), "{}", e.problem);
            }
        }
    }

    #[test]
    fn an_in_progress_expiry_longer_than_the_record_ttl_is_an_error() {
        let e = load(&[(TTL_VAR, "60"), (IN_PROGRESS_VAR, "61")]).unwrap_err();
        assert_eq!(e.var, IN_PROGRESS_VAR);
        assert!(e.problem.contains(TTL_VAR));
    }
}
