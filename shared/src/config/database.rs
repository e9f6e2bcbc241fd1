//! PostgreSQL settings: `DATABASE_URL`, `LEXPIPE_AUTO_MIGRATE`, `DATABASE_MAX_CONNECTIONS`
//! (see the table in [`crate::config`]).

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;

use super::{ConfigError, Secret, Vars};

const DATABASE_URL: &str = "DATABASE_URL";
const AUTO_MIGRATE: &str = "LEXPIPE_AUTO_MIGRATE";
const MAX_CONNECTIONS: &str = "DATABASE_MAX_CONNECTIONS";

const DEFAULT_MAX_CONNECTIONS: u32 = 10;

/// How to reach PostgreSQL; part of the process configuration, read once at start and
/// handed to `store::db::open`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseConfig {
    /// `DATABASE_URL`; `None` runs without a database. A secret: it usually embeds the
    /// password.
    pub url: Option<Secret>,
    /// `LEXPIPE_AUTO_MIGRATE`: `store::db::open` applies pending migrations when true.
    pub auto_migrate: bool,
    /// `DATABASE_MAX_CONNECTIONS`: size of the connection pool.
    pub max_connections: u32,
}

impl DatabaseConfig {
    /// Reads the database settings through `get` (the process environment, or a map in
    /// tests).
    ///
    /// # Errors
    /// The first malformed setting, naming its variable. Errors about `DATABASE_URL` never
    /// quote any part of it: a mistyped URL can put the password where the host should be.
    pub fn from_vars(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars::new(get);
        let url = match vars.trimmed(DATABASE_URL) {
            None => None,
            Some(url) => {
                check_url(&url)?;
                Some(Secret::new(url))
            }
        };
        let auto_migrate = vars.flag(AUTO_MIGRATE, false)?;
        let max_connections = vars.whole::<u32>(
            MAX_CONNECTIONS,
            DEFAULT_MAX_CONNECTIONS,
            1,
            "a whole number of connections",
        )?;
        Ok(DatabaseConfig {
            url,
            auto_migrate,
            max_connections,
        })
    }

    /// `scheme://[***@]host[:port]/database` for logs and `lexpipe health`: credentials
    /// and the query string (which may hold a password too) are left out. `None` when no
    /// database is configured.
    pub fn describe_url(&self) -> Option<String> {
        let url = url::Url::parse(self.url.as_ref()?.expose()).ok()?;
        let mut out = format!("{}://", url.scheme());
        if !url.username().is_empty() || url.password().is_some() {
            out.push_str("***@");
        }
        out.push_str(url.host_str().unwrap_or(""));
        if let Some(port) = url.port() {
            out.push_str(&format!(":{port}"));
        }
        out.push_str(url.path());
        Some(out)
    }
}

/// Checks the shape of `DATABASE_URL` at start, so a typo fails the process naming the
/// variable instead of surfacing as a connection error on the first document.
fn check_url(url: &str) -> Result<(), ConfigError> {
    let parsed = url::Url::parse(url).map_err(|e| {
        // `url::ParseError` messages are fixed strings that never include the input.
        ConfigError::new(
            DATABASE_URL,
            format!("not a valid URL ({e}); value not shown"),
        )
    })?;
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return Err(ConfigError::new(
            DATABASE_URL,
            "expected a postgres:// or postgresql:// URL; value not shown",
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::new(
            DATABASE_URL,
            "has no host; value not shown",
        ));
    }
    // The driver's own parser also checks the query (sslmode=..., options=...); its
    // messages may quote a parameter, so only the fact of the failure is reported.
    if PgConnectOptions::from_str(url).is_err() {
        return Err(ConfigError::new(
            DATABASE_URL,
            "has a query parameter PostgreSQL does not accept (check sslmode); value not shown",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<DatabaseConfig, ConfigError> {
        let vars: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        DatabaseConfig::from_vars(&|k| vars.get(k).cloned())
    }

    #[test]
    fn nothing_set_means_no_database_no_auto_migration_and_ten_connections() {
        let cfg = load(&[]).unwrap();
        assert_eq!(
            cfg,
            DatabaseConfig {
                url: None,
                auto_migrate: false,
                max_connections: 10
            }
        );
    }

    #[test]
    fn postgres_and_postgresql_urls_are_accepted_with_their_sslmode() {
        for url in [
            "postgres://postgres@127.0.0.1:5432/postgres",
            "postgresql://app:pw@db.abc.supabase.co:5432/postgres?sslmode=require",
        ] {
            let cfg = load(&[(DATABASE_URL, url)]).unwrap();
            assert_eq!(cfg.url.as_ref().map(Secret::expose), Some(url));
        }
    }

    #[test]
    fn a_url_of_another_scheme_is_an_error_that_does_not_quote_it() {
        for url in [
            "mysql://user:hunter2@db/x",
            "hunter2",
            "postgres://user:hunter2@/x",
            "postgres://user:hunter2@db/x?sslmode=hunter2",
        ] {
            let err = load(&[(DATABASE_URL, url)]).unwrap_err();
            assert_eq!(err.var, DATABASE_URL, "{url}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn auto_migrate_and_max_connections_are_read_from_their_variables() {
        let cfg = load(&[(AUTO_MIGRATE, " Yes "), (MAX_CONNECTIONS, "32")]).unwrap();
        assert!(cfg.auto_migrate);
        assert_eq!(cfg.max_connections, 32);
    }

    #[test]
    fn malformed_auto_migrate_or_max_connections_are_errors_naming_the_variable() {
        for (var, value) in [
            (AUTO_MIGRATE, "maybe"),
            (MAX_CONNECTIONS, "0"),
            (MAX_CONNECTIONS, "-1"),
            (MAX_CONNECTIONS, "ten"),
        ] {
            let err = load(&[(var, value)]).unwrap_err();
            assert_eq!(err.var, var, "{var}={value:?}");
        }
    }

    #[test]
    fn empty_values_count_as_unset() {
        let cfg = load(&[
            (DATABASE_URL, " "),
            (AUTO_MIGRATE, ""),
            (MAX_CONNECTIONS, ""),
        ]);
        assert_eq!(cfg.unwrap(), load(&[]).unwrap());
    }

    #[test]
    fn describe_url_hides_credentials_and_the_query() {
        let cfg = load(&[(
            DATABASE_URL,
            "postgresql://app:pw@db.example:6543/lex?sslmode=require&password=x",
        )])
        .unwrap();
        assert_eq!(
            cfg.describe_url().as_deref(),
            Some("postgresql://***@db.example:6543/lex")
        );
        assert!(!format!("{cfg:?}").contains("pw@"));
    }
}
