//! Interop: PDFs signed by pyHanko under a PKI independent of kyso's (tests/scripts/pki_pdf.py
//! makes a root, an intermediate, its CRL, signers good and bad and time-stamping units) and
//! how kyso's PDF verification judges each one, time-stamped (PAdES B-T, B-LT) or not.

mod common;
use common::*;

use std::path::Path;

use kyso::service::verification::RevocationData;
use serde_json::Value;

/// The PKI and the signed PDFs pki_pdf.py made.
struct Fixture {
    dir: std::path::PathBuf,
    root: Vec<u8>,
    crl: Vec<u8>,
    /// The root's CRL, over the intermediate.
    root_crl: Vec<u8>,
}

impl Fixture {
    fn pdf(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn with_crl(&self) -> RevocationData {
        RevocationData {
            crls: vec![
                (self.crl.clone(), "supplied"),
                (self.root_crl.clone(), "supplied"),
            ],
            ..Default::default()
        }
    }
}

fn fixture(env: &TestEnv) -> Fixture {
    let dir = env.dir.path().join("other-pki");
    let input = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/testdata/pdf-robustness/minimal-two-pages.pdf");
    let (ok, text) = venv_script("pki_pdf.py", &[&input, &dir]);
    assert!(ok, "pki_pdf.py failed:\n{text}");
    eprintln!("{text}");
    let root_pem = std::fs::read(dir.join("root.pem")).unwrap();
    Fixture {
        root: pem::parse(root_pem).unwrap().into_contents(),
        crl: std::fs::read(dir.join("crl.der")).unwrap(),
        root_crl: std::fs::read(dir.join("root-crl.der")).unwrap(),
        dir,
    }
}

async fn verify(
    env: &TestEnv,
    pdf: &[u8],
    anchors: &[Vec<u8>],
    revocation: RevocationData,
) -> Value {
    let report = env
        .service
        .verify_pdf(pdf, anchors, revocation)
        .await
        .unwrap();
    serde_json::to_value(&report).unwrap()
}

/// Collects the expectations a report does not meet, with the signature's full report, so
/// that one run shows every mismatch.
#[derive(Default)]
struct Check {
    failures: Vec<String>,
}

impl Check {
    /// Expects `expected` at JSON pointer `pointer` of signature `i` of `report` (case `case`).
    fn sig(&mut self, case: &str, report: &Value, i: usize, pointer: &str, expected: &str) {
        let sig = &report["signatures"][i];
        let got = sig.pointer(pointer).cloned().unwrap_or(Value::Null);
        if got.as_str() != Some(expected) {
            self.failures.push(format!(
                "{case}: signature {i} {pointer}: expected {expected:?}, got {got}\n{}",
                serde_json::to_string_pretty(sig).unwrap()
            ));
        }
    }

    /// Expects the document's indication, and signature `i`'s indication and sub-indication
    /// (`None`: none).
    fn verdict(
        &mut self,
        case: &str,
        report: &Value,
        i: usize,
        indication: &str,
        sub_indication: Option<&str>,
    ) {
        self.sig(case, report, i, "/indication", indication);
        let sig = &report["signatures"][i];
        let sub = &sig["sub_indication"];
        let sub_ok = match sub_indication {
            Some(s) => sub == s,
            None => sub.is_null(),
        };
        if !sub_ok {
            self.failures.push(format!(
                "{case}: signature {i} sub_indication: expected {sub_indication:?}, got {sub}\n{}",
                serde_json::to_string_pretty(sig).unwrap()
            ));
        }
    }

    /// Expects a warning of signature `i` containing `text`.
    fn warning(&mut self, case: &str, report: &Value, i: usize, text: &str) {
        let sig = &report["signatures"][i];
        let found = sig["warnings"].as_array().is_some_and(|w| {
            w.iter()
                .any(|w| w.as_str().is_some_and(|w| w.contains(text)))
        });
        if !found {
            self.failures.push(format!(
                "{case}: signature {i}: expected a warning containing {text:?}\n{}",
                serde_json::to_string_pretty(sig).unwrap()
            ));
        }
    }

    fn document(&mut self, case: &str, report: &Value, indication: &str) {
        if report["indication"] != indication {
            self.failures.push(format!(
                "{case}: document indication: expected {indication:?}, got {}\n{}",
                report["indication"],
                serde_json::to_string_pretty(report).unwrap()
            ));
        }
    }

    fn count(&mut self, case: &str, report: &Value, n: usize) {
        let got = report["signatures"].as_array().map_or(0, Vec::len);
        if got != n {
            self.failures.push(format!(
                "{case}: expected {n} signatures, got {got}\n{}",
                serde_json::to_string_pretty(report).unwrap()
            ));
        }
    }
}

#[tokio::test]
#[ignore = "needs pyHanko (KYSO_PKILINT_DIR); .ci/run runs it"]
async fn pyhanko_signed_pdfs_under_an_independent_pki_get_the_right_verdicts() {
    let env = env(Backend::Sqlite).await;
    let fx = fixture(&env);
    let anchors = [fx.root.clone()];
    let mut check = Check::default();

    // A good P-256 signer, with its issuer's CRL supplied.
    let p256 = fx.pdf("p256.pdf");
    let case = "p256.pdf with the CRL";
    let r = verify(&env, &p256, &anchors, fx.with_crl()).await;
    check.count(case, &r, 1);
    check.document(case, &r, "TOTAL_PASSED");
    check.verdict(case, &r, 0, "TOTAL_PASSED", None);
    check.sig(case, &r, 0, "/revocation/source", "supplied");
    check.sig(case, &r, 0, "/revocation/status", "good");
    check.sig(case, &r, 0, "/level", "PAdES-B-B");
    check.sig(case, &r, 0, "/format", "PAdES");
    check.sig(case, &r, 0, "/pdf/coverage", "whole_file");
    check.sig(case, &r, 0, "/pdf/changes_after", "none");
    check.sig(case, &r, 0, "/pdf/field", "Sig1");
    check.sig(case, &r, 0, "/signer/common_name", "Signer p256");
    check.sig(
        case,
        &r,
        0,
        "/chain/1",
        "C=VN, O=Other PKI, CN=Other Issuing CA",
    );
    check.sig(case, &r, 0, "/chain/2", "C=VN, O=Other PKI, CN=Other Root");

    // Without revocation data the status is unknown.
    let case = "p256.pdf without a CRL";
    let r = verify(&env, &p256, &anchors, RevocationData::default()).await;
    check.document(case, &r, "INDETERMINATE");
    check.verdict(case, &r, 0, "INDETERMINATE", Some("TRY_LATER"));

    // The signer's CRL alone: the intermediate CA's own status is unknown.
    let case = "p256.pdf with the issuing CA's CRL only";
    let only = RevocationData {
        crls: vec![(fx.crl.clone(), "supplied")],
        ..Default::default()
    };
    let r = verify(&env, &p256, &anchors, only).await;
    check.verdict(case, &r, 0, "INDETERMINATE", Some("TRY_LATER"));
    check.sig(case, &r, 0, "/revocation/status", "good");
    check.sig(
        case,
        &r,
        0,
        "/errors/0",
        "no revocation information for the CA certificate C=VN, O=Other PKI, CN=Other Issuing CA",
    );

    // Without the other PKI's root as an anchor there is no path.
    let case = "p256.pdf without a trust anchor";
    let r = verify(&env, &p256, &[], fx.with_crl()).await;
    check.document(case, &r, "INDETERMINATE");
    check.verdict(
        case,
        &r,
        0,
        "INDETERMINATE",
        Some("NO_CERTIFICATE_CHAIN_FOUND"),
    );

    // RSA signers, one with the documentSigning extended key usage.
    for name in ["rsa2048.pdf", "rsa3072.pdf"] {
        let case = format!("{name} with the CRL");
        let r = verify(&env, &fx.pdf(name), &anchors, fx.with_crl()).await;
        check.document(&case, &r, "TOTAL_PASSED");
        check.verdict(&case, &r, 0, "TOTAL_PASSED", None);
        check.sig(&case, &r, 0, "/revocation/source", "supplied");
        check.sig(&case, &r, 0, "/revocation/status", "good");
    }

    // Revoked an hour ago, in the CRL supplied.
    let case = "revoked.pdf with the CRL";
    let r = verify(&env, &fx.pdf("revoked.pdf"), &anchors, fx.with_crl()).await;
    check.document(case, &r, "TOTAL_FAILED");
    check.verdict(case, &r, 0, "TOTAL_FAILED", Some("REVOKED"));
    check.sig(case, &r, 0, "/revocation/status", "revoked");

    // Expired a day ago, with no proof of existence before.
    let case = "expired.pdf with the CRL";
    let r = verify(&env, &fx.pdf("expired.pdf"), &anchors, fx.with_crl()).await;
    check.document(case, &r, "INDETERMINATE");
    check.verdict(case, &r, 0, "INDETERMINATE", Some("OUT_OF_BOUNDS_NO_POE"));

    // A TLS server certificate is not for signing documents.
    let case = "server.pdf with the CRL";
    let r = verify(&env, &fx.pdf("server.pdf"), &anchors, fx.with_crl()).await;
    check.document(case, &r, "INDETERMINATE");
    check.verdict(
        case,
        &r,
        0,
        "INDETERMINATE",
        Some("CHAIN_CONSTRAINTS_FAILURE"),
    );

    // The CRLs in the DSS serve when none is supplied.
    let case = "p256-dss.pdf without a supplied CRL";
    let r = verify(
        &env,
        &fx.pdf("p256-dss.pdf"),
        &anchors,
        RevocationData::default(),
    )
    .await;
    check.count(case, &r, 1);
    check.document(case, &r, "TOTAL_PASSED");
    check.verdict(case, &r, 0, "TOTAL_PASSED", None);
    check.sig(case, &r, 0, "/revocation/source", "dss");
    check.sig(case, &r, 0, "/revocation/status", "good");
    // pyHanko adds the DSS in an incremental update of its own after the signature.
    check.sig(case, &r, 0, "/pdf/coverage", "revision");
    check.sig(case, &r, 0, "/pdf/changes_after", "validation_data");

    // Two signatures in two incremental updates.
    let case = "two.pdf with the CRL";
    let r = verify(&env, &fx.pdf("two.pdf"), &anchors, fx.with_crl()).await;
    check.count(case, &r, 2);
    check.document(case, &r, "TOTAL_PASSED");
    check.verdict(case, &r, 0, "TOTAL_PASSED", None);
    check.sig(case, &r, 0, "/pdf/field", "Sig1");
    check.sig(case, &r, 0, "/pdf/coverage", "revision");
    check.sig(case, &r, 0, "/pdf/changes_after", "signatures");
    check.sig(case, &r, 0, "/signer/common_name", "Signer p256");
    check.verdict(case, &r, 1, "TOTAL_PASSED", None);
    check.sig(case, &r, 1, "/pdf/field", "Sig2");
    check.sig(case, &r, 1, "/pdf/coverage", "whole_file");
    check.sig(case, &r, 1, "/pdf/changes_after", "none");
    check.sig(case, &r, 1, "/signer/common_name", "Signer rsa3072");

    // One byte of the first page's content stream changed, inside the signed range.
    let case = "p256.pdf with a byte flipped";
    let at = p256
        .windows(b"(Hello World)".len())
        .position(|w| w == b"(Hello World)")
        .expect("the first page's text")
        + 1;
    let first_range = verify(&env, &p256, &anchors, fx.with_crl()).await["signatures"][0]["pdf"]
        ["byte_range"][1]
        .as_u64()
        .unwrap() as usize;
    assert!(
        at < first_range,
        "the byte at {at} is signed (first range ends at {first_range})"
    );
    let mut flipped = p256.clone();
    flipped[at] ^= 0x02; // 'H' -> 'J'
    let r = verify(&env, &flipped, &anchors, fx.with_crl()).await;
    check.document(case, &r, "TOTAL_FAILED");
    check.verdict(case, &r, 0, "TOTAL_FAILED", Some("HASH_FAILURE"));

    // B-T: a signature time-stamp by the other PKI's TSA, at the current time.
    let case = "p256-bt.pdf with the CRL";
    let r = verify(&env, &fx.pdf("p256-bt.pdf"), &anchors, fx.with_crl()).await;
    check.count(case, &r, 1);
    check.document(case, &r, "TOTAL_PASSED");
    check.verdict(case, &r, 0, "TOTAL_PASSED", None);
    check.sig(case, &r, 0, "/level", "PAdES-B-T");
    check.sig(
        case,
        &r,
        0,
        "/validation_time_source",
        "signature time-stamp",
    );
    check.sig(case, &r, 0, "/time_stamps/0/indication", "TOTAL_PASSED");
    check.sig(
        case,
        &r,
        0,
        "/time_stamps/0/tsa",
        "C=VN, O=Other PKI, CN=Other TSA",
    );
    check.sig(case, &r, 0, "/revocation/source", "supplied");
    check.sig(case, &r, 0, "/revocation/status", "good");

    // B-LT: B-T with the chains and CRLs in the DSS, which serve when no CRL is supplied.
    let case = "p256-blt.pdf without a supplied CRL";
    let r = verify(
        &env,
        &fx.pdf("p256-blt.pdf"),
        &anchors,
        RevocationData::default(),
    )
    .await;
    check.count(case, &r, 1);
    check.document(case, &r, "TOTAL_PASSED");
    check.verdict(case, &r, 0, "TOTAL_PASSED", None);
    check.sig(case, &r, 0, "/level", "PAdES-B-LT");
    check.sig(case, &r, 0, "/time_stamps/0/indication", "TOTAL_PASSED");
    check.sig(case, &r, 0, "/revocation/source", "dss");
    check.sig(case, &r, 0, "/revocation/status", "good");

    // Expired a day ago, but time-stamped five days ago, while it was valid.
    let case = "expired-bt.pdf with the CRL";
    let r = verify(&env, &fx.pdf("expired-bt.pdf"), &anchors, fx.with_crl()).await;
    check.document(case, &r, "TOTAL_PASSED");
    check.verdict(case, &r, 0, "TOTAL_PASSED", None);
    check.sig(
        case,
        &r,
        0,
        "/validation_time_source",
        "signature time-stamp",
    );
    check.sig(case, &r, 0, "/time_stamps/0/indication", "TOTAL_PASSED");
    check.sig(case, &r, 0, "/revocation/status", "good");

    // Time-stamped now, after it expired: proof that it was signed too late.
    let case = "late-bt.pdf with the CRL";
    let r = verify(&env, &fx.pdf("late-bt.pdf"), &anchors, fx.with_crl()).await;
    check.document(case, &r, "TOTAL_FAILED");
    check.verdict(case, &r, 0, "TOTAL_FAILED", Some("EXPIRED"));
    check.sig(
        case,
        &r,
        0,
        "/validation_time_source",
        "signature time-stamp",
    );
    check.sig(case, &r, 0, "/time_stamps/0/indication", "TOTAL_PASSED");

    // Revoked an hour ago, but time-stamped two days ago, before its revocation.
    let case = "revoked-early-bt.pdf with the CRL";
    let r = verify(
        &env,
        &fx.pdf("revoked-early-bt.pdf"),
        &anchors,
        fx.with_crl(),
    )
    .await;
    check.document(case, &r, "TOTAL_PASSED");
    check.verdict(case, &r, 0, "TOTAL_PASSED", None);
    check.sig(
        case,
        &r,
        0,
        "/validation_time_source",
        "signature time-stamp",
    );
    check.sig(case, &r, 0, "/revocation/status", "revoked");
    check.warning(case, &r, 0, "after the time-stamp");

    // A TSA certificate without the timeStamping extended key usage: the time-stamp does not
    // validate and proves nothing, so the signature is judged at the current time.
    let case = "bad-tsa-bt.pdf with the CRL";
    let r = verify(&env, &fx.pdf("bad-tsa-bt.pdf"), &anchors, fx.with_crl()).await;
    check.document(case, &r, "TOTAL_PASSED");
    check.verdict(case, &r, 0, "TOTAL_PASSED", None);
    check.sig(case, &r, 0, "/time_stamps/0/indication", "INDETERMINATE");
    check.sig(
        case,
        &r,
        0,
        "/time_stamps/0/sub_indication",
        "CHAIN_CONSTRAINTS_FAILURE",
    );
    check.sig(case, &r, 0, "/validation_time_source", "current time");
    check.warning(case, &r, 0, "time-stamp does not validate");

    // An OpenSSL CMS by the same signer carries its own certificate only: the path needs the
    // intermediate, from the caller's trusted certificates or the configured trust directory
    // (where it is an intermediate under the root, not an anchor).
    std::fs::write(fx.dir.join("letter.txt"), "Giấy mời họp\n").unwrap();
    let letter = std::fs::read(fx.dir.join("letter.txt")).unwrap();
    let (ok, text) = openssl_in(
        &fx.dir,
        &[
            "cms",
            "-sign",
            "-binary",
            "-in",
            "letter.txt",
            "-signer",
            "p256.pem",
            "-inkey",
            "p256-key.pem",
            "-outform",
            "DER",
            "-out",
            "letter.p7s",
        ],
    );
    assert!(ok, "{text}");
    let p7s = std::fs::read(fx.dir.join("letter.p7s")).unwrap();
    let intermediate = pem::parse(std::fs::read(fx.dir.join("intermediate.pem")).unwrap())
        .unwrap()
        .into_contents();
    let cms = |service: std::sync::Arc<kyso::service::Service>, anchors: Vec<Vec<u8>>| {
        let (letter, p7s, revocation) = (letter.clone(), p7s.clone(), fx.with_crl());
        async move {
            let r = service
                .verify_cms(
                    Some(kyso::pki::validate::Signed::Document(&letter)),
                    &p7s,
                    &anchors,
                    revocation,
                )
                .await
                .unwrap();
            serde_json::to_value(&r).unwrap()
        }
    };
    let case = "OpenSSL CMS, the root alone trusted";
    let r = cms(env.service.clone(), anchors.to_vec()).await;
    check.verdict(
        case,
        &r,
        0,
        "INDETERMINATE",
        Some("NO_CERTIFICATE_CHAIN_FOUND"),
    );
    let case = "OpenSSL CMS, the root and the intermediate given";
    let r = cms(
        env.service.clone(),
        vec![fx.root.clone(), intermediate.clone()],
    )
    .await;
    check.verdict(case, &r, 0, "TOTAL_PASSED", None);
    check.sig(case, &r, 0, "/chain/2", "C=VN, O=Other PKI, CN=Other Root");
    let trust = env.dir.path().join("other-trust");
    std::fs::create_dir_all(&trust).unwrap();
    std::fs::copy(fx.dir.join("root.pem"), trust.join("root.pem")).unwrap();
    std::fs::copy(
        fx.dir.join("intermediate.pem"),
        trust.join("intermediate.pem"),
    )
    .unwrap();
    let mut cfg = env.cfg.clone();
    cfg.trust_dirs = vec![trust];
    let configured = kyso::service::setup::open_service(&cfg).await.unwrap();
    let case = "OpenSSL CMS, root and intermediate in a trust directory";
    let r = cms(configured, Vec::new()).await;
    check.verdict(case, &r, 0, "TOTAL_PASSED", None);
    check.sig(
        case,
        &r,
        0,
        "/chain/1",
        "C=VN, O=Other PKI, CN=Other Issuing CA",
    );

    assert!(
        check.failures.is_empty(),
        "{} mismatches:\n\n{}",
        check.failures.len(),
        check.failures.join("\n\n")
    );
}
