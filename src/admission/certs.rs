//! The webhook's TLS: its own CA and serving certificate, kept in a Secret so every replica
//! serves the same one, renewed well before expiry, with the CA bundle the API server trusts.

use anyhow::Context as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use std::collections::BTreeMap;
use time::{Duration, OffsetDateTime};

pub const SECRET_NAME: &str = "atlantiplex-operator-webhook-tls";
const CA_VALIDITY: Duration = Duration::days(3650);
const SERVING_VALIDITY: Duration = Duration::days(365);
/// Renew the serving certificate this long before it expires.
const SERVING_RENEW_BEFORE: Duration = Duration::days(30);
/// Start a new CA this long before the old one expires; both are trusted meanwhile.
const CA_RENEW_BEFORE: Duration = Duration::days(365);

/// What the webhook serves and what the API server must trust.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServingCert {
    pub cert_pem: String,
    pub key_pem: String,
    /// Every CA certificate the API server should trust (PEM, concatenated).
    pub ca_bundle_pem: String,
}

/// The Secret's contents: the serving pair, the signing CA and the bundle.
#[derive(Clone, Debug, Default)]
struct Stored {
    serving: Option<ServingCert>,
    ca_cert_pem: Option<String>,
    ca_key_pem: Option<String>,
}

/// What to do with the stored certificates.
#[derive(Debug, PartialEq, Eq)]
pub enum Renewal {
    Keep,
    NewServing(&'static str),
    NewCa(&'static str),
}

/// Pure: whether the stored certificates still do, given the names to serve and the time.
pub fn renewal(
    ca_cert_pem: Option<&str>,
    serving_cert_pem: Option<&str>,
    names: &[String],
    now: OffsetDateTime,
) -> Renewal {
    let Some(ca) = ca_cert_pem.and_then(|p| parse(p).ok()) else { return Renewal::NewCa("no CA yet") };
    if ca.not_after - CA_RENEW_BEFORE < now {
        return Renewal::NewCa("CA expires within a year");
    }
    let Some(serving) = serving_cert_pem.and_then(|p| parse(p).ok()) else {
        return Renewal::NewServing("no serving certificate yet");
    };
    if serving.not_after - SERVING_RENEW_BEFORE < now {
        return Renewal::NewServing("serving certificate expires within 30 days");
    }
    if names.iter().any(|n| !serving.names.contains(n)) {
        return Renewal::NewServing("webhook address changed");
    }
    Renewal::Keep
}

struct Parsed {
    not_after: OffsetDateTime,
    names: Vec<String>,
}

fn parse(pem: &str) -> anyhow::Result<Parsed> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| anyhow::anyhow!("bad PEM: {e}"))?;
    let cert = pem.parse_x509().map_err(|e| anyhow::anyhow!("bad certificate: {e}"))?;
    let not_after = OffsetDateTime::from_unix_timestamp(cert.validity().not_after.timestamp())?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(d) => names.push(d.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(ip) if ip.len() == 4 => {
                    names.push(std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]).to_string())
                }
                _ => {}
            }
        }
    }
    Ok(Parsed { not_after, names })
}

fn new_ca(now: OffsetDateTime) -> anyhow::Result<(String, String)> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, "atlantiplex-operator webhook CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = now - Duration::hours(1);
    params.not_after = now + CA_VALIDITY;
    Ok((params.self_signed(&key)?.pem(), key.serialize_pem()))
}

fn new_serving(
    ca_cert_pem: &str,
    ca_key_pem: &str,
    names: &[String],
    now: OffsetDateTime,
) -> anyhow::Result<(String, String)> {
    let issuer = Issuer::from_ca_cert_pem(ca_cert_pem, KeyPair::from_pem(ca_key_pem)?)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names.to_vec())?;
    params.distinguished_name.push(DnType::CommonName, names.first().cloned().unwrap_or_default());
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = now - Duration::hours(1);
    params.not_after = now + SERVING_VALIDITY;
    Ok((params.signed_by(&key, &issuer)?.pem(), key.serialize_pem()))
}

/// CA certificates in a bundle that have not expired.
fn unexpired(bundle: &str, now: OffsetDateTime) -> Vec<String> {
    bundle
        .split_inclusive("-----END CERTIFICATE-----")
        .map(str::trim)
        .filter(|pem| pem.starts_with("-----BEGIN CERTIFICATE-----"))
        .filter(|pem| parse(pem).is_ok_and(|p| p.not_after > now))
        .map(|pem| format!("{pem}\n"))
        .collect()
}

/// Pure: the stored certificates after renewal (unchanged when nothing is due).
fn renew(stored: &Stored, names: &[String], now: OffsetDateTime) -> anyhow::Result<Option<Stored>> {
    let decision =
        renewal(stored.ca_cert_pem.as_deref(), stored.serving.as_ref().map(|s| s.cert_pem.as_str()), names, now);
    let (ca_cert, ca_key, old_bundle) = match decision {
        Renewal::Keep => return Ok(None),
        Renewal::NewCa(why) => {
            tracing::info!(why, "creating a new webhook CA");
            let (cert, key) = new_ca(now)?;
            // Keep trusting the previous CA until it expires: replicas may still serve its certificate.
            (cert, key, stored.serving.as_ref().map(|s| s.ca_bundle_pem.clone()).unwrap_or_default())
        }
        Renewal::NewServing(why) => {
            tracing::info!(why, "issuing a new webhook serving certificate");
            let bundle = stored.serving.as_ref().map(|s| s.ca_bundle_pem.clone()).unwrap_or_default();
            (stored.ca_cert_pem.clone().unwrap_or_default(), stored.ca_key_pem.clone().unwrap_or_default(), bundle)
        }
    };
    let (cert_pem, key_pem) = new_serving(&ca_cert, &ca_key, names, now)?;
    let mut bundle = vec![format!("{}\n", ca_cert.trim())];
    bundle.extend(unexpired(&old_bundle, now).into_iter().filter(|c| c.trim() != ca_cert.trim()));
    Ok(Some(Stored {
        serving: Some(ServingCert { cert_pem, key_pem, ca_bundle_pem: bundle.concat() }),
        ca_cert_pem: Some(ca_cert),
        ca_key_pem: Some(ca_key),
    }))
}

fn from_secret(secret: &Secret) -> Stored {
    let data = secret.data.clone().unwrap_or_default();
    let text = |k: &str| data.get(k).and_then(|b| String::from_utf8(b.0.clone()).ok());
    let serving = match (text("tls.crt"), text("tls.key"), text("ca.crt")) {
        (Some(cert_pem), Some(key_pem), Some(ca_bundle_pem)) => Some(ServingCert { cert_pem, key_pem, ca_bundle_pem }),
        _ => None,
    };
    Stored { serving, ca_cert_pem: text("ca-signer.crt"), ca_key_pem: text("ca-signer.key") }
}

fn to_secret(namespace: &str, stored: &Stored, resource_version: Option<String>) -> Secret {
    let serving = stored.serving.clone().unwrap_or_else(|| ServingCert {
        cert_pem: String::new(),
        key_pem: String::new(),
        ca_bundle_pem: String::new(),
    });
    let entries = [
        ("tls.crt", serving.cert_pem),
        ("tls.key", serving.key_pem),
        ("ca.crt", serving.ca_bundle_pem),
        ("ca-signer.crt", stored.ca_cert_pem.clone().unwrap_or_default()),
        ("ca-signer.key", stored.ca_key_pem.clone().unwrap_or_default()),
    ];
    Secret {
        metadata: ObjectMeta {
            name: Some(SECRET_NAME.into()),
            namespace: Some(namespace.into()),
            resource_version,
            labels: Some(BTreeMap::from([("app.kubernetes.io/name".into(), "atlantiplex-operator".into())])),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(entries.into_iter().map(|(k, v)| (k.to_string(), ByteString(v.into_bytes()))).collect()),
        ..Default::default()
    }
}

/// Reads the Secret, renews what is due, and writes it back; replicas racing on it converge
/// through optimistic concurrency (the loser re-reads the winner's certificates).
pub async fn ensure(client: &Client, namespace: &str, names: &[String]) -> anyhow::Result<ServingCert> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    for _ in 0..5 {
        let existing =
            secrets.get_opt(SECRET_NAME).await.with_context(|| format!("reading Secret {namespace}/{SECRET_NAME}"))?;
        let stored = existing.as_ref().map(from_secret).unwrap_or_default();
        let Some(renewed) = renew(&stored, names, OffsetDateTime::now_utc())? else {
            if let Some(serving) = stored.serving {
                return Ok(serving);
            }
            anyhow::bail!("Secret {namespace}/{SECRET_NAME} has no serving certificate");
        };
        let write = match &existing {
            Some(secret) => {
                let rv = secret.metadata.resource_version.clone();
                secrets.replace(SECRET_NAME, &PostParams::default(), &to_secret(namespace, &renewed, rv)).await
            }
            None => {
                ensure_namespace(client, namespace).await?;
                secrets.create(&PostParams::default(), &to_secret(namespace, &renewed, None)).await
            }
        };
        match write {
            Ok(_) => return renewed.serving.context("renewal produced no certificate"),
            Err(kube::Error::Api(s)) if s.code == 409 => continue, // another replica wrote first
            Err(e) => return Err(e).with_context(|| format!("writing Secret {namespace}/{SECRET_NAME}")),
        }
    }
    anyhow::bail!("Secret {namespace}/{SECRET_NAME} kept changing while renewing it")
}

/// The operator's namespace exists in a Helm install; on a bare development cluster the
/// operator creates it.
async fn ensure_namespace(client: &Client, namespace: &str) -> anyhow::Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    if api.get_opt(namespace).await?.is_some() {
        return Ok(());
    }
    let ns =
        Namespace { metadata: ObjectMeta { name: Some(namespace.into()), ..Default::default() }, ..Default::default() };
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating namespace {namespace}")),
    }
}

/// A certificate given in files (cert-manager or any other issuer).
pub fn from_dir(dir: &std::path::Path) -> anyhow::Result<ServingCert> {
    let read =
        |f: &str| std::fs::read_to_string(dir.join(f)).with_context(|| format!("reading {}", dir.join(f).display()));
    Ok(ServingCert {
        cert_pem: read("tls.crt")?,
        key_pem: read("tls.key")?,
        ca_bundle_pem: read("ca.crt").unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["webhook.atlantiplex-system.svc".into(), "127.0.0.1".into()]
    }

    #[test]
    fn first_start_creates_ca_and_serving_certificate_then_keeps_them() {
        let now = OffsetDateTime::now_utc();
        let stored = renew(&Stored::default(), &names(), now).unwrap().unwrap();
        let serving = stored.serving.clone().unwrap();
        assert!(serving.ca_bundle_pem.contains("BEGIN CERTIFICATE"));
        assert_eq!(renew(&stored, &names(), now + Duration::days(300)).unwrap().map(|_| ()), None);
    }

    #[test]
    fn serving_certificate_renewed_30_days_before_expiry_with_the_same_ca() {
        let now = OffsetDateTime::now_utc();
        let stored = renew(&Stored::default(), &names(), now).unwrap().unwrap();
        let later = now + Duration::days(340);
        let renewed = renew(&stored, &names(), later).unwrap().expect("renewed");
        assert_eq!(renewed.ca_cert_pem, stored.ca_cert_pem);
        assert_ne!(renewed.serving.as_ref().unwrap().cert_pem, stored.serving.as_ref().unwrap().cert_pem);
        assert_eq!(
            renewal(stored.ca_cert_pem.as_deref(), Some(&renewed.serving.unwrap().cert_pem), &names(), later),
            Renewal::Keep
        );
    }

    #[test]
    fn new_address_gets_a_new_certificate() {
        let now = OffsetDateTime::now_utc();
        let stored = renew(&Stored::default(), &names(), now).unwrap().unwrap();
        let moved = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        assert_eq!(
            renewal(stored.ca_cert_pem.as_deref(), Some(&stored.serving.unwrap().cert_pem), &moved, now),
            Renewal::NewServing("webhook address changed")
        );
    }

    #[test]
    fn ca_rotation_keeps_trusting_the_old_ca_until_it_expires() {
        let now = OffsetDateTime::now_utc();
        let stored = renew(&Stored::default(), &names(), now).unwrap().unwrap();
        let later = now + Duration::days(3400);
        let rotated = renew(&stored, &names(), later).unwrap().expect("new CA");
        assert_ne!(rotated.ca_cert_pem, stored.ca_cert_pem);
        let bundle = rotated.serving.unwrap().ca_bundle_pem;
        assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 2, "new and old CA: {bundle}");
    }
}
