//! Settings of the AWS shape (the Lambda functions, `ingest`, `health`): which state
//! machine `ingest` starts, how long an execution owns its queue row, when `health` calls
//! a document stuck, and the CloudWatch namespace of the metrics every function prints.
//! See the table in [`crate::config`].

use std::time::Duration;

use super::{ConfigError, Vars, quoted};

const STATE_MACHINE_ARN_VAR: &str = "LEXPIPE_STATE_MACHINE_ARN";
const EXECUTION_LEASE_VAR: &str = "LEXPIPE_EXECUTION_LEASE_SECS";
const STUCK_AFTER_VAR: &str = "LEXPIPE_HEALTH_STUCK_AFTER_SECS";
const METRICS_NAMESPACE_VAR: &str = "LEXPIPE_METRICS_NAMESPACE";
const UPLOAD_PREFIX_VAR: &str = "LEXPIPE_UPLOAD_PREFIX";

/// Six hours: a document with 120 OCR polls and every retry finishes well within it.
const DEFAULT_EXECUTION_LEASE_SECS: u64 = 6 * 60 * 60;
/// One year, Step Functions' longest Standard execution.
const MAX_EXECUTION_LEASE_SECS: u64 = 365 * 24 * 60 * 60;
/// A document still running after an hour has almost certainly stopped moving.
const DEFAULT_STUCK_AFTER_SECS: u64 = 60 * 60;

/// The AWS shape's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudConfig {
    /// `LEXPIPE_STATE_MACHINE_ARN`: the state machine `ingest` starts; required by the
    /// `ingest` function (checked when it starts), unused elsewhere.
    pub state_machine_arn: Option<String>,
    /// `LEXPIPE_EXECUTION_LEASE_SECS`: how long an execution started by `ingest` owns the
    /// document's queue row before a worker may reclaim it.
    pub execution_lease: Duration,
    /// `LEXPIPE_HEALTH_STUCK_AFTER_SECS`: a document `running` longer than this is
    /// reported by `health`.
    pub stuck_after: Duration,
    /// `LEXPIPE_METRICS_NAMESPACE`: the CloudWatch namespace of the EMF metrics.
    pub metrics_namespace: String,
    /// `LEXPIPE_UPLOAD_PREFIX`: `ingest` takes only keys under it (the bucket's
    /// notification filter says the same; this holds if the filter is ever widened).
    /// `None`: every key.
    pub upload_prefix: Option<String>,
}

impl Default for CloudConfig {
    fn default() -> Self {
        CloudConfig {
            state_machine_arn: None,
            execution_lease: Duration::from_secs(DEFAULT_EXECUTION_LEASE_SECS),
            stuck_after: Duration::from_secs(DEFAULT_STUCK_AFTER_SECS),
            metrics_namespace: "lexpipe".to_string(),
            upload_prefix: None,
        }
    }
}

impl CloudConfig {
    /// Reads the variables above through `get`; unset or blank keeps the default.
    ///
    /// # Errors
    /// A malformed value, naming its variable.
    pub fn from_vars(get: &dyn Fn(&str) -> Option<String>) -> Result<CloudConfig, ConfigError> {
        let vars = Vars::new(get);
        let d = CloudConfig::default();
        let state_machine_arn = match vars.trimmed(STATE_MACHINE_ARN_VAR) {
            None => None,
            Some(arn) if arn.starts_with("arn:") && arn.contains(":states:") => Some(arn),
            Some(arn) => {
                return Err(ConfigError::new(
                    STATE_MACHINE_ARN_VAR,
                    format!(
                        "expected a state machine ARN (arn:aws:states:…), got {}",
                        quoted(&arn)
                    ),
                ));
            }
        };
        let namespace = vars
            .trimmed(METRICS_NAMESPACE_VAR)
            .unwrap_or(d.metrics_namespace);
        if namespace.len() > 255 || namespace.starts_with(':') || namespace.contains("AWS/") {
            return Err(ConfigError::new(
                METRICS_NAMESPACE_VAR,
                format!(
                    "expected a CloudWatch namespace (up to 255 characters, not AWS/…), got {}",
                    quoted(&namespace)
                ),
            ));
        }
        Ok(CloudConfig {
            state_machine_arn,
            execution_lease: vars.secs_in(
                EXECUTION_LEASE_VAR,
                DEFAULT_EXECUTION_LEASE_SECS,
                MAX_EXECUTION_LEASE_SECS,
            )?,
            stuck_after: vars.secs(STUCK_AFTER_VAR, DEFAULT_STUCK_AFTER_SECS)?,
            metrics_namespace: namespace,
            upload_prefix: vars
                .trimmed(UPLOAD_PREFIX_VAR)
                .map(|p| p.trim_start_matches('/').to_string())
                .filter(|p| !p.is_empty()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_when_nothing_is_set_and_a_bad_arn_is_refused_by_name() {
        let none = CloudConfig::from_vars(&|_| None).unwrap();
        assert_eq!(none, CloudConfig::default());
        let arn = "arn:aws:states:us-east-1:123456789012:stateMachine:lexpipe";
        let set =
            CloudConfig::from_vars(&|k| (k == STATE_MACHINE_ARN_VAR).then(|| arn.into())).unwrap();
        assert_eq!(set.state_machine_arn.as_deref(), Some(arn));
        let bad =
            CloudConfig::from_vars(&|k| (k == STATE_MACHINE_ARN_VAR).then(|| "pipeline".into()))
                .unwrap_err();
        assert_eq!(bad.var, STATE_MACHINE_ARN_VAR);
    }
}
