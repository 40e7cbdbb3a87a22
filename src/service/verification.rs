//! Verification of incoming detached CMS/CAdES signatures: basic validation
//! (`pki::validate`) against kyso's root and the given trust anchors, then the signing
//! certificate's status — from kyso's own records when one of its CAs issued it — and a report
//! with ETSI EN 319 102-1 indications.

use serde::Serialize;
use x509_parser::prelude::*;

use super::{now, Service, ServiceError};
use crate::pki::ocsp::CertStatus;
use crate::pki::signed_data::SignedData;
use crate::pki::validate::{self, Indication, Signed, SubIndication};

/// Largest CMS signature accepted.
pub const MAX_SIGNATURE_BYTES: usize = 1 << 20;

#[derive(Serialize, Debug, utoipa::ToSchema)]
pub struct Signer {
    pub subject: String,
    pub common_name: Option<String>,
    /// CCCD, from `UID=CCCD:…`.
    pub citizen_id: Option<String>,
    /// Tax code, from `UID=MST:…`.
    pub tax_code: Option<String>,
    pub organization: Option<String>,
    pub serial: String,
    pub issuer: String,
}

#[derive(Serialize, Debug, utoipa::ToSchema)]
pub struct Revocation {
    /// `good`, `revoked` or `unknown`.
    pub status: &'static str,
    /// Where the status came from: `kyso` (its own records), or `none`.
    pub source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
}

#[derive(Serialize, Debug, utoipa::ToSchema)]
pub struct SignatureReport {
    #[schema(value_type = String)]
    pub indication: Indication,
    #[schema(value_type = Option<String>)]
    pub sub_indication: Option<SubIndication>,
    /// `CAdES`, `CMS`, `PAdES`, or `RFC3161` (a document time-stamp).
    pub format: &'static str,
    /// `CAdES-B-B`, `CAdES-B-T`, `PAdES-B-B` … `PAdES-B-LTA`, `CMS`, or `document time-stamp`.
    pub level: &'static str,
    pub signer: Option<Signer>,
    /// The signing time the signer claims (signed attribute), Unix seconds; not proof.
    pub claimed_signing_time: Option<i64>,
    /// The time the signature was validated at, and what fixed it.
    pub validation_time: i64,
    pub validation_time_source: &'static str,
    /// Subjects from the signer up to the trust anchor.
    pub chain: Vec<String>,
    pub revocation: Option<Revocation>,
    /// The signature time-stamps, each validated.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub time_stamps: Vec<TimeStampReport>,
    /// Where the signature sits in a PDF, and what changed after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pdf: Option<PdfDetails>,
    /// For a signature by a kyso-issued certificate: its ledger entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger: Option<LedgerInclusion>,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// A validated time-stamp token.
#[derive(Serialize, Debug, utoipa::ToSchema)]
pub struct TimeStampReport {
    #[schema(value_type = String)]
    pub indication: Indication,
    #[schema(value_type = Option<String>)]
    pub sub_indication: Option<SubIndication>,
    /// genTime, Unix seconds.
    pub time: Option<i64>,
    /// The time-stamping unit's subject.
    pub tsa: Option<String>,
    pub errors: Vec<String>,
}

/// A PDF signature's place in the file.
#[derive(Serialize, Debug, utoipa::ToSchema)]
pub struct PdfDetails {
    pub field: String,
    /// `signature` or `document_time_stamp`.
    pub kind: &'static str,
    pub sub_filter: String,
    pub byte_range: [u64; 4],
    /// `whole_file`, or `revision` (later revisions follow).
    pub coverage: &'static str,
    /// The revision signed, counting from 1.
    pub revision: usize,
    /// What later revisions changed: `none`, `validation_data`, `signatures`, `form_filling`,
    /// `annotations` or `other`.
    #[schema(value_type = String)]
    pub changes_after: crate::pki::pdf::Change,
    pub change_details: Vec<String>,
    /// DocMDP permissions, for a certification signature.
    pub certification: Option<u8>,
    pub reason: Option<String>,
    pub location: Option<String>,
}

/// A signature's entry in kyso's ledger.
#[derive(Serialize, Debug, utoipa::ToSchema)]
pub struct LedgerInclusion {
    /// `included`, or `missing` (a kyso-issued certificate's key signed outside the service).
    pub status: &'static str,
    pub index: Option<u64>,
    /// The leaf hash, hex.
    pub leaf_hash: Option<String>,
    /// The RFC 9162 inclusion proof in the current tree, hex hashes, and its tree size.
    pub proof: Vec<String>,
    pub tree_size: Option<u64>,
}

#[derive(Serialize, Debug, utoipa::ToSchema)]
pub struct Report {
    #[schema(value_type = String)]
    pub indication: Indication,
    pub signatures: Vec<SignatureReport>,
    /// For a PDF: its revisions, and whether it is certified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pdf: Option<PdfDocument>,
}

#[derive(Serialize, Debug, utoipa::ToSchema)]
pub struct PdfDocument {
    pub revisions: usize,
    /// The DocMDP permissions of its certification signature.
    pub certification: Option<u8>,
}

impl SignatureReport {
    fn failed(indication: Indication, sub: SubIndication, error: String) -> Self {
        SignatureReport {
            indication,
            sub_indication: Some(sub),
            format: "CMS",
            level: "CMS",
            signer: None,
            claimed_signing_time: None,
            validation_time: now().unix_timestamp(),
            validation_time_source: "current time",
            chain: Vec::new(),
            revocation: None,
            time_stamps: Vec::new(),
            pdf: None,
            ledger: None,
            errors: vec![error],
            warnings: Vec::new(),
        }
    }
}

impl Report {
    fn format_failure(error: String) -> Self {
        Self::failure(Indication::TotalFailed, SubIndication::FormatFailure, error)
    }

    fn failure(indication: Indication, sub: SubIndication, error: String) -> Self {
        Report {
            indication,
            signatures: vec![SignatureReport::failed(indication, sub, error)],
            pdf: None,
        }
    }

    fn of(signatures: Vec<SignatureReport>, pdf: Option<PdfDocument>) -> Self {
        let indication = signatures
            .iter()
            .map(|s| s.indication)
            .max()
            .unwrap_or(Indication::TotalFailed);
        Report {
            indication,
            signatures,
            pdf,
        }
    }
}

/// Revocation data given with a request or carried by the signature or the PDF, and where
/// it came from (`supplied`, `signature`, `dss`).
#[derive(Default, Clone)]
pub struct RevocationData {
    pub crls: Vec<(Vec<u8>, &'static str)>,
    /// OCSP responses (DER OCSPResponse).
    pub ocsps: Vec<(Vec<u8>, &'static str)>,
}

/// What one verification validates against.
struct Inputs<'a> {
    anchors: Vec<Vec<u8>>,
    /// Certificates to build paths from beside the signature's own: a PDF's DSS, and the
    /// intermediates of the trust directories and of the caller's anchors.
    extra_certs: Vec<Vec<u8>>,
    revocation: RevocationData,
    now: i64,
    /// The ledger's size and checkpoint, read once per verification when first needed.
    tree: &'a Tree,
}

type Tree = tokio::sync::OnceCell<TreeHead>;

/// The ledger's newest checkpoint as a verification last read it: any recent tree that holds
/// an entry proves its inclusion, so verifications within [`RECENT_TREE_TTL`] share one read.
#[derive(Default)]
pub struct RecentTree(std::sync::Mutex<Option<(std::time::Instant, TreeHead)>>);

/// A tree size and its checkpoint note.
type TreeHead = (u64, Option<String>);

const RECENT_TREE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// What every signature of one PDF is verified with.
struct PdfContext<'a> {
    pdf: &'a [u8],
    doc: &'a crate::pki::pdf::SignedPdf,
    /// Each CAdES signature's SignedData (or why it is not one).
    parsed: Vec<Option<Result<SignedData, String>>>,
    algorithms: Vec<Option<crate::pki::cms::DigestAlgorithm>>,
    digests: Vec<Option<Vec<u8>>>,
    extra_anchors: &'a [Vec<u8>],
    revocation: RevocationData,
    tree: Tree,
    /// The changes the document's certification (or an approval signature) allows.
    allowed: crate::pki::pdf::Change,
    certification: Option<u8>,
    has_dss: bool,
}

/// A CMS given as DER, PEM (`-----BEGIN CMS-----`, `PKCS7`) or base64 text.
pub fn decode_cms(input: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine;
    if input.first() == Some(&0x30) {
        return Some(input.to_vec());
    }
    if let Ok(p) = ::pem::parse(input) {
        return Some(p.into_contents());
    }
    let text: String = std::str::from_utf8(input)
        .ok()?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

fn signer_of(der: &[u8]) -> Option<Signer> {
    let (_, c) = X509Certificate::from_der(der).ok()?;
    let subject = c.subject();
    let text = |a: &AttributeTypeAndValue<'_>| a.as_str().ok().map(str::to_string);
    let uids: Vec<String> = subject
        .iter_attributes()
        .filter(|a| a.attr_type().to_id_string() == "0.9.2342.19200300.100.1.1")
        .filter_map(text)
        .collect();
    let common_name = subject.iter_common_name().next().and_then(text);
    let organization = subject.iter_organization().next().and_then(text);
    Some(Signer {
        subject: subject.to_string(),
        common_name,
        citizen_id: uids
            .iter()
            .find_map(|u| u.strip_prefix("CCCD:").map(str::to_string)),
        tax_code: uids
            .iter()
            .find_map(|u| u.strip_prefix("MST:").map(str::to_string)),
        organization,
        serial: crate::pki::serial_hex(c.raw_serial()),
        issuer: c.issuer().to_string(),
    })
}

/// Paths verified before (their signatures and CA constraints), by the certificates and
/// anchors they were built from, kept while every certificate on them is valid: a DMS
/// verifies many documents signed under the same few chains.
#[derive(Default)]
pub struct PathCache(std::sync::Mutex<std::collections::HashMap<[u8; 32], CachedPath>>);

/// A verified path (signer first) and the last second all of it is valid.
type CachedPath = (Vec<Vec<u8>>, i64);

/// Paths kept at most; the cache starts over when it is full.
const MAX_CACHED_PATHS: usize = 10_000;

impl PathCache {
    fn get(&self, key: &[u8; 32], at: i64) -> Option<Vec<Vec<u8>>> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key)
            .filter(|(_, until)| at <= *until)
            .map(|(p, _)| p.clone())
    }

    fn put(&self, key: [u8; 32], path: &[Vec<u8>]) {
        let until = path
            .iter()
            .filter_map(|c| X509Certificate::from_der(c).ok())
            .map(|(_, c)| c.validity().not_after.timestamp())
            .min()
            .unwrap_or(0);
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_CACHED_PATHS {
            map.clear();
        }
        map.insert(key, (path.to_vec(), until));
    }
}

/// What a path depends on: the signer's identifier, the certificates it may be built from, the
/// anchors.
fn path_key(
    sd: &SignedData,
    signer: &crate::pki::signed_data::SignerInfo,
    extra: &[Vec<u8>],
    anchors: &[Vec<u8>],
) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(format!("{:?}", signer.sid).as_bytes());
    let separator = Vec::new();
    for part in sd
        .certificates
        .iter()
        .chain([&separator])
        .chain(extra)
        .chain([&separator])
        .chain(anchors)
    {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(ctx.finish().as_ref());
    key
}

fn subject_of(der: &[u8]) -> Option<String> {
    X509Certificate::from_der(der)
        .ok()
        .map(|(_, c)| c.subject().to_string())
}

fn serial_of(der: &[u8]) -> Option<String> {
    X509Certificate::from_der(der)
        .ok()
        .map(|(_, c)| crate::pki::serial_hex(c.raw_serial()))
}

/// The best signature time: the earliest time a valid signature time-stamp proves.
fn proven_time(stamps: &[TimeStampReport]) -> Option<i64> {
    stamps
        .iter()
        .filter(|t| t.indication == Indication::TotalPassed)
        .filter_map(|t| t.time)
        .min()
}

impl Service {
    /// Verifies a detached CMS signature over `document`; see [`Self::verify_cms`].
    pub async fn verify_detached(
        &self,
        document: &[u8],
        signature: &[u8],
        extra_anchors: &[Vec<u8>],
    ) -> Result<Report, ServiceError> {
        self.verify_cms(
            Some(Signed::Document(document)),
            signature,
            extra_anchors,
            RevocationData::default(),
        )
        .await
    }

    fn inputs<'a>(
        &self,
        extra_anchors: &[Vec<u8>],
        extra_certs: &'a [Vec<u8>],
        revocation: RevocationData,
        tree: &'a Tree,
    ) -> Inputs<'a> {
        let mut anchors = vec![self.cas.root.cert_der.clone()];
        anchors.extend(self.cas.trusted.iter().cloned());
        let (theirs, under) = validate::split_trust(extra_anchors.to_vec());
        anchors.extend(theirs);
        let mut extra = extra_certs.to_vec();
        extra.extend(self.cas.intermediates.iter().cloned());
        extra.extend(under);
        Inputs {
            anchors,
            extra_certs: extra,
            revocation,
            now: now().unix_timestamp(),
            tree,
        }
    }

    /// Verifies a CMS signature over `signed` (a document or its digest), or over the content it
    /// encapsulates when `signed` is `None`. Trusted: kyso's root, the configured trust
    /// directories' certificates and `extra_anchors` (DER); `revocation` is data supplied
    /// with the request. A malformed signature is a report with FORMAT_FAILURE, not an error.
    pub async fn verify_cms(
        &self,
        signed: Option<Signed<'_>>,
        signature: &[u8],
        extra_anchors: &[Vec<u8>],
        revocation: RevocationData,
    ) -> Result<Report, ServiceError> {
        if signature.len() > MAX_SIGNATURE_BYTES {
            return Err(ServiceError::Invalid(format!(
                "signatures are limited to {MAX_SIGNATURE_BYTES} bytes"
            )));
        }
        let Some(der) = decode_cms(signature) else {
            return Ok(Report::format_failure(
                "the signature is not DER, PEM or base64".into(),
            ));
        };
        let sd = match SignedData::parse(&der) {
            Ok(sd) => sd,
            Err(e) => return Ok(Report::format_failure(e.to_string())),
        };
        let signed = match (signed, &sd.content) {
            (Some(s), _) => s,
            (None, Some(content)) => Signed::Document(content),
            (None, None) => {
                return Ok(Report::failure(
                    Indication::Indeterminate,
                    SubIndication::SignedDataNotFound,
                    "the signature is detached: give the document (or its digest) with it".into(),
                ))
            }
        };
        let tree = Tree::new();
        let mut inputs = self.inputs(extra_anchors, &[], revocation, &tree);
        add_embedded(&mut inputs.revocation, &sd);
        let mut signatures = Vec::with_capacity(sd.signers.len());
        for signer in &sd.signers {
            let mut report = self
                .check_signer(&sd, signer, signed, &der, &inputs)
                .await?;
            let cades = signer.ess_cert_hash.is_some();
            report.format = if cades { "CAdES" } else { "CMS" };
            report.level = match (cades, report.time_stamps.is_empty()) {
                (true, true) => "CAdES-B-B",
                (true, false) => "CAdES-B-T",
                (false, _) => "CMS",
            };
            signatures.push(report);
        }
        Ok(Report::of(signatures, None))
    }

    /// Basic validation of a signer with its certification path cached (see [`PathCache`]).
    fn validate_cached(
        &self,
        sd: &SignedData,
        signer: &crate::pki::signed_data::SignerInfo,
        signed: Signed<'_>,
        inputs: &Inputs<'_>,
        at: i64,
        purpose: validate::Purpose,
    ) -> validate::Outcome {
        let key = path_key(sd, signer, &inputs.extra_certs, &inputs.anchors);
        let known = self.verified_paths.get(&key, at);
        let outcome = validate::validate(
            sd,
            signer,
            signed,
            &inputs.anchors,
            &inputs.extra_certs,
            at,
            known.as_deref(),
            purpose,
        );
        if outcome.path_verified {
            self.verified_paths.put(key, &outcome.chain);
        }
        outcome
    }

    /// Validates a time-stamp token over the data `imprint_of` digests, at the current time,
    /// with the TSA certificate's status: revoked by its genTime, the token proves nothing; a
    /// later revocation or no status is a warning.
    async fn check_time_stamp(
        &self,
        token: &[u8],
        imprint_of: &(dyn Fn(crate::pki::cms::DigestAlgorithm) -> Vec<u8> + Sync),
        inputs: &Inputs<'_>,
    ) -> Result<TimeStampReport, ServiceError> {
        let (sd, info) = match validate::read_time_stamp(token) {
            Ok(x) => x,
            Err(o) => {
                return Ok(TimeStampReport {
                    indication: o.indication,
                    sub_indication: o.sub_indication,
                    time: None,
                    tsa: None,
                    errors: o.errors,
                })
            }
        };
        let content = sd.content.clone().unwrap_or_default();
        let mut o = self.validate_cached(
            &sd,
            &sd.signers[0],
            Signed::Document(&content),
            inputs,
            inputs.now,
            validate::Purpose::TimeStamping,
        );
        validate::check_imprint(&info, imprint_of, &mut o);
        let mut warnings = Vec::new();
        if o.indication == Indication::TotalPassed {
            if let (Some(tsa), Some(issuer)) = (o.chain.first(), o.chain.get(1)) {
                match self.status_from(tsa, issuer, inputs, info.gen_time).await? {
                    Ok((Some(t), _)) if t <= info.gen_time => o.fail(
                        Indication::TotalFailed,
                        SubIndication::Revoked,
                        format!("the time-stamping unit's certificate was revoked at {t}"),
                    ),
                    Ok((Some(t), _)) => warnings.push(format!(
                        "the time-stamping unit's certificate was revoked at {t}, after the time-stamp"
                    )),
                    Ok((None, _)) => {}
                    Err(_) => warnings.push(
                        "no revocation information for the time-stamping unit's certificate".into(),
                    ),
                }
            }
        }
        o.errors
            .extend(warnings.iter().map(|w| format!("warning: {w}")));
        Ok(TimeStampReport {
            indication: o.indication,
            sub_indication: o.sub_indication,
            time: Some(info.gen_time),
            tsa: o.chain.first().and_then(|c| subject_of(c)),
            errors: o.errors,
        })
    }

    /// One signer: its signature time-stamps (a valid one proves when it existed, and the
    /// signer is validated at that time), basic validation, revocation and ledger inclusion.
    async fn check_signer(
        &self,
        sd: &SignedData,
        signer: &crate::pki::signed_data::SignerInfo,
        signed: Signed<'_>,
        cms_der: &[u8],
        inputs: &Inputs<'_>,
    ) -> Result<SignatureReport, ServiceError> {
        let mut time_stamps = Vec::with_capacity(signer.time_stamps.len());
        for t in &signer.time_stamps {
            time_stamps.push(
                self.check_time_stamp(t, &|a| a.digest(&signer.signature), inputs)
                    .await?,
            );
        }
        let proven = proven_time(&time_stamps);
        let at = proven.unwrap_or(inputs.now);
        let mut outcome = self.validate_cached(
            sd,
            signer,
            signed,
            inputs,
            at,
            validate::Purpose::DocumentSigning,
        );
        if proven.is_some() && outcome.sub_indication == Some(SubIndication::OutOfBoundsNoPoe) {
            // The time-stamp proves the signature was made after a certificate expired.
            outcome.indication = Indication::TotalFailed;
            outcome.sub_indication = Some(SubIndication::Expired);
        }
        for t in &time_stamps {
            if t.indication != Indication::TotalPassed {
                outcome.warnings.push(format!(
                    "a signature time-stamp does not validate ({}): it proves nothing",
                    t.errors.join("; ")
                ));
            }
        }
        let revocation = if outcome.indication == Indication::TotalPassed {
            Some(
                self.signer_status(&mut outcome, inputs, at, proven.is_some())
                    .await?,
            )
        } else {
            None
        };
        let chain = outcome.chain.clone();
        let ledger = match (chain.first(), chain.get(1)) {
            (Some(cert), Some(issuer)) if self.own_issuing_ca(issuer).is_some() => {
                self.ledger_inclusion(signer, cert, cms_der, inputs.tree, &mut outcome)
                    .await?
            }
            _ => None,
        };
        Ok(SignatureReport {
            indication: outcome.indication,
            sub_indication: outcome.sub_indication,
            format: "CMS",
            level: "CMS",
            signer: outcome.chain.first().and_then(|c| signer_of(c)),
            claimed_signing_time: signer.signing_time,
            validation_time: at,
            validation_time_source: if proven.is_some() {
                "signature time-stamp"
            } else {
                "current time"
            },
            chain: outcome.chain.iter().filter_map(|c| subject_of(c)).collect(),
            revocation,
            time_stamps,
            pdf: None,
            ledger,
            errors: outcome.errors,
            warnings: outcome.warnings,
        })
    }

    /// A tree that holds entry `index`: the one read within the last second, or the newest.
    async fn recent_tree(&self, index: u64) -> Result<TreeHead, ServiceError> {
        {
            let cached = self.recent_tree.0.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((at, tree)) = cached.as_ref() {
                if at.elapsed() < RECENT_TREE_TTL && index < tree.0 {
                    return Ok(tree.clone());
                }
            }
        }
        let tree = self.ledger_size().await?;
        *self.recent_tree.0.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((std::time::Instant::now(), tree.clone()));
        Ok(tree)
    }

    /// The name of the kyso issuing CA whose certificate is `issuer` (DER), if one is.
    fn own_issuing_ca(&self, issuer: &[u8]) -> Option<&'static str> {
        crate::pki::ca::ISSUING_CAS
            .iter()
            .copied()
            .find(|name| self.cas.get(name).is_some_and(|ca| ca.cert_der == issuer))
    }

    /// The ledger entry of a signature by a kyso-issued certificate: found by the signed
    /// document digest and the signature's SHA-256, with its inclusion proof; missing is a
    /// warning (the key signed outside the service).
    async fn ledger_inclusion(
        &self,
        signer: &crate::pki::signed_data::SignerInfo,
        cert: &[u8],
        cms_der: &[u8],
        tree: &Tree,
        outcome: &mut validate::Outcome,
    ) -> Result<Option<LedgerInclusion>, ServiceError> {
        let (Some(digest), Some(md)) = (signer.digest, &signer.message_digest) else {
            return Ok(None);
        };
        let tagged = digest.tagged_hex(md);
        let signature_sha256 = hex::encode(ring::digest::digest(&ring::digest::SHA256, cms_der));
        let serial = serial_of(cert);
        let rows = self.store.ledger_entries_for_digest(&tagged).await?;
        let found = rows.into_iter().find(|row| {
            crate::ledger::entry::Entry::from_bytes(&row.entry).is_some_and(|e| {
                e.kind == crate::ledger::entry::kinds::DOCUMENT_SIGNED
                    && e.signature_sha256.as_deref() == Some(signature_sha256.as_str())
                    && e.serial == serial
            })
        });
        let Some(row) = found else {
            outcome.warnings.push(
                "the signature is by a kyso-issued certificate but is not in kyso's ledger: the \
                 key was used outside the service"
                    .into(),
            );
            return Ok(Some(LedgerInclusion {
                status: "missing",
                index: None,
                leaf_hash: None,
                proof: Vec::new(),
                tree_size: None,
            }));
        };
        let index = row.idx as u64;
        let (mut size, mut note) = tree
            .get_or_try_init(|| self.recent_tree(index))
            .await?
            .clone();
        if index >= size {
            // Appended after the tree this verification read first.
            (size, note) = self.ledger_size().await?;
        }
        let proof = self.inclusion_proof_in(index, size, note).await?;
        Ok(Some(LedgerInclusion {
            status: "included",
            index: Some(index),
            leaf_hash: Some(hex::encode(&row.leaf_hash)),
            proof: proof.hashes.iter().map(hex::encode).collect(),
            tree_size: Some(size),
        }))
    }

    /// The status of `cert` (issued by `issuer`) at `at`: kyso's own record when one of its
    /// issuing CAs is the issuer, otherwise an OCSP response or a CRL of the issuer from
    /// `inputs`. `Ok(Ok((revoked at, source)))`, or `Ok(Err(source))` when nothing says.
    async fn status_from(
        &self,
        cert: &[u8],
        issuer: &[u8],
        inputs: &Inputs<'_>,
        at: i64,
    ) -> Result<Result<(Option<i64>, &'static str), &'static str>, ServiceError> {
        if let (Some(ca), Some(serial)) = (self.own_issuing_ca(issuer), serial_of(cert)) {
            return Ok(match self.status_of(ca, &serial).await? {
                CertStatus::Good => Ok((None, "kyso")),
                CertStatus::Revoked { time, .. } => Ok((Some(time), "kyso")),
                CertStatus::Unknown => Err("kyso"),
            });
        }
        use crate::pki::revinfo::{crl_status, ocsp_status};
        let r = &inputs.revocation;
        let found = r
            .ocsps
            .iter()
            .find_map(|(o, source)| {
                ocsp_status(o, cert, issuer, at, inputs.now).map(|s| (s, *source))
            })
            .or_else(|| {
                r.crls.iter().find_map(|(crl, source)| {
                    crl_status(crl, cert, issuer, at, inputs.now).map(|s| (s, *source))
                })
            });
        if found.is_some() {
            return Ok(found.ok_or("none"));
        }
        // Nothing given or embedded: ask the CA, when the configuration allows it.
        match self.policy.verification_fetch {
            Some(timeout) => Ok(
                super::fetch::fetch_status(cert, issuer, at, inputs.now, timeout)
                    .await
                    .ok_or("none"),
            ),
            None => Ok(Err("none")),
        }
    }

    /// The status of the CA certificates on the path (not the anchor, not kyso's own CAs): a
    /// CA revoked by `at` (or at all, without proof of time) is REVOKED_CA_NO_POE, one without
    /// status TRY_LATER.
    async fn ca_status(
        &self,
        outcome: &mut validate::Outcome,
        inputs: &Inputs<'_>,
        at: i64,
        proven: bool,
    ) -> Result<(), ServiceError> {
        let chain = outcome.chain.clone();
        for pair in chain.windows(2).skip(1) {
            let (ca, issuer) = (&pair[0], &pair[1]);
            if self.own_issuing_ca(ca).is_some() {
                continue;
            }
            let name = subject_of(ca).unwrap_or_default();
            match self.status_from(ca, issuer, inputs, at).await? {
                Ok((Some(t), _)) if t <= at || !proven => outcome.fail(
                    Indication::Indeterminate,
                    SubIndication::RevokedCaNoPoe,
                    format!("the CA certificate {name} was revoked at {t}"),
                ),
                Ok(_) => {}
                Err(_) => outcome.fail(
                    Indication::Indeterminate,
                    SubIndication::TryLater,
                    format!("no revocation information for the CA certificate {name}"),
                ),
            }
        }
        Ok(())
    }

    /// The signing certificate's status at validation time `at`: kyso's own record when one
    /// of its issuing CAs is the issuer, otherwise a CRL of the issuer given with the request
    /// or carried by the signature or the PDF. A revocation after `at` does not count when a
    /// time-stamp proves `at` (`proven`). No status leaves the verdict INDETERMINATE.
    async fn signer_status(
        &self,
        outcome: &mut validate::Outcome,
        inputs: &Inputs<'_>,
        at: i64,
        proven: bool,
    ) -> Result<Revocation, ServiceError> {
        let chain = outcome.chain.clone();
        let (Some(cert), Some(issuer)) = (chain.first(), chain.get(1)) else {
            return Ok(unknown_status(outcome, "none", "the signer has no issuer"));
        };
        let (revoked_at, source) = match self.status_from(cert, issuer, inputs, at).await? {
            Ok(found) => found,
            Err(source) => {
                let why = if source == "kyso" {
                    "kyso has no record of the signing certificate"
                } else {
                    "no revocation information for the signing certificate: no usable CRL or \
                     OCSP response of its issuer was given or embedded"
                };
                return Ok(unknown_status(outcome, source, why));
            }
        };
        self.ca_status(outcome, inputs, at, proven).await?;
        match revoked_at {
            Some(time) if time <= at || !proven => {
                outcome.indication = Indication::TotalFailed;
                outcome.sub_indication = Some(SubIndication::Revoked);
                outcome
                    .errors
                    .push(format!("the signing certificate was revoked at {time}"));
                Ok(Revocation {
                    status: "revoked",
                    source,
                    revoked_at: Some(time),
                })
            }
            Some(time) => {
                outcome.warnings.push(format!(
                    "the signing certificate was revoked at {time}, after the time-stamp proves \
                     the signature existed"
                ));
                Ok(Revocation {
                    status: "revoked",
                    source,
                    revoked_at: Some(time),
                })
            }
            None => Ok(Revocation {
                status: "good",
                source,
                revoked_at: None,
            }),
        }
    }
}

impl Service {
    /// Verifies every signature and document time-stamp of a PDF, revision by revision: each
    /// one's byte range, its CMS (or token) over the bytes it covers, and what the revisions
    /// after it changed against what the document's certification (DocMDP) or, without one,
    /// an approval signature allows (up to annotations, which are a warning). The DSS's
    /// certificates and CRLs are used for paths and revocation. A file that is not a PDF is
    /// an error; an unreadable PDF is a report with FORMAT_FAILURE.
    pub async fn verify_pdf(
        &self,
        pdf: &[u8],
        extra_anchors: &[Vec<u8>],
        revocation: RevocationData,
    ) -> Result<Report, ServiceError> {
        use crate::pki::pdf::{self, Change, PdfError};
        let doc = match pdf::read_signatures(pdf) {
            Ok(d) => d,
            Err(PdfError::NotPdf) => {
                return Err(ServiceError::Invalid("the document is not a PDF".into()))
            }
            Err(e) => return Ok(Report::format_failure(e.to_string())),
        };
        if doc.signatures.is_empty() {
            return Ok(Report::failure(
                Indication::Indeterminate,
                SubIndication::SignedDataNotFound,
                "the PDF has no signature".into(),
            ));
        }
        let mut revocation = revocation;
        for crl in &doc.dss.crls {
            revocation.crls.push((crl.clone(), "dss"));
        }
        for o in &doc.dss.ocsps {
            revocation.ocsps.push((o.clone(), "dss"));
        }
        let certification = doc
            .signatures
            .iter()
            .find(|s| !s.time_stamp)
            .and_then(|s| s.certification);
        let allowed = certification.map_or(Change::Annotations, Change::allowed_by_docmdp);
        let has_dss =
            !doc.dss.certs.is_empty() || !doc.dss.crls.is_empty() || !doc.dss.ocsps.is_empty();
        // Each signature's digest algorithm, then every byte range hashed in one pass.
        let parsed: Vec<Option<Result<SignedData, String>>> = doc
            .signatures
            .iter()
            .map(|f| {
                (f.problem.is_none() && !f.time_stamp)
                    .then(|| SignedData::parse(&f.contents).map_err(|e| e.to_string()))
            })
            .collect();
        let algorithms: Vec<Option<crate::pki::cms::DigestAlgorithm>> = doc
            .signatures
            .iter()
            .zip(&parsed)
            .map(|(f, p)| match (&f.problem, f.time_stamp, p) {
                (Some(_), _, _) => None,
                (None, true, _) => validate::read_time_stamp(&f.contents)
                    .ok()
                    .and_then(|(_, info)| info.algorithm),
                (None, false, Some(Ok(sd))) => sd.signers[0].digest,
                _ => None,
            })
            .collect();
        let ranges: Vec<_> = doc
            .signatures
            .iter()
            .zip(&algorithms)
            .filter_map(|(f, a)| a.map(|a| (f.byte_range, a)))
            .collect();
        let mut digests = pdf::range_digests(pdf, &ranges).into_iter();
        let digests: Vec<Option<Vec<u8>>> = algorithms
            .iter()
            .map(|a| a.and_then(|_| digests.next()))
            .collect();
        let ctx = PdfContext {
            pdf,
            doc: &doc,
            parsed,
            algorithms,
            digests,
            extra_anchors,
            revocation,
            tree: Tree::new(),
            allowed,
            certification,
            has_dss,
        };
        // The signatures are verified concurrently: their store reads overlap.
        let mut reports = futures_util::future::try_join_all(
            (0..doc.signatures.len()).map(|k| self.pdf_signature(&ctx, k)),
        )
        .await?;
        if certification.is_some() && !doc.docmdp_in_catalog {
            if let Some(r) = reports.first_mut() {
                r.warnings
                    .push("the catalog's /Perms does not name the certification signature".into());
            }
        }
        Ok(Report::of(
            reports,
            Some(PdfDocument {
                revisions: doc.revisions,
                certification,
            }),
        ))
    }

    /// Signature `k` of a PDF: its CMS (or document time-stamp) over the bytes it covers, its
    /// level, and the changes after it against what is allowed.
    async fn pdf_signature(
        &self,
        ctx: &PdfContext<'_>,
        k: usize,
    ) -> Result<SignatureReport, ServiceError> {
        use crate::pki::pdf::{self, Change};
        let (pdf, doc, algorithms, digests) = (ctx.pdf, ctx.doc, &ctx.algorithms, &ctx.digests);
        let (allowed, certification, has_dss) = (ctx.allowed, ctx.certification, ctx.has_dss);
        let found = &doc.signatures[k];
        let covered_with = |a: crate::pki::cms::DigestAlgorithm| match (algorithms[k], &digests[k])
        {
            (Some(x), Some(d)) if x == a => d.clone(),
            _ => pdf::range_digest(pdf, &found.byte_range, a),
        };
        let mut inputs = self.inputs(
            ctx.extra_anchors,
            &doc.dss.certs,
            ctx.revocation.clone(),
            &ctx.tree,
        );
        let details = PdfDetails {
            field: found.field.clone(),
            kind: if found.time_stamp {
                "document_time_stamp"
            } else {
                "signature"
            },
            sub_filter: found.sub_filter.clone(),
            byte_range: found.byte_range.map(|x| x as u64),
            coverage: if found.whole_file {
                "whole_file"
            } else {
                "revision"
            },
            revision: found.revision,
            changes_after: found.changes,
            change_details: found.change_notes.clone(),
            certification: found.certification,
            reason: found.reason.clone(),
            location: found.location.clone(),
        };
        let mut report = if let Some(problem) = &found.problem {
            SignatureReport::failed(
                Indication::TotalFailed,
                SubIndication::FormatFailure,
                problem.clone(),
            )
        } else if found.time_stamp {
            let t = self
                .check_time_stamp(&found.contents, &covered_with, &inputs)
                .await?;
            let mut r =
                SignatureReport::failed(t.indication, SubIndication::FormatFailure, String::new());
            r.sub_indication = t.sub_indication;
            r.errors = t.errors.clone();
            r.signer = None;
            r.chain = t.tsa.iter().cloned().collect();
            r.validation_time = inputs.now;
            r.claimed_signing_time = t.time;
            r.time_stamps = vec![t];
            r
        } else {
            match ctx.parsed[k].as_ref() {
                None => SignatureReport::failed(
                    Indication::TotalFailed,
                    SubIndication::FormatFailure,
                    "not read".into(),
                ),
                Some(Err(e)) => SignatureReport::failed(
                    Indication::TotalFailed,
                    SubIndication::FormatFailure,
                    e.clone(),
                ),
                Some(Ok(sd)) => {
                    add_embedded(&mut inputs.revocation, sd);
                    let signer = &sd.signers[0];
                    let digest = signer
                        .digest
                        .unwrap_or(crate::pki::cms::DigestAlgorithm::Sha256);
                    let covered = covered_with(digest);
                    // Without signed attributes the signature is over the bytes themselves.
                    let joined;
                    let signed = if signer.signed_attrs.is_some() {
                        Signed::Digest {
                            algorithm: digest,
                            value: &covered,
                        }
                    } else {
                        let [a, la, b, lb] = found.byte_range;
                        joined = [&pdf[a..a + la], &pdf[b..b + lb]].concat();
                        Signed::Document(&joined)
                    };
                    let mut r = self
                        .check_signer(sd, signer, signed, &found.contents, &inputs)
                        .await?;
                    if r.claimed_signing_time.is_none() {
                        // PAdES puts the claimed time in the signature dictionary's /M.
                        r.claimed_signing_time =
                            found.claimed_time.as_deref().and_then(pdf::pdf_date_unix);
                        r.warnings.retain(|w| w != "no claimed signing time");
                    }
                    if sd.signers.len() > 1 {
                        r.warnings.push(
                            "the PDF signature has more than one signer; the first is read".into(),
                        );
                    }
                    if found.sub_filter != "ETSI.CAdES.detached" {
                        r.warnings.push(format!(
                            "/SubFilter /{}: not a PAdES signature",
                            found.sub_filter
                        ));
                    }
                    r
                }
            }
        };
        if found.time_stamp {
            report.format = "RFC3161";
            report.level = "document time-stamp";
        } else {
            report.format = if found.sub_filter == "ETSI.CAdES.detached" {
                "PAdES"
            } else {
                "PDF"
            };
            // B-LT: validation data in the DSS; B-LTA: and a document time-stamp after it.
            let later_stamp = doc.signatures[k + 1..]
                .iter()
                .any(|s| s.time_stamp && s.problem.is_none());
            report.level = match (report.time_stamps.is_empty(), has_dss, later_stamp) {
                (true, _, _) => "PAdES-B-B",
                (false, false, _) => "PAdES-B-T",
                (false, true, false) => "PAdES-B-LT",
                (false, true, true) => "PAdES-B-LTA",
            };
        }
        if found.problem.is_none() {
            if found.changes > allowed {
                report.indication = Indication::TotalFailed;
                report.sub_indication = Some(SubIndication::SigConstraintsFailure);
                report.errors.push(format!(
                    "the document changed after this signature beyond what {} allows: {}",
                    if certification.is_some() {
                        "its certification"
                    } else {
                        "an approval signature"
                    },
                    found.change_notes.join("; ")
                ));
            } else if found.changes == Change::Annotations {
                report.warnings.push(format!(
                    "annotations were added or changed after this signature: {}",
                    found.change_notes.join("; ")
                ));
            }
            if found.certification.is_some() && k > 0 {
                report
                    .warnings
                    .push("a certification signature that is not the first".into());
            }
        }
        report.pdf = Some(details);
        Ok(report)
    }
}

/// The CRLs a SignedData and its signers carry.
fn add_embedded(revocation: &mut RevocationData, sd: &SignedData) {
    let signers = sd.signers.iter().flat_map(|s| s.revocation.crls.iter());
    for crl in sd.revocation.crls.iter().chain(signers) {
        revocation.crls.push((crl.clone(), "signature"));
    }
    let signers = sd.signers.iter().flat_map(|s| s.revocation.ocsps.iter());
    for o in sd.revocation.ocsps.iter().chain(signers) {
        revocation.ocsps.push((o.clone(), "signature"));
    }
}

fn unknown_status(outcome: &mut validate::Outcome, source: &'static str, why: &str) -> Revocation {
    outcome.indication = Indication::Indeterminate;
    outcome.sub_indication = Some(SubIndication::TryLater);
    outcome.errors.push(why.to_string());
    Revocation {
        status: "unknown",
        source,
        revoked_at: None,
    }
}
