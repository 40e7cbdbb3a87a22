//! The portal in a real browser: `kyso serve` on a fresh data directory, then
//! tests/browser/portal.mjs (Playwright driving Debian's Chromium) registers a citizen, has an
//! RA approve the request at the desk, signs a PDF, checks it on the verification page, finds
//! it in the ledger, revokes and checks again, with the bad inputs along the way; screenshots go
//! to target/screenshots/. Then what the browser downloaded is checked here by other tools:
//! OpenSSL verifies the certificate, qpdf finds the signed PDF well formed, and kyso's verifier
//! finds its signature by the now revoked certificate.
//!
//! Needs Chromium and `npm ci` in tests/browser (`.ci/run` does both), so it is ignored by
//! default: `cargo test --test portal_browser -- --include-ignored`.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// Uploads larger than this are refused (the browser test sends one a little larger).
const MAX_PDF: &str = "1048576";

#[test]
#[ignore = "needs Chromium and tests/browser/node_modules (.ci/run installs both)"]
fn citizen_registers_is_approved_signs_verifies_and_revokes_in_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let browser_dir = root.join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").is_dir(),
        "run `npm ci` in tests/browser first (.ci/run does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let admin = kyso_init(&data, None);
    std::env::set_var("KYSO_MAX_PDF_BYTES", MAX_PDF);
    let server = spawn_plain_server(&data, None);
    std::env::remove_var("KYSO_MAX_PDF_BYTES");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let shots = root.join("target/screenshots");
    let pdf = root.join("../shared/testdata/pdf-robustness/empty-a4.pdf");
    let out = Command::new("node")
        .arg(browser_dir.join("portal.mjs"))
        .current_dir(&browser_dir)
        .env("KYSO_URL", format!("http://{}", server.addr))
        .env("KYSO_ADMIN_TOKEN", &admin)
        .env("KYSO_PDF", &pdf)
        .env("KYSO_WORK", &work)
        .env("KYSO_SCREENSHOTS", &shots)
        .env("KYSO_MAX_PDF_BYTES", MAX_PDF)
        .output()
        .expect("node is installed");
    let report =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{report}");
    assert!(report.contains("checks passed"), "{report}");
    for shot in [
        "register",
        "desk",
        "me-active",
        "signed",
        "verify-valid",
        "verify-revoked",
        "ledger",
    ] {
        assert!(
            std::fs::read_dir(&shots)
                .unwrap()
                .filter_map(|e| e.ok())
                .any(|e| e
                    .file_name()
                    .to_string_lossy()
                    .ends_with(&format!("-{shot}.png"))),
            "a screenshot of {shot}"
        );
    }

    // What the browser downloaded, checked by others.
    let (ok, text) = openssl_in(
        &work,
        &[
            "verify",
            "-CAfile",
            data.join("certs/chain.pem").to_str().unwrap(),
            "citizen.pem",
        ],
    );
    assert!(ok && text.contains("OK"), "{text}");
    let qpdf = Command::new("qpdf")
        .args(["--check", "signed.pdf"])
        .current_dir(&work)
        .output()
        .expect("qpdf is installed");
    assert!(
        qpdf.status.success(),
        "{}",
        String::from_utf8_lossy(&qpdf.stdout)
    );
    let (ok, text) = kyso_run(
        &data,
        None,
        &[
            "verify",
            work.join("signed.pdf").to_str().unwrap(),
            "--json",
        ],
    );
    // Time-stamped before the revocation: still valid (exit 0), the revocation reported.
    assert!(ok, "{text}");
    let report: serde_json::Value = serde_json::from_str(text.trim_start_matches(|c| c != '{'))
        .unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(report["indication"], "TOTAL_PASSED", "{report}");
    assert_eq!(
        report["signatures"][0]["revocation"]["status"], "revoked",
        "{report}"
    );
    assert_eq!(
        report["signatures"][0]["signer"]["common_name"], "Nguyễn Thị Bình",
        "{report}"
    );
    drop(server);
}
