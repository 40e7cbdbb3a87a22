//! `kyso sign` and `kyso tsa` against a real `kyso serve`: several files signed by digest, each
//! FILE.p7s verified by OpenSSL; a wrong PIN fails with a non-zero exit and names the file; a
//! time-stamp reply that `openssl ts -verify` accepts.

mod common;

use std::path::Path;
use std::process::Command;

use common::{kyso_init, spawn_plain_server};
use serde_json::json;

fn kyso(args: &[&str], cwd: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kyso"))
        .args(args)
        .current_dir(cwd)
        .env_remove("KYSO_DATA_DIR")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn openssl(args: &[&str], cwd: &Path) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test]
async fn kyso_sign_and_tsa_work_against_a_real_server() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    let admin = kyso_init(&dir, None);
    let server = spawn_plain_server(&dir, None);
    let base = format!("http://{}", server.addr);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    // A citizen with a server-generated key.
    let acct: serde_json::Value = http
        .post(format!("{base}/api/v1/accounts"))
        .bearer_auth(&admin)
        .json(&json!({"name": "Vũ Thị Lan", "role": "citizen", "citizen_id": "001099007000"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = acct["token"].as_str().unwrap().to_string();
    let issued: serde_json::Value = http
        .post(format!("{base}/api/v1/certificates"))
        .bearer_auth(&token)
        .json(&json!({"profile": "citizen", "subject": {"common_name": "Vũ Thị Lan", "citizen_id": "001099007000"},
                      "key": {"algorithm": "ecdsa-p384", "pin": "864200"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let credential = issued["credential_id"]
        .as_str()
        .expect("credential")
        .to_string();

    let work = d.path().join("docs");
    std::fs::create_dir_all(&work).unwrap();
    let files = ["a.txt", "b.txt", "c.txt"];
    for (i, f) in files.iter().enumerate() {
        std::fs::write(work.join(f), format!("Văn bản số {i}\n").repeat(10_000)).unwrap();
    }
    std::fs::write(work.join("pin.txt"), "864200\n").unwrap();
    std::fs::write(work.join("bad-pin.txt"), "000000\n").unwrap();
    let chain = dir.join("certs/chain.pem");
    let chain = chain.to_str().unwrap();

    let mut args = vec![
        "sign",
        "--server",
        &base,
        "--token",
        &token,
        "--credential",
        &credential,
        "--pin-file",
        "pin.txt",
        "--timestamp",
        "-o",
        "signed",
    ];
    args.extend(files);
    let (ok, text) = kyso(&args, &work);
    assert!(ok, "{text}");
    assert!(text.contains("3 signed, 0 failed"), "{text}");
    for f in files {
        let p7s = format!("signed/{f}.p7s");
        let (ok, out) = openssl(
            &[
                "cms",
                "-verify",
                "-binary",
                "-inform",
                "DER",
                "-in",
                &p7s,
                "-content",
                f,
                "-CAfile",
                chain,
                "-purpose",
                "any",
                "-out",
                "/dev/null",
            ],
            &work,
        );
        assert!(ok, "{f}: {out}");
        assert!(work.join(format!("signed/{f}.p7s.receipt.json")).exists());
    }

    // A wrong PIN: non-zero exit, the file named, nothing written.
    let (ok, text) = kyso(
        &[
            "sign",
            "--server",
            &base,
            "--token",
            &token,
            "--credential",
            &credential,
            "--pin-file",
            "bad-pin.txt",
            "-o",
            "bad",
            "a.txt",
        ],
        &work,
    );
    assert!(
        !ok && text.contains("FAILED a.txt") && text.contains("wrong PIN"),
        "{text}"
    );
    assert!(!work.join("bad/a.txt.p7s").exists());
    // A missing file and an unknown credential are clear errors too.
    let (ok, text) = kyso(
        &[
            "sign",
            "--server",
            &base,
            "--token",
            &token,
            "--credential",
            "nope",
            "--pin-file",
            "pin.txt",
            "a.txt",
        ],
        &work,
    );
    assert!(!ok && text.contains("credential nope"), "{text}");

    // PAdES: FILE.signed.pdf beside the input, qpdf finds it well formed, and the PDF that is
    // not one fails alone.
    let pdf = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/testdata/pdf-robustness/minimal-two-pages.pdf");
    std::fs::copy(&pdf, work.join("quyet-dinh.pdf")).unwrap();
    let (ok, text) = kyso(
        &[
            "sign",
            "--format",
            "pades",
            "--level",
            "B-LTA",
            "--position",
            "top-right",
            "--reason",
            "Phê duyệt",
            "--server",
            &base,
            "--token",
            &token,
            "--credential",
            &credential,
            "--pin-file",
            "pin.txt",
            "quyet-dinh.pdf",
            "a.txt",
        ],
        &work,
    );
    assert!(
        !ok && text.contains("1 signed, 1 failed") && text.contains("FAILED a.txt"),
        "{text}"
    );
    let signed = std::fs::read(work.join("quyet-dinh.signed.pdf")).unwrap();
    assert!(signed.starts_with(&std::fs::read(&pdf).unwrap()));
    // B-LTA: a DSS and a document time-stamp follow the signature.
    let tail = String::from_utf8_lossy(&signed);
    assert!(
        tail.contains("/Type /DSS") && tail.contains("/SubFilter /ETSI.RFC3161"),
        "the CLI's --level reached the server"
    );
    assert!(work.join("quyet-dinh.signed.pdf.receipt.json").exists());
    let out = Command::new("qpdf")
        .args(["--check", "quyet-dinh.signed.pdf"])
        .current_dir(&work)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!work.join("a.txt.signed.pdf").exists());
    assert!(
        tail.contains("/AP <<"),
        "--position made the signature visible"
    );

    // A seal image: the PDF and the PNG go as JSON; page 2 gets the visible signature.
    let mut png_bytes = Vec::new();
    let mut enc = png::Encoder::new(&mut png_bytes, 2, 2);
    enc.set_color(png::ColorType::Rgba);
    enc.write_header()
        .unwrap()
        .write_image_data(&[200, 0, 0, 255].repeat(4))
        .unwrap();
    std::fs::write(work.join("seal.png"), &png_bytes).unwrap();
    std::fs::copy(&pdf, work.join("ban-sao.pdf")).unwrap();
    let (ok, text) = kyso(
        &[
            "sign",
            "--format",
            "pades",
            "--page",
            "2",
            "--rect",
            "20,20,200,100",
            "--image",
            "seal.png",
            "--server",
            &base,
            "--token",
            &token,
            "--credential",
            &credential,
            "--pin-file",
            "pin.txt",
            "ban-sao.pdf",
        ],
        &work,
    );
    assert!(ok, "{text}");
    let sealed = std::fs::read(work.join("ban-sao.signed.pdf")).unwrap();
    let sealed = String::from_utf8_lossy(&sealed);
    assert!(
        sealed.contains("/Subtype /Image") && sealed.contains("/Rect [20 20 200 100]"),
        "the image and rectangle reached the server"
    );

    // kyso tsa: a reply OpenSSL verifies against the document.
    let (ok, text) = kyso(&["tsa", "--server", &base, "b.txt"], &work);
    assert!(ok, "{text}");
    let (ok, out) = openssl(
        &[
            "ts",
            "-verify",
            "-data",
            "b.txt",
            "-in",
            "b.txt.tsr",
            "-CAfile",
            chain,
        ],
        &work,
    );
    assert!(ok && out.contains("Verification: OK"), "{out}");
}
