//! TLS and mutual TLS for the OSB listener, with rustls and the ring
//! provider (no OpenSSL anywhere).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::Context as _;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

/// Where the server's certificate and key are, and optionally the CA that
/// client certificates must chain to (which makes them mandatory).
#[derive(Clone, Debug)]
pub struct TlsSettings {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// PEM CA bundle for client certificates (mTLS).
    pub client_ca: Option<PathBuf>,
}

fn certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading certificates from {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing certificates in {}", path.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "no certificate found in {}",
        path.display()
    );
    Ok(certs)
}

/// Builds the rustls server configuration.
pub(crate) fn server_config(s: &TlsSettings) -> anyhow::Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certs(&s.cert)?;
    let key = PrivateKeyDer::from_pem_file(&s.key)
        .with_context(|| format!("reading the private key in {}", s.key.display()))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match &s.client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in certs(ca)? {
                roots
                    .add(c)
                    .with_context(|| format!("adding client CA from {}", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .context("building the client certificate verifier")?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder
        .with_single_cert(chain, key)
        .context("the certificate and key do not match")?;
    // HTTP/1.1 only: the edge's header and idle timeouts are HTTP/1's.
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// The TLS configuration in force, rebuilt whole from the files on reload:
/// each new connection takes the configuration current when it arrives, and
/// connections already open keep the one they were accepted with.
#[derive(Debug)]
pub struct LiveTls {
    settings: TlsSettings,
    config: RwLock<Arc<rustls::ServerConfig>>,
}

impl LiveTls {
    /// Loads the files now; an error here stops the broker from starting.
    pub fn new(settings: TlsSettings) -> anyhow::Result<Self> {
        let config = server_config(&settings)?;
        Ok(LiveTls {
            settings,
            config: RwLock::new(Arc::new(config)),
        })
    }

    /// The files it reads (certificate, key, client CA).
    pub(crate) fn files(&self) -> Vec<PathBuf> {
        let s = &self.settings;
        let mut v = vec![s.cert.clone(), s.key.clone()];
        v.extend(s.client_ca.clone());
        v
    }

    /// Whether client certificates are required (mTLS).
    pub fn mutual(&self) -> bool {
        self.settings.client_ca.is_some()
    }

    /// Rereads the files; on an error the configuration in force stays.
    pub(crate) fn reload(&self) -> anyhow::Result<()> {
        let fresh = server_config(&self.settings)?;
        *self.config.write().expect("tls lock") = Arc::new(fresh);
        Ok(())
    }

    /// An acceptor over the configuration in force.
    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.read().expect("tls lock").clone())
    }
}
