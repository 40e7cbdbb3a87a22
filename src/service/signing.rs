//! Signing policy: who may use which credential, PIN checks with a lock after repeated wrong
//! PINs, certificate status at the time of signing, and record-before-release of every signature.

use std::sync::Arc;

use zeroize::Zeroizing;

use super::{now, Actor, Role, Service, ServiceError};
use crate::keys::{KeyAlgorithm, PinWrapped, SigningKey};
use crate::ledger::entry::{kinds, Entry};
use crate::ledger::receipt::ReceiptJson;
use crate::pki::cms::{self, DigestAlgorithm, SignedAttributes};
use crate::pki::pdf;
use crate::store::{CertificateRow, CredentialRow};

/// What is signed: the document itself, or its digest computed by the caller.
pub enum Content {
    Document(Vec<u8>),
    Digest {
        algorithm: DigestAlgorithm,
        value: Vec<u8>,
    },
}

/// What opens a credential for one signature: its PIN, or a SAD from CSC
/// `credentials/authorize` (the PIN's Argon2id paid once for many signatures).
pub enum Activation {
    Pin(Zeroizing<String>),
    Sad(Zeroizing<String>),
}

/// One detached CAdES signature request.
pub struct SignRequest {
    pub credential_id: String,
    pub activation: Activation,
    pub content: Content,
    /// Digest algorithm asked for (default: the one the credential's key signs with).
    pub digest_algorithm: Option<DigestAlgorithm>,
    /// CAdES B-T: add a signature time-stamp from kyso's TSA.
    pub timestamp: bool,
}

/// A signature, released only after its ledger entry is durable.
pub struct Signed {
    /// Detached CMS SignedData, DER.
    pub cms: Vec<u8>,
    /// The document digest signed, `algorithm:hex`.
    pub document_digest: String,
    pub receipt: ReceiptJson,
}

/// One PAdES signature request: the PDF is held in memory (an incremental update appends to
/// it).
pub struct PdfSignRequest {
    pub credential_id: String,
    pub activation: Activation,
    pub pdf: Vec<u8>,
    pub level: PadesLevel,
    pub reason: Option<String>,
    pub location: Option<String>,
    /// A visible signature; `None`: invisible.
    pub visible: Option<VisibleSignature>,
}

/// Where and how a PAdES signature is shown.
pub struct VisibleSignature {
    /// 1 for the first page.
    pub page: u32,
    pub placement: pdf::Placement,
    /// A PNG (the seal, the handwritten signature).
    pub image: Option<Vec<u8>>,
    /// The text; by default the signer, the organization, the time (ISO 8601, Vietnam's
    /// +07:00), the reason and the location.
    pub lines: Option<Vec<String>>,
}

/// Vietnam's offset from UTC (no daylight saving): the time shown on a visible signature.
const SHOWN_OFFSET: time::UtcOffset = time::macros::offset!(+7);

/// The default text of a visible signature.
fn default_lines(
    certificate: &CertificateRow,
    at: time::OffsetDateTime,
    reason: Option<&str>,
    location: Option<&str>,
) -> Vec<String> {
    let mut lines = vec![format!("Người ký: {}", certificate.common_name)];
    let organization = x509_parser::parse_x509_certificate(&certificate.der)
        .ok()
        .and_then(|(_, c)| {
            c.subject()
                .iter_organization()
                .next()
                .and_then(|o| o.as_str().ok().map(str::to_string))
        });
    if let Some(o) = organization {
        lines.push(format!("Cơ quan: {o}"));
    }
    let shown = at
        .to_offset(SHOWN_OFFSET)
        .replace_nanosecond(0)
        .unwrap_or(at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    lines.push(format!("Thời gian ký: {shown}"));
    if let Some(r) = reason {
        lines.push(format!("Lý do: {r}"));
    }
    if let Some(l) = location {
        lines.push(format!("Nơi ký: {l}"));
    }
    lines
}

/// The PAdES baseline levels (ETSI EN 319 142-1 §6), in order: each adds to the one before.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PadesLevel {
    /// The CAdES signature alone.
    BB,
    /// With a signature time-stamp from kyso's TSA.
    BT,
    /// And a DSS with the certificates, OCSP responses and CRLs a later validation needs.
    BLt,
    /// And a document time-stamp over all of it.
    BLta,
}

impl PadesLevel {
    /// `B-B`, `B-T`, `B-LT` or `B-LTA` (case-insensitive, `PAdES-` prefix allowed).
    pub fn parse(name: &str) -> Option<Self> {
        let n = name.trim().to_ascii_uppercase();
        Some(match n.strip_prefix("PADES-").unwrap_or(&n) {
            "B-B" => Self::BB,
            "B-T" => Self::BT,
            "B-LT" => Self::BLt,
            "B-LTA" => Self::BLta,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::BB => "B-B",
            Self::BT => "B-T",
            Self::BLt => "B-LT",
            Self::BLta => "B-LTA",
        }
    }
}

/// A signed PDF, released only after its ledger entry is durable.
pub struct SignedPdf {
    pub pdf: Vec<u8>,
    /// The CMS inside it, DER.
    pub cms: Vec<u8>,
    /// The digest of the signed byte ranges, `algorithm:hex`.
    pub document_digest: String,
    pub receipt: ReceiptJson,
}

/// A CMS signature and the ledger entries of the time-stamps made for it (its signature
/// time-stamp; for PAdES B-LTA, the document time-stamp after it), recorded with it.
struct Cades {
    der: Vec<u8>,
    time_stamps: Vec<Entry>,
}

/// Appends a signature revision to a PDF and hashes its byte ranges (call it on the blocking
/// pool: a file may be up to `max_pdf_bytes`).
fn prepare_pdf(
    pdf: Vec<u8>,
    info: &pdf::SignatureInfo,
    field: &str,
    digest_alg: DigestAlgorithm,
) -> Result<(pdf::Prepared, Vec<u8>), pdf::PdfError> {
    let prepared = pdf::prepare(pdf, info, field)?;
    let mut ctx = ring::digest::Context::new(digest_alg.ring());
    for part in prepared.signed_ranges() {
        ctx.update(part);
    }
    Ok((prepared, ctx.finish().as_ref().to_vec()))
}

/// The algorithm of a credential's key, as stored.
fn key_algorithm(credential: &CredentialRow) -> Result<KeyAlgorithm, ServiceError> {
    KeyAlgorithm::parse(&credential.algorithm).map_err(|e| ServiceError::Internal(e.to_string()))
}

/// A credential whose PIN was right, with its certificate.
struct Unlocked {
    key: Arc<dyn SigningKey>,
    certificate: CertificateRow,
}

impl Service {
    /// Signs a document (or its digest) with a credential the actor holds: detached CMS,
    /// CAdES B-B.
    pub async fn sign_document(
        &self,
        actor: &Actor,
        req: SignRequest,
    ) -> Result<Signed, ServiceError> {
        let (credential, certificate, alg) = self.signer(actor, &req.credential_id).await?;
        let digest_alg = cms::digest_for(alg, req.digest_algorithm)
            .map_err(|e| ServiceError::Invalid(e.to_string()))?;
        let message_digest = match req.content {
            Content::Document(bytes) => digest_alg.digest(&bytes),
            Content::Digest { algorithm, value } => {
                if algorithm != digest_alg {
                    return Err(ServiceError::Invalid(format!(
                        "this credential signs {digest_alg} digests, not {algorithm}"
                    )));
                }
                algorithm
                    .check(&value)
                    .map_err(|e| ServiceError::Invalid(e.to_string()))?;
                value
            }
        };
        let unlocked = self
            .activate(
                actor,
                &credential,
                req.activation,
                certificate,
                &message_digest,
            )
            .await?;
        let signed_at = now();
        let cms = self.cades(
            &unlocked,
            alg,
            digest_alg,
            &message_digest,
            Some(signed_at),
            req.timestamp,
        )?;
        let document_digest = digest_alg.tagged_hex(&message_digest);
        let receipt = self
            .record_signature(
                actor,
                &credential,
                &unlocked,
                "cades",
                &document_digest,
                &cms,
            )
            .await?;
        Ok(Signed {
            receipt,
            cms: cms.der,
            document_digest,
        })
    }

    /// A turn to sign a PDF (see [`super::PDF_JOBS`]); hold it from before the upload is read
    /// until the signed PDF is sent.
    pub async fn pdf_turn(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ServiceError> {
        self.pdf_jobs
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ServiceError::Unavailable)
    }

    /// Signs a PDF with a credential the actor holds (PAdES, invisible signature field on the
    /// first page, by incremental update): B-B, or B-T with a signature time-stamp.
    pub async fn sign_pdf(
        &self,
        actor: &Actor,
        req: PdfSignRequest,
    ) -> Result<SignedPdf, ServiceError> {
        let (credential, certificate, alg) = self.signer(actor, &req.credential_id).await?;
        let digest_alg = cms::native_digest(alg);
        let timestamp = req.level >= PadesLevel::BT;
        let chain_len: usize = self.chain_of(&certificate)?.iter().map(|c| c.len()).sum();
        // Room for the CMS: certificates, attributes and signature, and a time-stamp token
        // (with its own TSA certificate and chain) when asked for.
        let reserve = certificate.der.len()
            + chain_len
            + 2048
            + if timestamp {
                self.time_stamp_reserve()
            } else {
                0
            };
        let signed_at = now();
        let visible = req.visible.map(|v| {
            let lines = v.lines.unwrap_or_else(|| {
                default_lines(
                    &certificate,
                    signed_at,
                    req.reason.as_deref(),
                    req.location.as_deref(),
                )
            });
            (v.page, v.placement, v.image, lines)
        });
        let mut info = pdf::SignatureInfo {
            kind: pdf::SignatureKind::Cades,
            time: signed_at,
            reason: req.reason,
            location: req.location,
            name: Some(certificate.common_name.clone()),
            reserve,
            appearance: None,
        };
        let field = format!("kyso-{}", hex::encode(super::random_bytes::<6>()?));
        // The document is checked before the PIN: a bad PDF costs no PIN attempt. Parsing and
        // hashing up to max_pdf_bytes run off the async workers.
        let pdf = req.pdf;
        let (prepared, message_digest) = tokio::task::spawn_blocking(move || {
            if let Some((page, placement, image, lines)) = visible {
                let image = image.as_deref().map(pdf::Image::from_png).transpose()?;
                info.appearance = Some(pdf::Appearance {
                    page,
                    placement,
                    image,
                    lines,
                });
            }
            prepare_pdf(pdf, &info, &field, digest_alg)
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?
        .map_err(|e| ServiceError::Invalid(e.to_string()))?;
        let unlocked = self
            .activate(
                actor,
                &credential,
                req.activation,
                certificate,
                &message_digest,
            )
            .await?;
        // PAdES: the signing time is the dictionary's /M, not a signed attribute.
        let mut cms = self.cades(&unlocked, alg, digest_alg, &message_digest, None, timestamp)?;
        let mut signed = prepared
            .finish(&cms.der)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        if req.level >= PadesLevel::BLt {
            signed = self
                .add_validation_data(signed, &unlocked.certificate)
                .await?;
        }
        if req.level >= PadesLevel::BLta {
            let (pdf, entry) = self.document_time_stamp(signed).await?;
            signed = pdf;
            cms.time_stamps.push(entry);
        }
        let document_digest = digest_alg.tagged_hex(&message_digest);
        let receipt = self
            .record_signature(
                actor,
                &credential,
                &unlocked,
                "pades",
                &document_digest,
                &cms,
            )
            .await?;
        Ok(SignedPdf {
            pdf: signed,
            cms: cms.der,
            document_digest,
            receipt,
        })
    }

    /// Room for a time-stamp token from kyso's TSA: its certificate, the issuing CA's and the
    /// token's own structure and attributes.
    fn time_stamp_reserve(&self) -> usize {
        let issuer = self
            .cas
            .get("government")
            .map_or(2048, |c| c.cert_der.len());
        self.cas.tsa.cert_der.len() + issuer + 2048
    }

    /// PAdES B-LT: appends a DSS with what validating the signature later needs — the
    /// signer's chain, the TSA's certificate and its issuer, fresh OCSP responses from kyso's
    /// responder for the signer and the TSA, and the root's CRL (which covers the issuing CAs).
    async fn add_validation_data(
        &self,
        pdf: Vec<u8>,
        certificate: &CertificateRow,
    ) -> Result<Vec<u8>, ServiceError> {
        let tsa_ca = self
            .cas
            .get(super::revocation::TSA_CA)
            .ok_or_else(|| ServiceError::Internal("the TSA's CA is not loaded".into()))?;
        let tsa = &self.cas.tsa.cert_der;
        let signer_ocsp = self
            .own_ocsp_response(&certificate.ca, &certificate.der)
            .await?;
        let tsa_ocsp = self
            .own_ocsp_response(super::revocation::TSA_CA, tsa)
            .await?;
        let root_crl = self.crl("root").await?;
        let [ca, root] = self.chain_of(certificate)?;
        let certs: Vec<Vec<u8>> = [
            certificate.der.as_slice(),
            ca,
            root,
            tsa,
            tsa_ca.cert_der.as_slice(),
        ]
        .iter()
        .map(|c| c.to_vec())
        .collect();
        let ocsps = [signer_ocsp, tsa_ocsp];
        tokio::task::spawn_blocking(move || {
            pdf::append_dss(
                pdf,
                &pdf::Dss {
                    certs: certs.iter().map(Vec::as_slice).collect(),
                    ocsps: ocsps.iter().map(Vec::as_slice).collect(),
                    crls: vec![root_crl.der.as_slice()],
                },
            )
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?
        .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    /// PAdES B-LTA: appends a document time-stamp from kyso's TSA over the whole file; returns
    /// the PDF and the token's ledger entry (recorded with the signature's).
    async fn document_time_stamp(&self, pdf: Vec<u8>) -> Result<(Vec<u8>, Entry), ServiceError> {
        let info = pdf::SignatureInfo {
            kind: pdf::SignatureKind::DocTimeStamp,
            time: now(),
            reason: None,
            location: None,
            name: None,
            reserve: self.time_stamp_reserve(),
            appearance: None,
        };
        let field = format!("kyso-ts-{}", hex::encode(super::random_bytes::<6>()?));
        // The file was made here a moment ago: a failure to read it is ours.
        let (prepared, imprint) = tokio::task::spawn_blocking(move || {
            prepare_pdf(pdf, &info, &field, DigestAlgorithm::Sha256)
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let request =
            crate::pki::tsa::TimeStampRequest::for_digest(DigestAlgorithm::Sha256, &imprint);
        let (token, entry) = self.time_stamp_token(&request)?;
        let pdf = prepared
            .finish(&token)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok((pdf, entry))
    }

    /// A detached CMS over `message_digest` with the unlocked key: CAdES B-B attributes, and a
    /// signature time-stamp from kyso's TSA when asked for (its ledger entry comes back with
    /// it, to record with the signature).
    fn cades(
        &self,
        unlocked: &Unlocked,
        alg: KeyAlgorithm,
        digest_alg: DigestAlgorithm,
        message_digest: &[u8],
        signing_time: Option<time::OffsetDateTime>,
        timestamp: bool,
    ) -> Result<Cades, ServiceError> {
        let Unlocked { key, certificate } = unlocked;
        let attrs = SignedAttributes::for_content(
            digest_alg,
            message_digest,
            signing_time,
            &certificate.der,
            cms::ID_DATA,
        )
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
        // The key's own hash goes through ring; another one is hashed here and the digest
        // signed.
        let signature = if digest_alg == cms::native_digest(alg) {
            key.sign(&attrs.der)
        } else {
            key.sign_digest(&digest_alg.digest(&attrs.der))
        }
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let chain = self.chain_of(certificate)?;
        // CAdES B-T: kyso's TSA time-stamps the signature value; the token is recorded too.
        let mut unsigned = Vec::new();
        let mut time_stamps = Vec::new();
        if timestamp {
            let imprint = DigestAlgorithm::Sha256.digest(&signature);
            let ts_req =
                crate::pki::tsa::TimeStampRequest::for_digest(DigestAlgorithm::Sha256, &imprint);
            let (token, ts_entry) = self.time_stamp_token(&ts_req)?;
            unsigned.push(cms::signature_time_stamp(&token));
            time_stamps.push(ts_entry);
        }
        let der = cms::assemble(&attrs, alg, &signature, &certificate.der, &chain, &unsigned)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok(Cades { der, time_stamps })
    }

    /// Record before release: the signature's ledger entry (and its time-stamp's) is durable
    /// before the caller sees the signature; returns the signature's receipt.
    async fn record_signature(
        &self,
        actor: &Actor,
        credential: &CredentialRow,
        unlocked: &Unlocked,
        format: &str,
        document_digest: &str,
        cms: &Cades,
    ) -> Result<ReceiptJson, ServiceError> {
        let certificate = &unlocked.certificate;
        let entry = Entry {
            ca: Some(certificate.ca.clone()),
            document_digest: Some(document_digest.to_string()),
            format: Some(format.into()),
            serial: Some(certificate.serial.clone()),
            signature_sha256: Some(hex::encode(ring::digest::digest(
                &ring::digest::SHA256,
                &cms.der,
            ))),
            ..Entry::new(kinds::DOCUMENT_SIGNED, actor.id, now().unix_timestamp())
        };
        let mut entries = vec![entry.clone()];
        entries.extend(cms.time_stamps.iter().cloned());
        let receipt = self
            .record_all(&entries)
            .await?
            .into_iter()
            .next()
            .ok_or(ServiceError::Unavailable)?;
        tracing::info!(
            credential = %credential.id,
            serial = %certificate.serial,
            by = actor.id,
            index = receipt.index,
            format,
            "document signed"
        );
        Ok(ReceiptJson::new(&receipt, &entry.to_bytes()))
    }

    /// The digest algorithm a document must be hashed with to be signed by this credential
    /// (checked before a large upload is streamed through it).
    pub async fn signing_digest(
        &self,
        actor: &Actor,
        credential_id: &str,
        requested: Option<DigestAlgorithm>,
    ) -> Result<DigestAlgorithm, ServiceError> {
        let credential = self.usable_credential(actor, credential_id).await?;
        cms::digest_for(key_algorithm(&credential)?, requested)
            .map_err(|e| ServiceError::Invalid(e.to_string()))
    }

    /// A credential the actor may sign with now, its certificate (active, within validity) and
    /// its key's algorithm.
    async fn signer(
        &self,
        actor: &Actor,
        credential_id: &str,
    ) -> Result<(CredentialRow, CertificateRow, KeyAlgorithm), ServiceError> {
        let credential = self.usable_credential(actor, credential_id).await?;
        let certificate = self.signing_certificate(&credential).await?;
        let alg = key_algorithm(&credential)?;
        Ok((credential, certificate, alg))
    }

    /// The credential, if the actor may sign with it: its holder, or a clerk an RA granted it to
    /// (an organization's seal). Anyone else's credential is "not found": its existence is not
    /// revealed.
    async fn usable_credential(
        &self,
        actor: &Actor,
        id: &str,
    ) -> Result<CredentialRow, ServiceError> {
        let credential = self.held_credential(actor, id).await?;
        if credential.failed_pins >= i64::from(self.policy.pin_attempts) {
            return Err(ServiceError::Locked(self.policy.pin_attempts));
        }
        Ok(credential)
    }

    /// The credential, if the actor holds it or is a clerk it was granted to; "not found"
    /// otherwise.
    pub(super) async fn held_credential(
        &self,
        actor: &Actor,
        id: &str,
    ) -> Result<CredentialRow, ServiceError> {
        let credential = self
            .store
            .credential(id)
            .await?
            .ok_or(ServiceError::NotFound("credential"))?;
        let held = credential.owner_account == actor.id
            || (actor.role == Role::Clerk
                && self
                    .store
                    .credential_grantees(id)
                    .await?
                    .contains(&actor.id));
        if held {
            Ok(credential)
        } else {
            Err(ServiceError::NotFound("credential"))
        }
    }

    /// The certificates a verifier needs above a subscriber's: its issuing CA and the root.
    pub(super) fn chain_of(
        &self,
        certificate: &CertificateRow,
    ) -> Result<[&[u8]; 2], ServiceError> {
        let ca = self
            .cas
            .get(&certificate.ca)
            .ok_or_else(|| ServiceError::Internal("issuing CA not loaded".into()))?;
        Ok([ca.cert_der.as_slice(), self.cas.root.cert_der.as_slice()])
    }

    /// The credential's certificate, if it may sign now: active and within its validity.
    pub(super) async fn signing_certificate(
        &self,
        credential: &CredentialRow,
    ) -> Result<CertificateRow, ServiceError> {
        let serial = credential.certificate_serial.as_deref().ok_or_else(|| {
            ServiceError::Forbidden("the credential has no certificate yet".into())
        })?;
        let cert = self
            .store
            .certificate(serial)
            .await?
            .ok_or_else(|| ServiceError::Internal("credential certificate missing".into()))?;
        let t = now().unix_timestamp();
        if cert.status != "active" {
            return Err(ServiceError::Forbidden(format!(
                "the certificate {} is {}",
                cert.serial, cert.status
            )));
        }
        if t < cert.not_before {
            return Err(ServiceError::Forbidden(format!(
                "the certificate {} is not valid yet",
                cert.serial
            )));
        }
        if t > cert.not_after {
            return Err(ServiceError::Forbidden(format!(
                "the certificate {} has expired",
                cert.serial
            )));
        }
        Ok(cert)
    }

    /// Opens the credential's key with the PIN. A wrong PIN is counted, and the credential locks
    /// at the configured limit; a right one clears the count. Both paths run the same Argon2id
    /// derivation and AEAD check, so timing tells nothing about the PIN.
    /// Opens the credential with its PIN, or spends one signature of a SAD on `digest` (a SAD
    /// bound to hashes must name it).
    async fn activate(
        &self,
        actor: &Actor,
        credential: &CredentialRow,
        activation: Activation,
        certificate: CertificateRow,
        digest: &[u8],
    ) -> Result<Unlocked, ServiceError> {
        match activation {
            Activation::Pin(pin) => self.unlock(credential, pin, certificate).await,
            Activation::Sad(sad) => {
                let (key, authorized) =
                    self.spend_sad(actor, &credential.id, &sad, &[digest.to_vec()])?;
                if authorized.serial != certificate.serial {
                    return Err(ServiceError::Forbidden(
                        "the SAD was issued for another certificate of this credential".into(),
                    ));
                }
                Ok(Unlocked { key, certificate })
            }
        }
    }

    async fn unlock(
        &self,
        credential: &CredentialRow,
        pin: Zeroizing<String>,
        certificate: CertificateRow,
    ) -> Result<Unlocked, ServiceError> {
        let blob = PinWrapped::from_bytes(&credential.sealed_key)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let kek = self.kek.clone();
        let key_id = credential.id.clone();
        let opened = tokio::task::spawn_blocking(move || blob.open(&kek, &key_id, pin.as_bytes()))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        match opened {
            Ok(key) => {
                if credential.failed_pins > 0 {
                    self.store.reset_pin_failures(&credential.id).await?;
                }
                Ok(Unlocked {
                    key: Arc::new(key),
                    certificate,
                })
            }
            Err(_) => {
                let failures = self.store.record_pin_failure(&credential.id).await?;
                tracing::warn!(credential = %credential.id, failures, "wrong PIN");
                if failures >= i64::from(self.policy.pin_attempts) {
                    return Err(ServiceError::Locked(self.policy.pin_attempts));
                }
                Err(ServiceError::Forbidden(format!(
                    "wrong PIN ({} attempts left)",
                    i64::from(self.policy.pin_attempts) - failures
                )))
            }
        }
    }

    /// The signing key of a credential the actor holds, opened with its PIN (counted like a
    /// signature's PIN check).
    pub async fn open_credential(
        &self,
        actor: &Actor,
        id: &str,
        pin: Zeroizing<String>,
    ) -> Result<(Arc<dyn SigningKey>, CertificateRow), ServiceError> {
        let credential = self.usable_credential(actor, id).await?;
        let certificate = self.signing_certificate(&credential).await?;
        let unlocked = self.unlock(&credential, pin, certificate).await?;
        Ok((unlocked.key, unlocked.certificate))
    }

    /// An RA (or admin) clears a credential's wrong-PIN count, unlocking it.
    pub async fn unlock_credential(&self, actor: &Actor, id: &str) -> Result<(), ServiceError> {
        if !matches!(actor.role, Role::Ra | Role::Admin) {
            return Err(ServiceError::Forbidden(
                "only a registration officer unlocks credentials".into(),
            ));
        }
        if !self.store.reset_pin_failures(id).await? {
            return Err(ServiceError::NotFound("credential"));
        }
        tracing::info!(credential = %id, by = actor.id, "credential unlocked");
        Ok(())
    }
}

impl Service {
    /// An RA or admin lets a clerk of the organization use its seal credential.
    pub async fn grant_credential(
        &self,
        actor: &Actor,
        id: &str,
        account: i64,
    ) -> Result<(), ServiceError> {
        let (credential, grantee) = self.grant_parties(actor, id, account).await?;
        if grantee.role != Role::Clerk.as_str() || grantee.disabled {
            return Err(ServiceError::Invalid(
                "only an enabled clerk account is granted a seal".into(),
            ));
        }
        let owner = self.store.account(credential.owner_account).await?;
        if let (Some(want), Some(owner_org)) = (
            grantee.organization.as_deref(),
            owner.as_ref().and_then(|o| o.organization.as_deref()),
        ) {
            if want != owner_org {
                return Err(ServiceError::Invalid(
                    "the clerk belongs to another organization".into(),
                ));
            }
        }
        self.store
            .grant_credential(id, account, actor.id, now().unix_timestamp())
            .await?;
        tracing::info!(credential = %id, account, by = actor.id, "credential granted");
        Ok(())
    }

    /// An RA or admin withdraws a clerk's use of a seal credential.
    pub async fn withdraw_credential(
        &self,
        actor: &Actor,
        id: &str,
        account: i64,
    ) -> Result<(), ServiceError> {
        if !actor.role.is_registrar() {
            return Err(ServiceError::Forbidden(
                "only a registration officer grants or withdraws credentials".into(),
            ));
        }
        if !self.store.withdraw_credential(id, account).await? {
            return Err(ServiceError::NotFound("grant"));
        }
        tracing::info!(credential = %id, account, by = actor.id, "credential withdrawn");
        Ok(())
    }

    /// The clerks granted a seal credential (RA, admin).
    pub async fn credential_grantees(
        &self,
        actor: &Actor,
        id: &str,
    ) -> Result<Vec<i64>, ServiceError> {
        if !actor.role.is_registrar() {
            return Err(ServiceError::Forbidden(
                "only a registration officer lists grants".into(),
            ));
        }
        Ok(self.store.credential_grantees(id).await?)
    }

    /// Checks a grant request: a registrar, an organization credential, an existing account.
    async fn grant_parties(
        &self,
        actor: &Actor,
        id: &str,
        account: i64,
    ) -> Result<(CredentialRow, crate::store::AccountRow), ServiceError> {
        if !actor.role.is_registrar() {
            return Err(ServiceError::Forbidden(
                "only a registration officer grants or withdraws credentials".into(),
            ));
        }
        let credential = self
            .store
            .credential(id)
            .await?
            .ok_or(ServiceError::NotFound("credential"))?;
        let certificate = self.signing_certificate(&credential).await?;
        if certificate.profile != "organization" {
            return Err(ServiceError::Invalid(
                "only an organization's credential (its seal) is shared with clerks".into(),
            ));
        }
        let grantee = self
            .store
            .account(account)
            .await?
            .ok_or(ServiceError::NotFound("account"))?;
        Ok((credential, grantee))
    }
}
