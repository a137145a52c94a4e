//! What a process presents and trusts when it connects to a cluster: the
//! cluster's auth token ([`crate::auth`]) and, with TLS, the CA that signed
//! the cluster's certificates ([`crate::tls`]).
//!
//! The `ember` client, the scheduler (which calls executors) and the
//! executors (which call the scheduler and each other) all connect the same
//! way, so one value describes it for each of them, and one endpoint rewrite
//! applies it to every gRPC connection Ballista opens.

use std::collections::HashMap;
use std::sync::Arc;

use ballista_core::config::BallistaConfig;
use ballista_core::extension::{EndpointOverrideFn, SessionConfigExt};
use ballista_core::utils::{GrpcClientConfig, create_grpc_client_endpoint};
use datafusion::prelude::SessionConfig;
use tonic::transport::Endpoint;

use crate::auth::AuthToken;
use crate::error::{EmberError, Result};
use crate::tls::TrustedCa;

/// How a process reaches a cluster's ports.
#[derive(Debug, Clone, Default)]
pub struct ClusterAccess {
    /// The token every request carries, for a cluster that requires one.
    pub auth: Option<AuthToken>,
    /// The CA to trust, for a cluster that serves TLS; without it,
    /// connections are plain.
    pub tls: Option<TrustedCa>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl ClusterAccess {
    /// Access with a token only (no TLS).
    pub fn with_auth(auth: Option<AuthToken>) -> Self {
        Self { auth, tls: None }
    }

    /// The `ember` client's access, from the environment: the token from
    /// `EMBER_AUTH_TOKEN_FILE` or `EMBER_AUTH_TOKEN`, the CA from `EMBER_TLS_CA`.
    pub fn from_env() -> Result<Self> {
        Ok(Self {
            auth: AuthToken::resolve(None)?,
            tls: TrustedCa::resolve(None)?,
        })
    }

    /// `https` with TLS, else `http`: the scheme of the scheduler's REST API.
    pub fn http_scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// The scheduler's REST base address, e.g. `https://sched:50050`.
    pub fn scheduler_http(&self, host: &str, port: u16) -> String {
        format!("{}://{host}:{port}", self.http_scheme())
    }

    /// The rewrite of every gRPC endpoint Ballista opens: the token as the
    /// user agent and, with TLS, `https` trusting the cluster's CA. `None`
    /// when there is nothing to add.
    pub fn endpoint_override(&self) -> Option<EndpointOverrideFn> {
        if self.auth.is_none() && self.tls.is_none() {
            return None;
        }
        let agent = self.auth.as_ref().map(AuthToken::user_agent);
        let tls = self.tls.clone();
        Some(Arc::new(move |endpoint: Endpoint| {
            let mut endpoint = endpoint;
            if let Some(ca) = &tls {
                endpoint = with_tls(endpoint, ca)?;
            }
            if let Some(agent) = &agent {
                endpoint = endpoint.user_agent(agent.clone())?;
            }
            Ok(endpoint)
        }))
    }

    /// `config` with this access on every connection a session opens (the
    /// client's to the scheduler and to executors for results, an
    /// executor's to other executors for shuffle reads).
    pub fn apply_to(&self, config: SessionConfig) -> SessionConfig {
        let mut config = config;
        if let Some(rewrite) = self.endpoint_override() {
            config = config.with_ballista_override_create_grpc_client_endpoint(rewrite);
        }
        if self.tls.is_some() {
            // Ballista then dials executors' Flight ports as `https://`
            // itself, keeping its own endpoint settings.
            config = config.with_ballista_use_tls(true);
        }
        if let Some(token) = &self.auth {
            config = config.with_ballista_grpc_metadata(HashMap::from([(
                "authorization".to_string(),
                token.bearer(),
            )]));
        }
        config
    }

    /// An HTTP client for the scheduler's REST API: it sends the token and
    /// trusts the cluster's CA.
    pub fn rest_client(&self) -> Result<reqwest::Client> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = &self.auth {
            let mut value = reqwest::header::HeaderValue::from_str(&token.bearer())
                .map_err(|e| EmberError::Config(format!("auth token: {e}")))?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let mut builder = reqwest::Client::builder().default_headers(headers);
        if let Some(ca) = &self.tls {
            for cert in ca.reqwest_certificates()? {
                builder = builder.add_root_certificate(cert);
            }
        }
        builder
            .build()
            .map_err(|e| EmberError::Config(format!("HTTP client: {e}")))
    }
}

/// `endpoint` over TLS trusting `ca`. Ballista builds scheduler and executor
/// addresses as `http://`, and tonic uses TLS only for `https://` URIs, so an
/// `http` endpoint is rebuilt as `https` with the settings Ballista gives its
/// gRPC clients by default (tonic cannot change an endpoint's URI in place).
fn with_tls(endpoint: Endpoint, ca: &TrustedCa) -> std::result::Result<Endpoint, BoxError> {
    let endpoint = if endpoint.uri().scheme_str() == Some("http") {
        let authority = endpoint
            .uri()
            .authority()
            .map(|a| a.as_str().to_string())
            .ok_or_else(|| format!("no host in {}", endpoint.uri()))?;
        let settings = GrpcClientConfig::from(&BallistaConfig::default());
        create_grpc_client_endpoint(format!("https://{authority}"), Some(&settings))?
    } else {
        endpoint
    };
    Ok(endpoint.tls_config(ca.tonic_config())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_access_adds_nothing() {
        let access = ClusterAccess::default();
        assert!(access.endpoint_override().is_none());
        assert_eq!(access.scheduler_http("sched", 50050), "http://sched:50050");
    }

    #[test]
    fn a_token_alone_keeps_http() {
        let token = AuthToken::parse("s3cret-token-0123456789", "test").unwrap();
        let rewrite = ClusterAccess::with_auth(Some(token))
            .endpoint_override()
            .unwrap();
        let endpoint = rewrite(Endpoint::from_static("http://127.0.0.1:1")).unwrap();
        assert_eq!(endpoint.uri().scheme_str(), Some("http"));
    }
}
