//! Per-run PKI for the control plane: the cluster CA, the apiserver's serving certificate, client
//! certificates (admin, controller-manager, any user), the service-account signing key, and a
//! second CA for the apiserver's own client certificate towards admission webhooks.

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::path::Path;

/// A certificate and its private key, both PEM.
#[derive(Clone, Debug)]
pub struct CertPair {
    pub cert_pem: String,
    pub key_pem: String,
}

/// The cluster CA. It signs serving and client certificates; the apiserver trusts it for both.
pub struct Ca {
    pub pair: CertPair,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    /// The cluster CA.
    pub fn generate() -> Result<Self> {
        Self::generate_named("atlantiplex-devcluster-ca")
    }

    /// A CA with its own name, e.g. for the admission client certificate.
    pub fn generate_named(common_name: &str) -> Result<Self> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name = dn(common_name, &[]);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let cert = params.self_signed(&key)?;
        let pair = CertPair { cert_pem: cert.pem(), key_pem: key.serialize_pem() };
        Ok(Self { pair, issuer: Issuer::new(params, key) })
    }

    /// Reloads a CA written by [`Ca::write`], to mint more client certificates later.
    pub fn load(dir: &Path) -> Result<Self> {
        let cert_pem = std::fs::read_to_string(dir.join("ca.crt")).context("reading ca.crt")?;
        let key_pem = std::fs::read_to_string(dir.join("ca.key")).context("reading ca.key")?;
        let key = KeyPair::from_pem(&key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)?;
        Ok(Self { pair: CertPair { cert_pem, key_pem }, issuer })
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        write_private(&dir.join("ca.crt"), &self.pair.cert_pem)?;
        write_private(&dir.join("ca.key"), &self.pair.key_pem)
    }

    /// A serving certificate valid for the given DNS names and IP addresses.
    pub fn serving(&self, common_name: &str, sans: &[&str]) -> Result<CertPair> {
        let mut params = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
        params.distinguished_name = dn(common_name, &[]);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        self.sign(params)
    }

    /// A client certificate: Kubernetes reads the user from CN and the groups from O.
    /// rcgen keeps one value per attribute type, so the second group is written under the same
    /// OID as a custom attribute; more than two groups cannot be expressed and are refused.
    pub fn client(&self, user: &str, groups: &[&str]) -> Result<CertPair> {
        anyhow::ensure!(
            groups.len() <= MAX_CLIENT_CERT_GROUPS,
            "a client certificate carries at most {MAX_CLIENT_CERT_GROUPS} groups, got {}",
            groups.len()
        );
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = dn(user, groups);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        self.sign(params)
    }

    fn sign(&self, params: CertificateParams) -> Result<CertPair> {
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(CertPair { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }
}

/// The key pair the apiserver signs service-account tokens with (ECDSA P-256, ES256).
pub fn service_account_keys() -> Result<CertPair> {
    let key = KeyPair::generate()?;
    Ok(CertPair { cert_pem: key.public_key_pem(), key_pem: key.serialize_pem() })
}

pub const MAX_CLIENT_CERT_GROUPS: usize = 2;
const ORGANIZATION_OID: [u64; 4] = [2, 5, 4, 10];

fn dn(common_name: &str, organizations: &[&str]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    if let Some(first) = organizations.first() {
        dn.push(DnType::OrganizationName, *first);
    }
    if let Some(second) = organizations.get(1) {
        dn.push(DnType::CustomDnType(ORGANIZATION_OID.to_vec()), *second);
    }
    dn
}

/// Writes a file readable only by its owner: these are private keys and admin credentials.
pub fn write_private(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}
