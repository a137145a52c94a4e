//! The user's entry point: a session connected to a cluster, or to an
//! embedded one when no address is given.

use std::time::Duration;

use ballista::prelude::SessionContextExt;
use datafusion::prelude::SessionContext;
use url::Url;

use crate::access::ClusterAccess;
use crate::auth::AuthToken;
use crate::config::ember_session_config;
use crate::embedded::EmbeddedCluster;
use crate::error::{EmberError, Result};
use crate::registry::{ember_aggregate_functions, ember_scalar_functions, ember_table_functions};
use crate::session::{ember_runtime_env, ember_session_state};

/// The scheduler port when an address gives none.
pub const DEFAULT_SCHEDULER_PORT: u16 = 50050;

/// How long [`EmberContext::connect`] waits for a remote scheduler to answer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where queries run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterTarget {
    /// An in-process scheduler and executor, started on demand.
    Embedded,
    /// A running Ember scheduler.
    Remote {
        /// Host name or address of the scheduler.
        host: String,
        /// Its port (gRPC and REST share it).
        port: u16,
    },
}

impl ClusterTarget {
    /// Parses `df://host[:port]`; `None` or an empty string means embedded.
    pub fn parse(address: Option<&str>) -> Result<Self> {
        let Some(address) = address.map(str::trim).filter(|a| !a.is_empty()) else {
            return Ok(ClusterTarget::Embedded);
        };
        let invalid = |reason: &str| EmberError::InvalidClusterAddress {
            address: address.to_string(),
            reason: reason.to_string(),
        };
        let url =
            Url::parse(address).map_err(|e| invalid(&format!("{e}; expected df://HOST:PORT")))?;
        if url.scheme() != "df" {
            return Err(invalid(&format!(
                "scheme '{}' is not supported; expected df://HOST:PORT",
                url.scheme()
            )));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid("no host; expected df://HOST:PORT"))?;
        Ok(ClusterTarget::Remote {
            host: host.to_string(),
            port: url.port().unwrap_or(DEFAULT_SCHEDULER_PORT),
        })
    }

    /// The target as a user writes it.
    pub fn describe(&self) -> String {
        match self {
            ClusterTarget::Embedded => "embedded".to_string(),
            ClusterTarget::Remote { host, port } => format!("df://{host}:{port}"),
        }
    }
}

/// A session that runs queries on Ember: DataFusion's SQL with Ember's
/// functions and options, executed by a Ballista scheduler and executors.
pub struct EmberContext {
    ctx: SessionContext,
    scheduler_http: String,
    rest: reqwest::Client,
    target: ClusterTarget,
    _embedded: Option<EmbeddedCluster>,
}

impl EmberContext {
    /// Connects to `target`, starting an embedded cluster if asked to. A
    /// remote scheduler that does not answer within [`CONNECT_TIMEOUT`] is an
    /// [`EmberError::Unreachable`] naming its address. A remote cluster gets
    /// the token and the CA from the environment (see
    /// [`ClusterAccess::from_env`]).
    pub async fn connect(target: ClusterTarget) -> Result<Self> {
        let access = match &target {
            ClusterTarget::Embedded => ClusterAccess::default(),
            ClusterTarget::Remote { .. } => ClusterAccess::from_env()?,
        };
        Self::connect_with(target, access).await
    }

    /// [`Self::connect_with`] with a token only (no TLS).
    pub async fn connect_with_auth(target: ClusterTarget, auth: Option<AuthToken>) -> Result<Self> {
        Self::connect_with(target, ClusterAccess::with_auth(auth)).await
    }

    /// [`Self::connect`] with the token and CA given rather than read from
    /// the environment. A scheduler that refuses the token is an
    /// [`EmberError::Unauthenticated`], and one whose TLS does not match an
    /// [`EmberError::Unreachable`] saying why, both found before any query is
    /// sent. An embedded cluster ignores `access`: it makes its own token and
    /// stays on loopback without TLS.
    pub async fn connect_with(target: ClusterTarget, access: ClusterAccess) -> Result<Self> {
        let (host, port, embedded) = match &target {
            ClusterTarget::Embedded => {
                let vcores = std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2);
                let cluster = EmbeddedCluster::start(vcores).await?;
                let addr = cluster.scheduler_addr();
                (addr.ip().to_string(), addr.port(), Some(cluster))
            }
            ClusterTarget::Remote { host, port } => (host.clone(), *port, None),
        };
        let access = match &embedded {
            Some(cluster) => ClusterAccess::with_auth(Some(cluster.auth_token().clone())),
            None => access,
        };
        let scheduler_http = access.scheduler_http(&host, port);
        let rest = access.rest_client()?;
        if embedded.is_none() {
            check_reachable(&rest, &scheduler_http, &target.describe(), &access).await?;
            check_accepted(&rest, &scheduler_http, &target.describe()).await?;
        }

        let config = access.apply_to(ember_session_config());
        let state = ember_session_state(config, ember_runtime_env(None)?)?;
        let ctx = SessionContext::remote_with_state(&format!("df://{host}:{port}"), state).await?;
        // `remote_with_state` upgrades the state for Ballista, which replaces
        // its function lists: Ember's functions go back in afterwards.
        for f in ember_scalar_functions() {
            ctx.register_udf(f.as_ref().clone());
        }
        for f in ember_aggregate_functions() {
            ctx.register_udaf(f.as_ref().clone());
        }
        for (name, f) in ember_table_functions() {
            ctx.register_udtf(name, f);
        }
        ember_udfs::features::json::register_json_planning(&mut ctx.state_ref().write())?;
        let ember = Self {
            ctx,
            scheduler_http,
            rest,
            target,
            _embedded: embedded,
        };
        ember.set_job_status_polling(true)?;
        Ok(ember)
    }

    /// Chooses how the client follows its jobs. Polling (the default here)
    /// learns a job's id as soon as the scheduler accepts it, so progress and
    /// cancellation (Ctrl-C, pipeline timeouts) work from the first second;
    /// Ballista's push mode reports the id only with the first status update,
    /// which its scheduler sends when a stage completes, so a long
    /// single-stage job could be neither followed nor cancelled. Polling
    /// costs up to 50 ms of latency per job: the training driver, which runs
    /// hundreds of short jobs, turns it off.
    pub fn set_job_status_polling(&self, poll: bool) -> Result<()> {
        self.ctx
            .state_ref()
            .write()
            .config_mut()
            .options_mut()
            .set("ballista.client.pull", if poll { "true" } else { "false" })?;
        Ok(())
    }

    /// Whether jobs of this session compress their shuffle files (LZ4, Ballista's
    /// default). Off suits many small jobs whose shuffle is a few megabytes on
    /// local disk, where compressing costs more time than it saves.
    pub fn set_shuffle_compression(&self, compress: bool) -> Result<()> {
        self.ctx
            .state_ref()
            .write()
            .config_mut()
            .options_mut()
            .set(
                "ballista.shuffle.compression.codec",
                if compress { "lz4" } else { "none" },
            )?;
        Ok(())
    }

    /// The DataFusion session: register tables, run SQL, build DataFrames.
    pub fn session(&self) -> &SessionContext {
        &self.ctx
    }

    /// The scheduler's HTTP base address (REST API), e.g. `http://127.0.0.1:50050`.
    pub fn scheduler_http(&self) -> &str {
        &self.scheduler_http
    }

    /// An HTTP client for the scheduler's REST API that carries this
    /// context's token.
    pub fn rest_client(&self) -> &reqwest::Client {
        &self.rest
    }

    /// Where this context runs queries.
    pub fn target(&self) -> &ClusterTarget {
        &self.target
    }
}

/// Asks the scheduler whether it accepts this client's token (or needs
/// none), so a refusal is reported before any query is planned.
async fn check_accepted(rest: &reqwest::Client, scheduler_http: &str, address: &str) -> Result<()> {
    let response = rest
        .get(format!("{scheduler_http}/api/ember/auth-check"))
        .timeout(CONNECT_TIMEOUT)
        .send()
        .await
        .map_err(|e| EmberError::Unreachable {
            address: address.to_string(),
            reason: describe_reqwest_error(&e),
        })?;
    match response.status() {
        status if status.is_success() => Ok(()),
        reqwest::StatusCode::UNAUTHORIZED => Err(EmberError::Unauthenticated {
            address: address.to_string(),
            reason: response.text().await.unwrap_or_default().trim().to_string(),
        }),
        status => Err(EmberError::Unreachable {
            address: address.to_string(),
            reason: format!(
                "it answered {status} to /api/ember/auth-check; is it an Ember scheduler of this version?"
            ),
        }),
    }
}

/// Asks the scheduler's `/healthz`, within [`CONNECT_TIMEOUT`].
async fn check_reachable(
    rest: &reqwest::Client,
    scheduler_http: &str,
    address: &str,
    access: &ClusterAccess,
) -> Result<()> {
    let unreachable = |reason: String| EmberError::Unreachable {
        address: address.to_string(),
        reason,
    };
    let response = rest
        .get(format!("{scheduler_http}/healthz"))
        .timeout(CONNECT_TIMEOUT)
        .send()
        .await
        .map_err(|e| unreachable(describe_connect_error(&e, access)))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(unreachable(format!(
            "it answered {} to /healthz; is it an Ember scheduler?",
            response.status()
        )))
    }
}

/// Why the first request to a scheduler failed, with the likely fix when
/// TLS is what differs between the two sides.
fn describe_connect_error(e: &reqwest::Error, access: &ClusterAccess) -> String {
    let chain = error_chain(e);
    let lower = chain.to_lowercase();
    match &access.tls {
        Some(ca) if lower.contains("certificate") || lower.contains("unknownissuer") => format!(
            "its TLS certificate is not trusted ({chain}): {} ({}) must hold the CA that signed \
             the scheduler's certificate, and the certificate must name the host you connect to",
            crate::tls::TLS_CA_ENV,
            ca.path().display()
        ),
        Some(_)
            if lower.contains("invalidcontenttype")
                || lower.contains("corrupt message")
                || lower.contains("wrong version number") =>
        {
            format!(
                "the TLS handshake failed ({chain}): the scheduler does not serve TLS; unset {} \
                 or start it with --tls-cert and --tls-key",
                crate::tls::TLS_CA_ENV
            )
        }
        None if !e.is_timeout() && !e.is_connect() => format!(
            "{chain}; if the scheduler serves TLS (started with --tls-cert), set {} to the CA \
             file that signed its certificate",
            crate::tls::TLS_CA_ENV
        ),
        _ => describe_reqwest_error(e),
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn describe_reqwest_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())
    } else if e.is_connect() {
        "connection refused or host not found".to_string()
    } else {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_with_a_default_port() {
        assert_eq!(ClusterTarget::parse(None).unwrap(), ClusterTarget::Embedded);
        assert_eq!(
            ClusterTarget::parse(Some("")).unwrap(),
            ClusterTarget::Embedded
        );
        assert_eq!(
            ClusterTarget::parse(Some("df://sched:7000")).unwrap(),
            ClusterTarget::Remote {
                host: "sched".into(),
                port: 7000
            }
        );
        assert_eq!(
            ClusterTarget::parse(Some("df://sched")).unwrap().describe(),
            "df://sched:50050"
        );
    }

    #[test]
    fn bad_addresses_are_named() {
        let err = ClusterTarget::parse(Some("http://sched:50050"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("http://sched:50050") && err.contains("df://"),
            "{err}"
        );
        let err = ClusterTarget::parse(Some("sched:50050"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("sched:50050"), "{err}");
    }
}
