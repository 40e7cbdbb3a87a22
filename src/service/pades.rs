//! PAdES: signing PDFs by incremental update at the levels B-B to B-LTA, visible or not, in
//! one call or in two steps for a document-management system (prepare the PDF and get the
//! digest to sign; sign it through CSC `signHash`; finalize with the signature).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::sha256_hex;
use super::signing::{key_algorithm, Activation, Cades};
use super::{now, Actor, Service, ServiceError};
use crate::ledger::entry::Entry;
use crate::ledger::receipt::ReceiptJson;
use crate::pki::cms::{self, DigestAlgorithm, SignedAttributes};
use crate::pki::pdf;
use crate::store::{CertificateRow, CredentialRow};

/// How long a prepared two-step signature waits for its finalize.
const PREPARED_LIFETIME: Duration = Duration::from_secs(600);
/// Prepared signatures held at once, and the bytes of the PDFs they hold: beyond either, a
/// prepare is refused (503, try later) until some are finalized or expire.
const MAX_PREPARED: usize = 256;
const MAX_PREPARED_BYTES: usize = 512 << 20;

/// What a two-step signature signs: the PDF itself (kyso appends the signature's revision and
/// keeps the file until the finalize), or only the digest of the byte ranges of a revision the
/// caller's own PDF software made (the finalize then answers the CMS to embed).
pub enum PrepareDocument {
    Pdf {
        pdf: PdfBytes,
        options: PdfOptions,
    },
    ByteRangeDigest {
        algorithm: DigestAlgorithm,
        value: Vec<u8>,
    },
}

pub struct PrepareRequest {
    pub credential_id: String,
    pub level: PadesLevel,
    pub document: PrepareDocument,
}

/// The answer to a prepare: the digest to have signed (CSC `signHash`) and the handle to
/// finalize with.
pub struct PreparedSignature {
    pub handle: String,
    /// The digest of the CMS signed attributes, made with `digest_algorithm`.
    pub digest: Vec<u8>,
    pub digest_algorithm: DigestAlgorithm,
    pub expires_in: u64,
    pub level: PadesLevel,
}

/// A finalized two-step signature: the signed PDF, or the CMS for the caller to embed.
pub enum Finalized {
    Pdf {
        signed: SignedPdf,
        level: PadesLevel,
    },
    Cms {
        cms: Vec<u8>,
        document_digest: String,
        receipt: ReceiptJson,
        level: PadesLevel,
    },
}

struct Pending {
    account: i64,
    credential: String,
    attrs: SignedAttributes,
    message_digest: Vec<u8>,
    digest_alg: DigestAlgorithm,
    level: PadesLevel,
    prepared: Option<pdf::Prepared>,
    expires: Instant,
}

impl Pending {
    fn bytes(&self) -> usize {
        self.prepared.as_ref().map_or(0, |p| p.pdf.len())
    }
}

/// Prepared two-step signatures, by the SHA-256 of their handle (this node's memory: a
/// finalize goes to the node that prepared).
#[derive(Default)]
pub struct PendingSignatures(Mutex<HashMap<String, Pending>>);

impl PendingSignatures {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One PAdES signature request: the PDF is held in memory (an incremental update appends to
/// it).
pub struct PdfSignRequest {
    pub credential_id: String,
    pub activation: Activation,
    pub pdf: PdfBytes,
    pub level: PadesLevel,
    pub options: PdfOptions,
}

/// What a PAdES signature's revision says and shows.
#[derive(Default)]
pub struct PdfOptions {
    pub reason: Option<String>,
    pub location: Option<String>,
    /// A visible signature; `None`: invisible.
    pub visible: Option<VisibleSignature>,
    /// A certification signature (DocMDP, P=2: form filling and further signatures allowed);
    /// only as the document's first signature.
    pub certify: bool,
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
    if let Some(o) = crate::pki::subject_organization(&certificate.der) {
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

/// A PDF as it came in: its bytes and, when they were hashed as they arrived, the digest state
/// over all of them (a signature's byte ranges begin with the whole original file, so only
/// the new revision is left to hash).
pub struct PdfBytes {
    pub bytes: Vec<u8>,
    pub hashed: Option<Box<ring::digest::Context>>,
}

/// Spare capacity a PDF's buffer is read into, so that appending a signature's revision
/// (dictionary, reserved CMS, xref; an appearance with its image) does not copy the file.
pub const REVISION_ROOM: usize = 256 << 10;

/// Bytes to reserve in a PDF for a CAdES signature's CMS without a time-stamp: the signer's
/// certificate and chain, the signed attributes and the signature.
pub fn cms_reserve(certificate: &[u8], chain: &[impl AsRef<[u8]>]) -> usize {
    certificate.len() + chain.iter().map(|c| c.as_ref().len()).sum::<usize>() + 2048
}

impl PdfBytes {
    /// A copy of `pdf` in a buffer with [`REVISION_ROOM`] to spare, not yet hashed.
    pub fn copied(pdf: &[u8]) -> Self {
        let mut bytes = Vec::with_capacity(pdf.len() + REVISION_ROOM);
        bytes.extend_from_slice(pdf);
        bytes.into()
    }
}

impl From<Vec<u8>> for PdfBytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self {
            bytes,
            hashed: None,
        }
    }
}

/// Appends a signature revision to a PDF and hashes its byte ranges (call it on the blocking
/// pool: a file may be up to `max_pdf_bytes`). Public for `benches/pades_sign.rs`, which times
/// the signing engine with this same step.
pub fn prepare_pdf(
    pdf: PdfBytes,
    info: &pdf::SignatureInfo,
    field: &str,
    digest_alg: DigestAlgorithm,
) -> Result<(pdf::Prepared, Vec<u8>), pdf::PdfError> {
    let original_len = pdf.bytes.len();
    let prepared = pdf::prepare(pdf.bytes, info, field)?;
    let [first, second] = prepared.signed_ranges();
    // Appending never touches the original bytes, so a state over them continues the first
    // range; anything else (another algorithm) is hashed from the start.
    let mut ctx = match pdf.hashed {
        Some(c) if c.algorithm() == digest_alg.ring() && first.len() >= original_len => {
            let mut c = *c;
            c.update(&first[original_len..]);
            c
        }
        _ => {
            let mut c = ring::digest::Context::new(digest_alg.ring());
            c.update(first);
            c
        }
    };
    ctx.update(second);
    Ok((prepared, ctx.finish().as_ref().to_vec()))
}

impl Service {
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
        let level = req.level;
        // The document is checked before the PIN: a bad PDF costs no PIN attempt.
        let (prepared, message_digest) = self
            .pdf_revision(&certificate, req.pdf, level, req.options, digest_alg)
            .await?;
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
        let cms = self.cades(
            &unlocked,
            alg,
            digest_alg,
            &message_digest,
            None,
            level >= PadesLevel::BT,
        )?;
        self.complete_pdf(
            actor,
            &credential,
            &unlocked.certificate,
            prepared,
            cms,
            level,
            digest_alg.tagged_hex(&message_digest),
        )
        .await
    }

    /// Appends the signature's revision to the PDF (a visible signature's appearance too) and
    /// hashes its byte ranges, off the async workers (a file may be up to `max_pdf_bytes`).
    async fn pdf_revision(
        &self,
        certificate: &CertificateRow,
        pdf: PdfBytes,
        level: PadesLevel,
        options: PdfOptions,
        digest_alg: DigestAlgorithm,
    ) -> Result<(pdf::Prepared, Vec<u8>), ServiceError> {
        let PdfOptions {
            reason,
            location,
            visible,
            certify,
        } = options;
        let chain = self.chain_of(certificate)?;
        // Room for the CMS, and a time-stamp token (with its own TSA certificate and chain)
        // when asked for.
        let reserve = cms_reserve(&certificate.der, &chain)
            + if level >= PadesLevel::BT {
                self.time_stamp_reserve()
            } else {
                0
            };
        let signed_at = now();
        let visible = visible.map(|v| {
            let lines = v.lines.unwrap_or_else(|| {
                default_lines(
                    certificate,
                    signed_at,
                    reason.as_deref(),
                    location.as_deref(),
                )
            });
            (v.page, v.placement, v.image, lines)
        });
        let mut info = pdf::SignatureInfo {
            kind: pdf::SignatureKind::Cades,
            time: signed_at,
            reason,
            location,
            name: Some(certificate.common_name.clone()),
            reserve,
            appearance: None,
            certify: certify.then_some(2),
        };
        let field = format!("kyso-{}", hex::encode(super::random_bytes::<6>()?));
        tokio::task::spawn_blocking(move || {
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
        .map_err(|e| ServiceError::Invalid(e.to_string()))
    }

    /// Embeds the CMS, adds what the level asks for (B-LT: the DSS; B-LTA: the document
    /// time-stamp), records the signature and its time-stamps, and only then releases the PDF.
    #[allow(clippy::too_many_arguments)]
    async fn complete_pdf(
        &self,
        actor: &Actor,
        credential: &CredentialRow,
        certificate: &CertificateRow,
        prepared: pdf::Prepared,
        mut cms: Cades,
        level: PadesLevel,
        document_digest: String,
    ) -> Result<SignedPdf, ServiceError> {
        let mut signed = prepared
            .finish(&cms.der)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        if level >= PadesLevel::BLt {
            signed = self.add_validation_data(signed, certificate).await?;
        }
        if level >= PadesLevel::BLta {
            let (pdf, entry) = self.document_time_stamp(signed).await?;
            signed = pdf;
            cms.time_stamps.push(entry);
        }
        let receipt = self
            .record_signature(
                actor,
                credential,
                certificate,
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
            certify: None,
        };
        let field = format!("kyso-ts-{}", hex::encode(super::random_bytes::<6>()?));
        // The file was made here a moment ago: a failure to read it is ours.
        let (prepared, imprint) = tokio::task::spawn_blocking(move || {
            prepare_pdf(pdf.into(), &info, &field, DigestAlgorithm::Sha256)
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

    /// Two-step PAdES, step 1: checks the credential and the document, appends the signature's
    /// revision (or takes the caller's byte-range digest), and answers the digest of the CMS
    /// signed attributes to have signed through CSC `signHash`, with a handle for the finalize.
    pub async fn prepare_pdf_signature(
        &self,
        actor: &Actor,
        req: PrepareRequest,
    ) -> Result<PreparedSignature, ServiceError> {
        let (_, certificate, alg) = self.signer(actor, &req.credential_id).await?;
        let digest_alg = cms::native_digest(alg);
        let (prepared, message_digest) = match req.document {
            PrepareDocument::Pdf { pdf, options } => {
                let (p, d) = self
                    .pdf_revision(&certificate, pdf, req.level, options, digest_alg)
                    .await?;
                (Some(p), d)
            }
            PrepareDocument::ByteRangeDigest { algorithm, value } => {
                if req.level >= PadesLevel::BLt {
                    return Err(ServiceError::Invalid(
                        "B-LT and B-LTA need the PDF (kyso appends the DSS and the document \
                         time-stamp); send the PDF, or ask for B-B or B-T"
                            .into(),
                    ));
                }
                if algorithm != digest_alg {
                    return Err(ServiceError::Invalid(format!(
                        "this credential signs {digest_alg} digests, not {algorithm}"
                    )));
                }
                digest_alg
                    .check(&value)
                    .map_err(|e| ServiceError::Invalid(format!("byte_range_digest: {e}")))?;
                (None, value)
            }
        };
        let attrs = SignedAttributes::for_content(
            digest_alg,
            &message_digest,
            None,
            &certificate.der,
            cms::ID_DATA,
        )
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let digest = digest_alg.digest(&attrs.der);
        let handle = {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(super::random_bytes::<32>()?)
        };
        let pending = Pending {
            account: actor.id,
            credential: req.credential_id,
            attrs,
            message_digest,
            digest_alg,
            level: req.level,
            prepared,
            expires: Instant::now() + PREPARED_LIFETIME,
        };
        let mut waiting = self.prepared_pdfs.lock();
        let now = Instant::now();
        waiting.retain(|_, p| p.expires > now);
        let held: usize = waiting.values().map(Pending::bytes).sum();
        if waiting.len() >= MAX_PREPARED || held + pending.bytes() > MAX_PREPARED_BYTES {
            return Err(ServiceError::Unavailable);
        }
        waiting.insert(sha256_hex(handle.as_bytes()), pending);
        Ok(PreparedSignature {
            handle,
            digest,
            digest_algorithm: digest_alg,
            expires_in: PREPARED_LIFETIME.as_secs(),
            level: req.level,
        })
    }

    /// Two-step PAdES, step 2: the signature over the prepared digest (from `signHash`) is
    /// checked against the credential's certificate, wrapped into the CMS (with a signature
    /// time-stamp from B-T up), embedded (with the DSS and document time-stamp the level asks
    /// for) and recorded before it is released. A signature that does not verify leaves the
    /// handle usable; a handle is used once.
    pub async fn finalize_pdf_signature(
        &self,
        actor: &Actor,
        handle: &str,
        signature: Vec<u8>,
    ) -> Result<Finalized, ServiceError> {
        let key = sha256_hex(handle.as_bytes());
        let unknown = || ServiceError::NotFound("prepared signature");
        let pending = {
            let mut waiting = self.prepared_pdfs.lock();
            match waiting.remove(&key) {
                Some(p) if p.expires <= Instant::now() => return Err(unknown()),
                Some(p) if p.account != actor.id => {
                    waiting.insert(key.clone(), p);
                    return Err(unknown());
                }
                Some(p) => p,
                None => return Err(unknown()),
            }
        };
        let put_back = |p: Pending| {
            self.prepared_pdfs.lock().insert(key.clone(), p);
        };
        // The credential must still be usable and its certificate valid now.
        let checked = async {
            let credential = self.usable_credential(actor, &pending.credential).await?;
            let certificate = self.signing_certificate(&credential).await?;
            let alg = key_algorithm(&credential)?;
            Ok::<_, ServiceError>((credential, certificate, alg))
        }
        .await;
        let (credential, certificate, alg) = match checked {
            Ok(c) => c,
            Err(e) => {
                put_back(pending);
                return Err(e);
            }
        };
        if !cms::signature_verifies(alg, &certificate.der, &pending.attrs.der, &signature) {
            put_back(pending);
            return Err(ServiceError::Invalid(
                "the signature does not verify with the credential's certificate over the \
                 prepared digest"
                    .into(),
            ));
        }
        let cms = self.cades_around(
            &certificate,
            alg,
            &pending.attrs,
            &signature,
            pending.level >= PadesLevel::BT,
        )?;
        let document_digest = pending.digest_alg.tagged_hex(&pending.message_digest);
        match pending.prepared {
            Some(prepared) => Ok(Finalized::Pdf {
                signed: self
                    .complete_pdf(
                        actor,
                        &credential,
                        &certificate,
                        prepared,
                        cms,
                        pending.level,
                        document_digest,
                    )
                    .await?,
                level: pending.level,
            }),
            None => {
                let receipt = self
                    .record_signature(
                        actor,
                        &credential,
                        &certificate,
                        "pades",
                        &document_digest,
                        &cms,
                    )
                    .await?;
                Ok(Finalized::Cms {
                    cms: cms.der,
                    document_digest,
                    receipt,
                    level: pending.level,
                })
            }
        }
    }
}
