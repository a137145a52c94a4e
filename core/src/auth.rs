//! The cluster's shared secret: who may talk to a scheduler or an executor.
//!
//! An Ember cluster started with a token (`EMBER_AUTH_TOKEN`, or a file named
//! by `--auth-token-file` / `EMBER_AUTH_TOKEN_FILE`) refuses every request
//! that does not carry it, on every port it opens: the scheduler's gRPC and
//! REST port (all but `/healthz`), and each executor's Arrow Flight and gRPC
//! ports. The `ember` client, the executors and the scheduler send it on
//! every connection they open.
//!
//! How the token travels. Ballista 55 opens its connections itself (client to
//! scheduler, executor to scheduler, scheduler to executor, executor to
//! executor for shuffle reads, client to executor for results) and offers one
//! hook common to all of them: a rewrite of the tonic `Endpoint`, whose only
//! free-form header is the user agent. Ember therefore sends the token as the
//! user-agent product `ember-token/<token>`; other clients (curl, scripts)
//! send the standard `Authorization: Bearer <token>`. Servers accept either.
//! Either way the token crosses the network as a header: use TLS (see
//! [`crate::tls`]), or a private network, where the network is not trusted.
//! [`crate::access::ClusterAccess`] puts the token on every connection.
//!
//! The comparison takes the same time whatever the bytes presented, so the
//! token cannot be guessed byte by byte from response times.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ballista_executor::GrpcRequestCheck;
use tonic::metadata::MetadataMap;

use crate::error::{EmberError, Result};

/// The environment variable holding the token itself.
pub const TOKEN_ENV: &str = "EMBER_AUTH_TOKEN";
/// The environment variable naming a file that holds the token.
pub const TOKEN_FILE_ENV: &str = "EMBER_AUTH_TOKEN_FILE";
/// The user-agent product that carries the token on Ballista's connections.
pub const USER_AGENT_PRODUCT: &str = "ember-token/";
/// The shortest token accepted: shorter secrets are guessable.
pub const MIN_TOKEN_LENGTH: usize = 16;
/// The one path served without a token: liveness probes carry no secrets.
pub const UNAUTHENTICATED_PATH: &str = "/healthz";

/// A cluster's shared secret. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthToken {
    secret: Arc<str>,
}

impl fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthToken(<redacted>)")
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The request carried no token.
    Missing,
    /// The request carried a token that is not the cluster's.
    Wrong,
}

impl Refusal {
    /// The message the refused caller reads.
    pub fn message(self) -> String {
        match self {
            Refusal::Missing => format!(
                "this Ember cluster requires an auth token and none was sent: set {TOKEN_ENV} \
                 (or {TOKEN_FILE_ENV}, a file holding it) to the cluster's token"
            ),
            Refusal::Wrong => format!(
                "the auth token sent was refused: it is not this cluster's token (check \
                 {TOKEN_ENV} or {TOKEN_FILE_ENV})"
            ),
        }
    }
}

impl AuthToken {
    /// Checks `text` (surrounding whitespace ignored) as a token; `source`
    /// names where it came from in the error.
    pub fn parse(text: &str, source: &str) -> Result<Self> {
        let secret = text.trim();
        let invalid =
            |reason: String| EmberError::Config(format!("auth token from {source}: {reason}"));
        if secret.len() < MIN_TOKEN_LENGTH {
            return Err(invalid(format!(
                "it has {} characters; use at least {MIN_TOKEN_LENGTH} (for example `openssl rand -hex 32`)",
                secret.len()
            )));
        }
        if let Some(bad) = secret.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(invalid(format!(
                "it contains {bad:?}; a token is printable ASCII without spaces, as it travels in a header"
            )));
        }
        Ok(Self {
            secret: Arc::from(secret),
        })
    }

    /// Reads a token from `path`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| EmberError::io(path.display(), e))?;
        warn_if_readable_by_others(path);
        Self::parse(&text, &path.display().to_string())
    }

    /// The token a process runs with: from `file` when given (a command-line
    /// flag), else from the file named by `EMBER_AUTH_TOKEN_FILE`, else from
    /// `EMBER_AUTH_TOKEN`; `None` when none is set.
    pub fn resolve(file: Option<&Path>) -> Result<Option<Self>> {
        if let Some(path) = file {
            return Self::from_file(path).map(Some);
        }
        if let Some(path) = std::env::var_os(TOKEN_FILE_ENV).filter(|p| !p.is_empty()) {
            return Self::from_file(Path::new(&path)).map(Some);
        }
        match std::env::var(TOKEN_ENV) {
            Ok(text) if !text.is_empty() => Self::parse(&text, TOKEN_ENV).map(Some),
            _ => Ok(None),
        }
    }

    /// A fresh random token (244 random bits), for a cluster only this
    /// process talks to.
    pub fn random() -> Self {
        let secret = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        Self {
            secret: Arc::from(secret.as_str()),
        }
    }

    /// The token itself, for writing it to a file a process is given.
    pub fn expose_secret(&self) -> &str {
        &self.secret
    }

    /// The `Authorization` header value that carries the token.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.secret)
    }

    /// The user-agent product that carries the token on Ballista's connections.
    pub fn user_agent(&self) -> String {
        format!("{USER_AGENT_PRODUCT}{}", self.secret)
    }

    /// Whether `headers` (looked up by lower-case name) carry this token.
    pub fn check(
        &self,
        header: impl Fn(&str) -> Option<String>,
    ) -> std::result::Result<(), Refusal> {
        let from_bearer = header("authorization")
            .and_then(|v| v.strip_prefix("Bearer ").map(|t| t.trim().to_string()));
        let from_agent = header("user-agent").and_then(|v| {
            v.split_ascii_whitespace()
                .find_map(|product| product.strip_prefix(USER_AGENT_PRODUCT))
                .map(str::to_string)
        });
        let presented: Vec<String> = from_bearer.into_iter().chain(from_agent).collect();
        if presented.is_empty() {
            return Err(Refusal::Missing);
        }
        if presented
            .iter()
            .any(|t| constant_time_eq(t.as_bytes(), self.secret.as_bytes()))
        {
            Ok(())
        } else {
            Err(Refusal::Wrong)
        }
    }

    /// [`Self::check`] over HTTP headers.
    pub fn check_headers(&self, headers: &HeaderMap) -> std::result::Result<(), Refusal> {
        self.check(|name| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
    }

    /// [`Self::check`] over gRPC metadata.
    pub fn check_metadata(&self, metadata: &MetadataMap) -> std::result::Result<(), Refusal> {
        self.check(|name| {
            metadata
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
    }

    /// The executor's check of each gRPC and Flight request.
    pub fn grpc_request_check(&self) -> Arc<GrpcRequestCheck> {
        let token = self.clone();
        Arc::new(move |metadata: &MetadataMap| {
            token
                .check_metadata(metadata)
                .map_err(|refusal| tonic::Status::unauthenticated(refusal.message()))
        })
    }
}

/// The scheduler's gate: every request but `/healthz` must carry `token`.
/// gRPC callers get the gRPC status `UNAUTHENTICATED`, REST callers HTTP 401,
/// both with [`Refusal::message`].
pub async fn require_token(token: AuthToken, request: Request, next: Next) -> Response {
    if request.uri().path() == UNAUTHENTICATED_PATH {
        return next.run(request).await;
    }
    match token.check_headers(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => refuse(&request, refusal),
    }
}

fn refuse(request: &Request, refusal: Refusal) -> Response {
    let is_grpc = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if is_grpc {
        tonic::Status::unauthenticated(refusal.message())
            .into_http::<Body>()
            .into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            format!("{}\n", refusal.message()),
        )
            .into_response()
    }
}

/// Compares in time that depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        log::warn!(
            "auth token file {} can be read by other users; `chmod 600` it",
            path.display()
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> AuthToken {
        AuthToken::parse("  s3cret-token-0123456789\n", "test").unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn short_or_unprintable_tokens_are_rejected_naming_the_source() {
        let err = AuthToken::parse("short", "/etc/ember/token")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/etc/ember/token") && err.contains("at least 16"),
            "{err}"
        );
        let err = AuthToken::parse("has a space in the middle!", "EMBER_AUTH_TOKEN")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("EMBER_AUTH_TOKEN") && err.contains("' '"),
            "{err}"
        );
    }

    #[test]
    fn the_token_is_never_printed() {
        assert!(!format!("{:?}", token()).contains("s3cret"));
    }

    #[test]
    fn bearer_and_user_agent_both_carry_the_token() {
        let t = token();
        assert_eq!(
            t.check_headers(&headers(&[("authorization", &t.bearer())])),
            Ok(())
        );
        let agent = format!("{} tonic/0.14.9", t.user_agent());
        assert_eq!(t.check_headers(&headers(&[("user-agent", &agent)])), Ok(()));
    }

    #[test]
    fn missing_and_wrong_tokens_are_told_apart() {
        let t = token();
        assert_eq!(
            t.check_headers(&headers(&[("user-agent", "curl/8")])),
            Err(Refusal::Missing)
        );
        assert_eq!(
            t.check_headers(&headers(&[(
                "authorization",
                "Bearer s3cret-token-012345678X"
            )])),
            Err(Refusal::Wrong)
        );
        assert_eq!(
            t.check_headers(&headers(&[(
                "user-agent",
                "ember-token/s3cret-token-0123456789x"
            )])),
            Err(Refusal::Wrong)
        );
        assert!(Refusal::Missing.message().contains(TOKEN_ENV));
    }

    #[test]
    fn random_tokens_are_valid_and_distinct() {
        let (a, b) = (AuthToken::random(), AuthToken::random());
        assert_ne!(a, b);
        assert!(AuthToken::parse(&a.secret, "random").is_ok());
    }
}
