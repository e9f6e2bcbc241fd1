//! Document state settings: `LEXPIPE_STATE_TTL_SECS` (see the table in [`crate::config`]).

use std::time::Duration;

use super::{ConfigError, Vars};

/// The variable holding the lifetime of document state, in seconds.
const TTL_VAR: &str = "LEXPIPE_STATE_TTL_SECS";
/// Thirty days: long enough to inspect and resume a run after a holiday.
const DEFAULT_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Ten years: more is a typo, and would overflow nothing but help nobody.
const MAX_TTL_SECS: u64 = 10 * 365 * 24 * 60 * 60;

/// How long document state lives; handed to `redis::state::StateStore::new`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateConfig {
    /// Time to live of every state key, refreshed on each write.
    pub ttl: Duration,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig { ttl: DEFAULT_TTL }
    }
}

impl StateConfig {
    /// Reads [`TTL_VAR`] through `get` (unset, empty or blank: the 30-day default).
    ///
    /// # Errors
    /// A value that is not a whole number of seconds between 1 and ten years, naming the
    /// variable.
    pub fn from_vars(get: &dyn Fn(&str) -> Option<String>) -> Result<StateConfig, ConfigError> {
        let ttl =
            Vars::new(get).secs_in(TTL_VAR, StateConfig::default().ttl.as_secs(), MAX_TTL_SECS)?;
        Ok(StateConfig { ttl })
    }

    /// Reads the process environment.
    ///
    /// # Errors
    /// As [`StateConfig::from_vars`].
    pub fn from_env() -> Result<StateConfig, ConfigError> {
        StateConfig::from_vars(&|k| std::env::var_os(k).map(|v| v.to_string_lossy().into_owned()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn ttl_defaults_to_thirty_days_when_unset_or_blank() {
        assert_eq!(StateConfig::from_vars(&vars(&[])).unwrap().ttl, DEFAULT_TTL);
        assert_eq!(
            StateConfig::from_vars(&vars(&[(TTL_VAR, "  ")])).unwrap(),
            StateConfig::default()
        );
        assert_eq!(DEFAULT_TTL, Duration::from_secs(2_592_000));
    }

    #[test]
    fn ttl_is_read_in_seconds() {
        let cfg = StateConfig::from_vars(&vars(&[(TTL_VAR, " 3600 ")])).unwrap();
        assert_eq!(cfg.ttl, Duration::from_secs(3600));
    }

    #[test]
    fn zero_negative_huge_or_malformed_ttl_is_an_error_naming_the_variable() {
        for bad in ["0", "-5", "1.5", "ten", "999999999999"] {
            let err = StateConfig::from_vars(&vars(&[(TTL_VAR, bad)])).unwrap_err();
            assert_eq!(err.var, TTL_VAR, "{bad}");
            assert!(err.problem.contains(&format!("{bad:?}")), "{}", err.problem);
        }
    }
}
