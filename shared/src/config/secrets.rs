//! Secrets given by reference: `X_SECRET_ID` names a Secrets Manager secret whose value is
//! the setting `X` (`REDIS_PASSWORD`, `DATABASE_URL`, `OPENAI_API_KEY`).
//!
//! On Lambda the template (`infra/template.yaml`) sets only the `*_SECRET_ID` variables, so
//! no secret value is stored in a function's configuration; at cold start
//! [`Config::from_env_resolving_secrets`] reads each referenced secret once through the AWS
//! Parameters and Secrets Lambda Extension (a local HTTP endpoint, `localhost:2773` unless
//! `PARAMETERS_SECRETS_EXTENSION_HTTP_PORT` says otherwise, authenticated by the
//! invocation's `AWS_SESSION_TOKEN`), then parses the configuration as usual with the
//! fetched values in place of the unset variables. A variable set directly wins over its
//! reference (local runs and tests set the value itself). Errors name the variable and the
//! secret id, never the value.

use std::collections::HashMap;
use std::time::Duration;

use super::{Config, ConfigError};

/// The settings that may be given by reference, each as `{name}_SECRET_ID`.
pub const BY_REFERENCE: [&str; 3] = ["REDIS_PASSWORD", "DATABASE_URL", "OPENAI_API_KEY"];

/// Port of the Parameters and Secrets extension when the variable does not set one.
const DEFAULT_EXTENSION_PORT: u16 = 2773;
const PORT_VAR: &str = "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT";
const TOKEN_HEADER: &str = "X-Aws-Parameters-Secrets-Token";
/// The extension answers from its cache or one Secrets Manager call: seconds at most.
const TIMEOUT: Duration = Duration::from_secs(10);

impl Config {
    /// [`Config::from_env`], after fetching every `*_SECRET_ID` reference whose variable is
    /// unset (see the module documentation).
    ///
    /// # Errors
    /// A reference that cannot be fetched (extension unreachable, unknown secret, no
    /// `AWS_SESSION_TOKEN`), or any error of [`Config::from_vars`]; each names its variable.
    pub async fn from_env_resolving_secrets() -> Result<Config, ConfigError> {
        let env = |k: &str| std::env::var_os(k).map(|v| v.to_string_lossy().into_owned());
        let fetched = fetch_references(&env).await?;
        Config::from_vars(|k| fetched.get(k).cloned().or_else(|| env(k)))
    }
}

/// Fetches the value of every `X_SECRET_ID` reference (read through `get`) whose `X` is
/// unset or empty, keyed by `X`.
///
/// # Errors
/// As [`Config::from_env_resolving_secrets`].
pub async fn fetch_references(
    get: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<HashMap<String, String>, ConfigError> {
    let wanted: Vec<(&str, String, String)> = BY_REFERENCE
        .iter()
        .filter(|name| get(name).is_none_or(|v| v.is_empty()))
        .filter_map(|name| {
            let var = format!("{name}_SECRET_ID");
            let id = get(&var)?.trim().to_owned();
            (!id.is_empty()).then_some((*name, var, id))
        })
        .collect();
    let mut out = HashMap::new();
    if wanted.is_empty() {
        return Ok(out);
    }
    let port = match get(PORT_VAR).map(|p| p.trim().to_owned()) {
        None => DEFAULT_EXTENSION_PORT,
        Some(p) if p.is_empty() => DEFAULT_EXTENSION_PORT,
        Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
            ConfigError::new(PORT_VAR, format!("expected a port number, got {p:?}"))
        })?,
    };
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| ConfigError::new(wanted[0].1.as_str(), format!("HTTP client: {e}")))?;
    for (name, var, id) in wanted {
        let token = get("AWS_SESSION_TOKEN")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ConfigError::new(
                    &var,
                    "set, but AWS_SESSION_TOKEN is not: secrets are fetched through the Lambda \
                 Parameters and Secrets extension, which only runs inside Lambda (set the \
                 variable itself when running elsewhere)",
                )
            })?;
        let value = fetch_one(&client, port, &token, &id)
            .await
            .map_err(|problem| ConfigError::new(&var, format!("secret {id:?}: {problem}")))?;
        out.insert(name.to_owned(), value);
    }
    Ok(out)
}

/// `GET /secretsmanager/get?secretId=…` on the extension; the `SecretString` it returns.
/// The error never contains the response body (it could hold the secret).
async fn fetch_one(
    client: &reqwest::Client,
    port: u16,
    token: &str,
    id: &str,
) -> Result<String, String> {
    let url = format!("http://localhost:{port}/secretsmanager/get");
    let response = client
        .get(url)
        .query(&[("secretId", id)])
        .header(TOKEN_HEADER, token)
        .send()
        .await
        .map_err(|e| {
            format!(
                "the Secrets extension on localhost:{port} did not answer ({}); is the \
                 AWS-Parameters-and-Secrets-Lambda-Extension layer attached?",
                e.without_url()
            )
        })?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!(
            "the Secrets extension answered HTTP {status} (unknown secret, or no permission \
             to read it)"
        ));
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "SecretString")]
        secret_string: Option<String>,
    }
    let answer: Answer = response
        .json()
        .await
        .map_err(|_| "the Secrets extension's answer is not the expected JSON".to_owned())?;
    match answer.secret_string {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err("the secret has no SecretString (binary secrets are not supported)".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A stand-in for the extension: a real HTTP server on a free port that serves
    /// `secrets` by id to callers presenting `token`, recording each request line.
    async fn extension(
        secrets: &[(&str, &str)],
        token: &'static str,
    ) -> (u16, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let secrets: HashMap<String, String> = secrets
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let log = Arc::new(Mutex::new(Vec::new()));
        let seen = log.clone();
        tokio::spawn(async move {
            loop {
                let (mut sock, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 8192];
                let n = sock.read(&mut buf).await.unwrap();
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let line = req.lines().next().unwrap_or_default().to_owned();
                seen.lock().unwrap().push(line.clone());
                let authorised = req
                    .lines()
                    .any(|l| l.eq_ignore_ascii_case(&format!("{TOKEN_HEADER}: {token}")));
                let id = line
                    .split("secretId=")
                    .nth(1)
                    .and_then(|r| r.split(' ').next())
                    .and_then(|s| {
                        url::form_urlencoded::parse(format!("x={s}").as_bytes())
                            .next()
                            .map(|(_, v)| v.into_owned())
                    })
                    .unwrap_or_default();
                let (status, body) = match (authorised, secrets.get(&id)) {
                    (false, _) => ("401 Unauthorized", String::new()),
                    (true, None) => ("400 Bad Request", "ResourceNotFoundException".into()),
                    (true, Some(v)) => (
                        "200 OK",
                        serde_json::json!({"ARN": id, "SecretString": v}).to_string(),
                    ),
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                sock.write_all(resp.as_bytes()).await.unwrap();
            }
        });
        (port, log)
    }

    fn vars(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> + Sync {
        let map: HashMap<String, String> =
            pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        move |k| map.get(k).cloned()
    }

    #[tokio::test]
    async fn references_are_fetched_through_the_extension_and_fill_only_unset_variables() {
        let (port, log) = extension(
            &[
                (
                    "arn:aws:secretsmanager:us-east-1:1:secret:db",
                    "postgres://u:pw@db/x",
                ),
                (
                    "arn:aws:secretsmanager:us-east-1:1:secret:redis",
                    "s3cr3t token",
                ),
            ],
            "session",
        )
        .await;
        let get = vars(vec![
            (PORT_VAR, port.to_string()),
            ("AWS_SESSION_TOKEN", "session".into()),
            (
                "DATABASE_URL_SECRET_ID",
                "arn:aws:secretsmanager:us-east-1:1:secret:db".into(),
            ),
            (
                "REDIS_PASSWORD_SECRET_ID",
                "arn:aws:secretsmanager:us-east-1:1:secret:redis".into(),
            ),
            // Set directly: the reference is not even fetched.
            ("OPENAI_API_KEY", "sk-direct".into()),
            (
                "OPENAI_API_KEY_SECRET_ID",
                "arn:aws:secretsmanager:us-east-1:1:secret:llm".into(),
            ),
        ]);
        let fetched = fetch_references(&get).await.unwrap();
        assert_eq!(fetched.len(), 2);
        assert_eq!(fetched["DATABASE_URL"], "postgres://u:pw@db/x");
        assert_eq!(fetched["REDIS_PASSWORD"], "s3cr3t token");
        assert_eq!(log.lock().unwrap().len(), 2, "{:?}", log.lock().unwrap());

        // And the configuration parses with them in place.
        let cfg = Config::from_vars(|k| fetched.get(k).cloned().or_else(|| get(k))).unwrap();
        assert_eq!(
            cfg.database.url.as_ref().map(|u| u.expose().to_owned()),
            Some("postgres://u:pw@db/x".to_owned())
        );
    }

    #[tokio::test]
    async fn an_unknown_secret_names_the_variable_and_id_but_nothing_else() {
        let (port, _) = extension(&[("known", "value-that-must-not-leak")], "t").await;
        let get = vars(vec![
            (PORT_VAR, port.to_string()),
            ("AWS_SESSION_TOKEN", "t".into()),
            ("DATABASE_URL_SECRET_ID", "missing-secret".into()),
        ]);
        let err = fetch_references(&get).await.unwrap_err();
        assert_eq!(err.var, "DATABASE_URL_SECRET_ID");
        assert!(err.problem.contains("missing-secret"), "{}", err.problem);
        assert!(err.problem.contains("400"), "{}", err.problem);
    }

    #[tokio::test]
    async fn a_wrong_session_token_is_refused_and_reported() {
        let (port, _) = extension(&[("id", "v")], "right").await;
        let get = vars(vec![
            (PORT_VAR, port.to_string()),
            ("AWS_SESSION_TOKEN", "wrong".into()),
            ("OPENAI_API_KEY_SECRET_ID", "id".into()),
        ]);
        let err = fetch_references(&get).await.unwrap_err();
        assert_eq!(err.var, "OPENAI_API_KEY_SECRET_ID");
        assert!(err.problem.contains("401"), "{}", err.problem);
    }

    #[tokio::test]
    async fn outside_lambda_a_reference_without_a_session_token_is_a_clear_error() {
        let get = vars(vec![("REDIS_PASSWORD_SECRET_ID", "id".into())]);
        let err = fetch_references(&get).await.unwrap_err();
        assert_eq!(err.var, "REDIS_PASSWORD_SECRET_ID");
        assert!(err.problem.contains("AWS_SESSION_TOKEN"), "{}", err.problem);
    }

    #[tokio::test]
    async fn an_unreachable_extension_says_which_layer_is_missing() {
        // A port nothing listens on: bind, read the port, close.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let get = vars(vec![
            (PORT_VAR, port.to_string()),
            ("AWS_SESSION_TOKEN", "t".into()),
            ("DATABASE_URL_SECRET_ID", "id".into()),
        ]);
        let err = fetch_references(&get).await.unwrap_err();
        assert!(err.problem.contains("Extension"), "{}", err.problem);
    }

    #[tokio::test]
    async fn without_references_nothing_is_fetched() {
        let get = vars(vec![("DATABASE_URL", "postgres://x".into())]);
        assert!(fetch_references(&get).await.unwrap().is_empty());
    }
}
