//! PAdES B-B signing in process: the server's whole signing step for one PDF held in memory,
//! without HTTP. The same work `bench/pades_pyhanko.py` times for pyHanko (bytes in, signed
//! bytes out), plus what only the server does: the credential and certificate reads, the SAD
//! check and the durable ledger entry (its batch committed, fdatasync included) before the
//! signed PDF is released.
//!
//! ```sh
//! cargo bench --bench pades_sign -- PDF [--rounds N] [--out FILE] [--out-engine FILE]
//! ```
//!
//! A real data dir (`kyso init`) on the embedded SQLite default in a temporary directory; a
//! citizen with a server-generated P-256 key; one SAD for all rounds (so no round pays the PIN's
//! Argon2id, as in `bench/pades.sh`). Each round hashes the whole file from its first byte (over
//! HTTP the upload is hashed as it arrives; here nothing is hashed before the clock starts); the
//! file is copied, before the clock starts, into a buffer with the room the server's upload
//! buffer has for the new revision (`PdfBytes::copied`).
//! One warm-up signature is not timed; with `--out` it is written there for the caller to check.
//! Prints one line: `KYSO_INPROC median_ms=… min_ms=… max_ms=… rounds=…`.
//!
//! Then the signing engine alone, the same rounds: the revision, the hash, the signed
//! attributes, the ECDSA signature with the credential's key (opened once with its PIN) and the
//! CMS with the chain, embedded — what pyHanko's figure covers, without the reads, the SAD and
//! the ledger entry. Its warm-up output goes to `--out-engine` when given. Prints
//! `KYSO_ENGINE median_ms=… …`; the difference between the two lines is what the service adds,
//! mostly the durable ledger commit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kyso::config::{Config, Overrides};
use kyso::keys::SigningKey;
use kyso::pki::cms::{self, SignedAttributes};
use kyso::pki::pdf;
use kyso::pki::profile::SubjectRequest;
use kyso::service::accounts::AccountSpec;
use kyso::service::issuance::{IssueOutcome, IssueRequest, KeySpec};
use kyso::service::pades::{
    cms_reserve, prepare_pdf, PadesLevel, PdfBytes, PdfOptions, PdfSignRequest,
};
use kyso::service::signing::Activation;
use kyso::service::{setup, Actor, Role, Service};
use zeroize::Zeroizing;

// As in the kyso binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    pdf: std::path::PathBuf,
    rounds: usize,
    out: Option<std::path::PathBuf>,
    out_engine: Option<std::path::PathBuf>,
}

fn args() -> Args {
    let mut pdf = None;
    let mut rounds = 15;
    let mut out = None;
    let mut out_engine = None;
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        match k.as_str() {
            "--rounds" => {
                rounds = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--rounds takes a number")
            }
            "--out" => out = it.next().map(Into::into),
            "--out-engine" => out_engine = it.next().map(Into::into),
            "--bench" => {}
            other if other.starts_with("--") => panic!("unknown argument {other}"),
            path => pdf = Some(path.into()),
        }
    }
    Args {
        pdf: pdf.expect("usage: pades_sign PDF [--rounds N] [--out FILE] [--out-engine FILE]"),
        rounds,
        out,
        out_engine,
    }
}

/// A citizen's server-held P-256 credential.
struct Credential {
    actor: Actor,
    id: String,
    /// A SAD for the rounds of the service's signing.
    sad: Zeroizing<String>,
    /// The key opened with the PIN, and the certificate chain, for the engine alone.
    key: Arc<dyn SigningKey>,
    certificate: Vec<u8>,
    chain: Vec<Vec<u8>>,
}

/// A citizen account with a server-held P-256 key and a SAD for `signatures` signatures.
async fn citizen_credential(svc: &Service, signatures: u32) -> Credential {
    let cccd = "001099012345";
    let pin = || Zeroizing::new("123456".to_string());
    let account = svc
        .create_account(
            &Actor::operator(),
            &AccountSpec {
                name: "bench".into(),
                role: Role::Citizen,
                organization: None,
                citizen_id: Some(cccd.into()),
            },
        )
        .await
        .expect("citizen account");
    let actor = svc
        .authenticate(&account.token)
        .await
        .expect("citizen token");
    let req = IssueRequest {
        profile: "citizen".into(),
        subject: SubjectRequest {
            common_name: "Nguyễn Văn Bench".into(),
            citizen_id: Some(cccd.into()),
            ..Default::default()
        },
        csr: None,
        key: Some(KeySpec {
            algorithm: None,
            pin: pin(),
            hsm: false,
        }),
        validity_days: None,
        owner_account: None,
    };
    let IssueOutcome::Issued(issued) = svc
        .request_certificate(&actor, req, None)
        .await
        .expect("citizen certificate")
    else {
        panic!("a citizen's own certificate is issued at once")
    };
    let id = issued
        .credential_id
        .expect("a generated key has a credential");
    let sad = svc
        .csc_authorize(&actor, &id, pin(), signatures, None)
        .await
        .expect("SAD")
        .sad;
    let (key, row) = svc
        .open_credential(&actor, &id, pin())
        .await
        .expect("the key, opened with its PIN");
    let chain = pem::parse_many(&issued.chain_pem)
        .expect("chain PEM")
        .into_iter()
        .map(|p| p.into_contents())
        .collect();
    Credential {
        actor,
        id,
        sad,
        key,
        certificate: row.der,
        chain,
    }
}

fn request(c: &Credential, pdf: &[u8]) -> PdfSignRequest {
    PdfSignRequest {
        credential_id: c.id.clone(),
        activation: Activation::Sad(c.sad.clone()),
        pdf: PdfBytes::copied(pdf),
        level: PadesLevel::BB,
        options: PdfOptions::default(),
    }
}

/// The signing engine alone on `pdf`: revision, hash, signed attributes, signature, CMS with
/// the chain, embedded.
fn sign_engine(pdf: PdfBytes, c: &Credential) -> Vec<u8> {
    let chain: Vec<&[u8]> = c.chain.iter().map(Vec::as_slice).collect();
    let info = pdf::SignatureInfo {
        kind: pdf::SignatureKind::Cades,
        time: time::OffsetDateTime::now_utc(),
        reason: None,
        location: None,
        name: Some("Nguyễn Văn Bench".into()),
        reserve: cms_reserve(&c.certificate, &chain),
        appearance: None,
        certify: None,
    };
    let digest_alg = cms::native_digest(c.key.algorithm());
    let (prepared, digest) =
        prepare_pdf(pdf, &info, "Signature1", digest_alg).expect("revision and hash");
    let attrs =
        SignedAttributes::for_content(digest_alg, &digest, None, &c.certificate, cms::ID_DATA)
            .expect("signed attributes");
    let signature = c.key.sign(&attrs.der).expect("signature");
    let der = cms::assemble(
        &attrs,
        c.key.algorithm(),
        &signature,
        &c.certificate,
        &chain,
        &[],
    )
    .expect("CMS");
    prepared.finish(&der).expect("embedded")
}

/// Prints `NAME median_ms=… min_ms=… max_ms=… rounds=…`.
fn report(name: &str, mut times: Vec<Duration>) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    times.sort();
    println!(
        "{name} median_ms={:.3} min_ms={:.3} max_ms={:.3} rounds={}",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1]),
        times.len()
    );
}

#[tokio::main]
async fn main() {
    let a = args();
    let pdf = std::fs::read(&a.pdf).expect("read the PDF");
    let tmp = tempfile::tempdir().expect("temporary directory");
    let cfg = Config::load(tmp.path(), &Overrides::default()).expect("config");
    setup::init(&cfg).await.expect("kyso init");
    let svc = setup::open_service(&cfg).await.expect("service");
    let c = citizen_credential(&svc, a.rounds as u32 + 1).await;

    let warm = svc
        .sign_pdf(&c.actor, request(&c, &pdf))
        .await
        .expect("warm-up signature");
    assert!(warm.pdf.len() > pdf.len(), "the signed PDF is no larger");
    if let Some(out) = &a.out {
        std::fs::write(out, &warm.pdf).expect("write the warm-up signature");
    }
    let mut times = Vec::with_capacity(a.rounds);
    for _ in 0..a.rounds {
        let req = request(&c, &pdf);
        let t = Instant::now();
        let signed = svc.sign_pdf(&c.actor, req).await.expect("signature");
        times.push(t.elapsed());
        assert!(signed.pdf.len() > pdf.len(), "the signed PDF is no larger");
    }
    report("KYSO_INPROC", times);

    let warm = sign_engine(PdfBytes::copied(&pdf), &c);
    assert!(warm.len() > pdf.len(), "the signed PDF is no larger");
    if let Some(out) = &a.out_engine {
        std::fs::write(out, &warm).expect("write the engine's warm-up signature");
    }
    let mut times = Vec::with_capacity(a.rounds);
    for _ in 0..a.rounds {
        let input = PdfBytes::copied(&pdf);
        let t = Instant::now();
        let signed = sign_engine(input, &c);
        times.push(t.elapsed());
        assert!(signed.len() > pdf.len(), "the signed PDF is no larger");
    }
    report("KYSO_ENGINE", times);
}
