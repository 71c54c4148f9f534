//! TLS between nodes (optional): mutual TLS under a private CA. Every node
//! presents its certificate (PEM chain and key) and accepts only peers
//! whose certificate the cluster's CA signed; the name checked on the
//! server side is a fixed one (`cluster_tls_name`, which every node's
//! certificate carries as a DNS name), not the dialed address, so nodes
//! can move between addresses without new certificates. The cookie is
//! still required on top.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Where the PEM files are, and the name every certificate carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// This node's certificate chain (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM, PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// The cluster's CA certificate(s) (PEM): peers must chain to it.
    pub ca: PathBuf,
    /// The DNS name every node's certificate carries.
    pub name: String,
}

/// Why the TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {message}")]
    Read {
        what: &'static str,
        path: String,
        message: String,
    },
    #[error("invalid TLS settings: {0}")]
    Invalid(String),
}

/// The acceptor and connector built from [`TlsFiles`].
#[derive(Clone)]
pub struct Tls {
    pub acceptor: TlsAcceptor,
    pub connector: TlsConnector,
    pub name: ServerName<'static>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("name", &self.name).finish()
    }
}

fn read_err(what: &'static str, path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Read {
        what,
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| read_err(what, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read_err(what, path, e))?;
    if certs.is_empty() {
        return Err(read_err(what, path, "no certificate in the file"));
    }
    Ok(certs)
}

impl Tls {
    /// Reads the files and builds both sides (mutual TLS under `ca`).
    pub fn load(files: &TlsFiles) -> Result<Tls, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let chain = certs("cluster_tls_cert", &files.cert)?;
        let key = PrivateKeyDer::from_pem_file(&files.key)
            .map_err(|e| read_err("cluster_tls_key", &files.key, e))?;
        let mut roots = RootCertStore::empty();
        for ca in certs("cluster_tls_ca", &files.ca)? {
            roots
                .add(ca)
                .map_err(|e| TlsError::Invalid(format!("cluster_tls_ca: {e}")))?;
        }
        let roots = Arc::new(roots);
        let invalid = |e: rustls::Error| TlsError::Invalid(e.to_string());
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| TlsError::Invalid(format!("client verifier: {e}")))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(invalid)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(invalid)?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(invalid)?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(invalid)?;
        let name = ServerName::try_from(files.name.clone())
            .map_err(|e| TlsError::Invalid(format!("cluster_tls_name {}: {e}", files.name)))?;
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
            name,
        })
    }
}
