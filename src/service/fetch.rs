//! Fetching revocation data for verification, when the configuration allows it
//! (`verification_fetch`): the certificate's AIA OCSP responder (a POST of an RFC 6960
//! request), then its CRL distribution points, plain `http://` URLs only (as RFC 5280 §4.2.1.13
//! and RFC 6960 expect; the data is signed), each with a timeout and a size bound. Only
//! certificates on a validated path are asked about, so the URLs are their CA's.

use std::time::Duration;

use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::prelude::*;

use crate::pki::der::sequence;
use crate::pki::ocsp::{CertId, CertIdHash, IssuerHashes};
use crate::pki::revinfo::{crl_status, ocsp_status};

/// Largest answer read from a responder or distribution point.
const MAX_FETCHED_BYTES: usize = 16 << 20;
/// URLs tried per certificate.
const MAX_URLS: usize = 4;
const ID_AD_OCSP: &str = "1.3.6.1.5.5.7.48.1";

/// The `http://` URLs of `cert`'s AIA OCSP responders and CRL distribution points.
fn urls(cert: &X509Certificate<'_>) -> (Vec<String>, Vec<String>) {
    let (mut ocsp, mut crl) = (Vec::new(), Vec::new());
    let http = |g: &GeneralName<'_>| match g {
        GeneralName::URI(u) if u.starts_with("http://") => Some(u.to_string()),
        _ => None,
    };
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::AuthorityInfoAccess(aia) => {
                for d in &aia.accessdescs {
                    if d.access_method.to_id_string() == ID_AD_OCSP {
                        ocsp.extend(http(&d.access_location));
                    }
                }
            }
            ParsedExtension::CRLDistributionPoints(points) => {
                for p in points.iter() {
                    if let Some(DistributionPointName::FullName(names)) = &p.distribution_point {
                        crl.extend(names.iter().filter_map(http));
                    }
                }
            }
            _ => {}
        }
    }
    ocsp.truncate(MAX_URLS);
    crl.truncate(MAX_URLS);
    (ocsp, crl)
}

async fn read_bounded(resp: reqwest::Response) -> Option<Vec<u8>> {
    if !resp.status().is_success()
        || resp
            .content_length()
            .is_some_and(|n| n > MAX_FETCHED_BYTES as u64)
    {
        return None;
    }
    let mut resp = resp;
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.ok()? {
        if body.len() + chunk.len() > MAX_FETCHED_BYTES {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    Some(body)
}

/// The status of `cert` (issued by `issuer`, both DER) at `at` from its CA's responder or CRL,
/// with where it came from; `None` when nothing answered usably within `timeout` per URL.
pub(super) async fn fetch_status(
    cert: &[u8],
    issuer: &[u8],
    at: i64,
    now: i64,
    timeout: Duration,
) -> Option<(Option<i64>, &'static str)> {
    let (_, c) = X509Certificate::from_der(cert).ok()?;
    let (_, i) = X509Certificate::from_der(issuer).ok()?;
    let (ocsp_urls, crl_urls) = urls(&c);
    // Plain HTTP only; TLS is configured (no roots) because the client needs a provider.
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .ok()?
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .ok()?;
    if !ocsp_urls.is_empty() {
        let hashes = IssuerHashes::new(
            i.subject().as_raw(),
            &i.public_key().subject_public_key.data,
        );
        let id = CertId::new(CertIdHash::Sha1, &hashes, c.raw_serial());
        // OCSPRequest { tbsRequest { requestList { Request { reqCert } } } }
        let request = sequence(&[sequence(&[sequence(&[sequence(std::slice::from_ref(
            &id.der,
        ))])])]);
        for url in &ocsp_urls {
            let sent = client
                .post(url)
                .header("content-type", "application/ocsp-request")
                .body(request.clone())
                .send()
                .await;
            if let Ok(resp) = sent {
                if let Some(body) = read_bounded(resp).await {
                    if let Some(s) = ocsp_status(&body, cert, issuer, at, now) {
                        return Some((s, "fetched OCSP"));
                    }
                }
            }
        }
    }
    for url in &crl_urls {
        if let Ok(resp) = client.get(url).send().await {
            if let Some(body) = read_bounded(resp).await {
                // A distribution point may serve PEM as well as DER.
                let der = match ::pem::parse(&body) {
                    Ok(p) => p.into_contents(),
                    Err(_) => body,
                };
                if let Some(s) = crl_status(&der, cert, issuer, at, now) {
                    return Some((s, "fetched CRL"));
                }
            }
        }
    }
    None
}
