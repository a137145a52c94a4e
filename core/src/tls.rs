//! TLS between the client, the scheduler and the executors.
//!
//! The auth token (see [`crate::auth`]) decides who may use a cluster; TLS
//! keeps the token and the data private on the way, and proves to each
//! caller that it reached the cluster's own processes. Ember uses one private
//! certificate authority per cluster, the way Spark's and Kafka's clusters
//! are usually set up:
//!
//! * the scheduler and every executor present a certificate signed by the
//!   CA, naming the host the others reach it by (`--external-host`), given
//!   as `--tls-cert` / `--tls-key` (or `EMBER_TLS_CERT` / `EMBER_TLS_KEY`);
//! * every process that connects (the `ember` client, and the scheduler and
//!   executors, which also call each other) trusts that CA, given as
//!   `--tls-ca` or `EMBER_TLS_CA`.
//!
//! One certificate may serve several processes: give it every host name (and
//! IP address) they are reached by. `docs/engine.md` shows how to make the CA
//! and the certificates with `openssl`.
//!
//! Servers: the executors' gRPC and Arrow Flight servers use tonic's TLS
//! ([`ServerIdentity::tonic_config`]); the scheduler's one port, which serves
//! gRPC and REST through axum, uses a TLS listener over the same rustls
//! ([`TlsListener`]). Both offer HTTP/2 by ALPN; the scheduler also HTTP/1.1,
//! for REST clients such as curl. Clients: Ballista opens its own gRPC
//! connections with `http://` addresses, so Ember's endpoint rewrite (see
//! [`crate::access::ClusterAccess`]) turns each into an `https://` endpoint
//! that trusts the cluster's CA.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::server::TlsStream;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::error::{EmberError, Result};

/// The environment variable naming the server's certificate (PEM).
pub const TLS_CERT_ENV: &str = "EMBER_TLS_CERT";
/// The environment variable naming the server's private key (PEM).
pub const TLS_KEY_ENV: &str = "EMBER_TLS_KEY";
/// The environment variable naming the CA certificate(s) a process trusts.
pub const TLS_CA_ENV: &str = "EMBER_TLS_CA";

/// How long a caller may take to finish the TLS handshake on the scheduler's
/// port before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The TLS flags of `ember-scheduler` and `ember-executor`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsFlags {
    /// Certificate (PEM) this process presents on its ports, signed by the
    /// cluster's CA and naming the host others reach it by (its
    /// --external-host). With it, every port serves TLS only.
    #[arg(long, env = TLS_CERT_ENV, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// Private key (PEM) of --tls-cert.
    #[arg(long, env = TLS_KEY_ENV, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// CA certificate(s) (PEM) that signed the cluster's certificates: this
    /// process trusts them when it calls the scheduler or other executors.
    /// Required with --tls-cert.
    #[arg(long, env = TLS_CA_ENV)]
    pub tls_ca: Option<PathBuf>,
}

/// What [`TlsFlags`] resolve to.
#[derive(Debug, Clone, Default)]
pub struct ProcessTls {
    /// The certificate this process's servers present.
    pub identity: Option<ServerIdentity>,
    /// The CA its connections trust.
    pub ca: Option<TrustedCa>,
}

impl TlsFlags {
    /// Reads and checks the files. A server of a TLS cluster also calls the
    /// cluster's other processes, so a certificate without a CA (or a CA
    /// without a certificate) is an error.
    pub fn load(&self) -> Result<ProcessTls> {
        let identity = ServerIdentity::resolve(self.tls_cert.as_deref(), self.tls_key.as_deref())?;
        let ca = match &self.tls_ca {
            Some(path) => Some(TrustedCa::from_file(path)?),
            None => None,
        };
        match (&identity, &ca) {
            (Some(identity), None) => Err(EmberError::Config(format!(
                "TLS: --tls-cert {} given without --tls-ca (or {TLS_CA_ENV}): the CA is needed to \
                 call the cluster's other processes",
                identity.cert_path().display()
            ))),
            (None, Some(ca)) => Err(EmberError::Config(format!(
                "TLS: --tls-ca {} given without --tls-cert and --tls-key: in a TLS cluster every \
                 process serves TLS",
                ca.path().display()
            ))),
            _ => Ok(ProcessTls { identity, ca }),
        }
    }
}

/// The certificate authority a process trusts for the cluster's servers.
#[derive(Clone)]
pub struct TrustedCa {
    path: PathBuf,
    pem: Arc<[u8]>,
}

impl std::fmt::Debug for TrustedCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TrustedCa({})", self.path.display())
    }
}

impl TrustedCa {
    /// Reads the CA certificate(s) in `path` (PEM), checking that there is at
    /// least one and that each parses.
    pub fn from_file(path: &Path) -> Result<Self> {
        let pem = std::fs::read(path).map_err(|e| EmberError::io(path.display(), e))?;
        let certs = read_certificates(&pem, path)?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| tls_error(path, format!("not a usable CA certificate: {e}")))?;
        }
        Ok(Self {
            path: path.to_path_buf(),
            pem: Arc::from(pem),
        })
    }

    /// The CA a process trusts: `flag` when given (a command-line flag), else
    /// the file named by `EMBER_TLS_CA`; `None` when neither is set, and the
    /// process then connects without TLS.
    pub fn resolve(flag: Option<&Path>) -> Result<Option<Self>> {
        match flag {
            Some(path) => Self::from_file(path).map(Some),
            None => match env_path(TLS_CA_ENV) {
                Some(path) => Self::from_file(&path).map(Some),
                None => Ok(None),
            },
        }
    }

    /// The file the CA was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// tonic's client TLS settings: trust this CA only.
    pub fn tonic_config(&self) -> ClientTlsConfig {
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&*self.pem))
    }

    /// The CA for reqwest, Ember's REST client.
    pub fn reqwest_certificates(&self) -> Result<Vec<reqwest::Certificate>> {
        reqwest::Certificate::from_pem_bundle(&self.pem)
            .map_err(|e| tls_error(&self.path, format!("not a usable CA certificate: {e}")))
    }
}

/// The certificate and private key a server presents.
#[derive(Clone)]
pub struct ServerIdentity {
    cert_path: PathBuf,
    cert_pem: Arc<[u8]>,
    key_pem: Arc<[u8]>,
}

impl std::fmt::Debug for ServerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServerIdentity({}, <key>)", self.cert_path.display())
    }
}

impl ServerIdentity {
    /// Reads a certificate chain (PEM, the server's own certificate first)
    /// and its private key (PEM: PKCS#8, PKCS#1 or SEC1), checking that the
    /// key is the certificate's.
    pub fn from_files(cert: &Path, key: &Path) -> Result<Self> {
        let cert_pem = std::fs::read(cert).map_err(|e| EmberError::io(cert.display(), e))?;
        let key_pem = std::fs::read(key).map_err(|e| EmberError::io(key.display(), e))?;
        let identity = Self {
            cert_path: cert.to_path_buf(),
            cert_pem: Arc::from(cert_pem),
            key_pem: Arc::from(key_pem),
        };
        // Building the server config proves the pair usable now rather than
        // at the first connection.
        identity.rustls_config(key)?;
        Ok(identity)
    }

    /// The identity a server runs with: from the flags when given, else from
    /// `EMBER_TLS_CERT` / `EMBER_TLS_KEY`; `None` when neither is set. One
    /// without the other is an error.
    pub fn resolve(cert: Option<&Path>, key: Option<&Path>) -> Result<Option<Self>> {
        let cert = cert
            .map(Path::to_path_buf)
            .or_else(|| env_path(TLS_CERT_ENV));
        let key = key.map(Path::to_path_buf).or_else(|| env_path(TLS_KEY_ENV));
        match (cert, key) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => Self::from_files(&cert, &key).map(Some),
            (Some(cert), None) => Err(EmberError::Config(format!(
                "TLS certificate {} given without its private key: add --tls-key (or {TLS_KEY_ENV})",
                cert.display()
            ))),
            (None, Some(key)) => Err(EmberError::Config(format!(
                "TLS private key {} given without its certificate: add --tls-cert (or {TLS_CERT_ENV})",
                key.display()
            ))),
        }
    }

    /// The certificate file.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// tonic's server TLS settings (the executors' gRPC and Flight servers).
    pub fn tonic_config(&self) -> ServerTlsConfig {
        ServerTlsConfig::new().identity(Identity::from_pem(&*self.cert_pem, &*self.key_pem))
    }

    /// A TLS acceptor offering HTTP/2 and HTTP/1.1 (the scheduler's port).
    pub fn acceptor(&self) -> Result<TlsAcceptor> {
        Ok(TlsAcceptor::from(Arc::new(
            self.rustls_config(&self.cert_path)?,
        )))
    }

    fn rustls_config(&self, key_path: &Path) -> Result<rustls::ServerConfig> {
        let chain = read_certificates(&self.cert_pem, &self.cert_path)?;
        let key = PrivateKeyDer::from_pem_slice(&self.key_pem).map_err(|e| {
            tls_error(
                key_path,
                format!("no usable private key (PEM PKCS#8, PKCS#1 or SEC1): {e}"),
            )
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error(&self.cert_path, e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| {
                tls_error(
                    &self.cert_path,
                    format!("the certificate and its key do not form a usable pair: {e}"),
                )
            })?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// A listener that completes each connection's TLS handshake before handing
/// it to axum: the scheduler's port with TLS. Handshakes run concurrently, so
/// a slow or silent caller delays no one else, and one that does not finish
/// within [`HANDSHAKE_TIMEOUT`] is dropped.
pub struct TlsListener {
    local_addr: SocketAddr,
    accepted: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    accept_loop: JoinHandle<()>,
}

impl TlsListener {
    /// Serves TLS on `listener` with `identity`.
    pub fn new(listener: TcpListener, identity: &ServerIdentity) -> Result<Self> {
        let local_addr = listener
            .local_addr()
            .map_err(|e| EmberError::io("scheduler listener", e))?;
        let acceptor = identity.acceptor()?;
        let (sender, accepted) = mpsc::channel(64);
        let accept_loop = tokio::spawn(accept_loop(listener, acceptor, sender));
        Ok(Self {
            local_addr,
            accepted,
            accept_loop,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(accepted) => accepted,
            // The accept loop ends only with the listener itself.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    accepted: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(connection) => connection,
            Err(e) => {
                // Out of file descriptors and the like: wait, as axum does.
                log::warn!("scheduler listener: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let accepted = accepted.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = accepted.send((tls, peer)).await;
                }
                Ok(Err(e)) => log::debug!("TLS handshake with {peer} failed: {e}"),
                Err(_) => log::debug!(
                    "TLS handshake with {peer} not finished within {} s",
                    HANDSHAKE_TIMEOUT.as_secs()
                ),
            }
        });
    }
}

fn read_certificates(pem: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| tls_error(path, format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(tls_error(
            path,
            "no certificate in it (expected PEM: -----BEGIN CERTIFICATE-----)".to_string(),
        ));
    }
    Ok(certs)
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
}

fn tls_error(path: &Path, reason: String) -> EmberError {
    EmberError::Config(format!("TLS: {}: {reason}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn files_that_are_not_certificates_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = write(dir.path(), "ca.pem", "hello\n");
        let err = TrustedCa::from_file(&garbage).unwrap_err().to_string();
        assert!(
            err.contains("ca.pem") && err.contains("no certificate"),
            "{err}"
        );
        let broken = write(
            dir.path(),
            "broken.pem",
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        );
        let err = TrustedCa::from_file(&broken).unwrap_err().to_string();
        assert!(err.contains("broken.pem"), "{err}");
        let err = TrustedCa::from_file(&dir.path().join("missing.pem"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.pem"), "{err}");
    }

    #[test]
    fn a_certificate_without_its_key_is_an_error_naming_the_flag() {
        let err = ServerIdentity::resolve(Some(Path::new("/etc/ember/cert.pem")), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/etc/ember/cert.pem") && err.contains("--tls-key"),
            "{err}"
        );
    }
}
