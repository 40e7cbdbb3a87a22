//! Signing with keys that never leave a PKCS #11 token (SoftHSM2): `kyso init` into the token
//! puts the CA, TSA and ledger keys there, OCSP responder keys are made there on first use,
//! and organization credentials are generated there (`--in-hsm` in the console, `hsm: true` in
//! the API; ECDSA P-256 and RSA-3072 with PKCS #1 v1.5 and PSS). A CAdES signature OpenSSL
//! verifies, a PAdES B-LT signature pdfsig and kyso's verifier accept, an OCSP answer OpenSSL
//! verifies, checkpoints signed by the ledger key in the token, a restart, and signing again.
//! Then the token goes away while the server runs: signatures fail with 503 problem+json and
//! nothing reaches the ledger; when it is back, signing works again without a restart.

mod common;

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use kyso::ledger::checkpoint::{self, Verifier};
use serde_json::{json, Value};

use common::*;

const PIN: &str = "531246";
const SEAL_PIN: &str = "hsm-seal-2468";
const DOCUMENT: &[u8] = "Quyết định số 12/QĐ-UBND về việc ký số bằng khoá trong HSM".as_bytes();

struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    fn new(server: &Server) -> Self {
        Self {
            base: format!("http://{}", server.addr),
            client: reqwest::Client::new(),
        }
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value, Option<String>) {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let json = r.json().await.unwrap_or(Value::Null);
        (status, json, content_type)
    }

    async fn get_text(&self, path: &str) -> String {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The ledger's size, from its newest checkpoint, which must verify with `verifier`.
    async fn ledger_size(&self, verifier: &Verifier) -> u64 {
        let note = self.get_text("/ledger/checkpoint").await;
        checkpoint::open(&note, verifier)
            .unwrap_or_else(|e| panic!("{e}: {note}"))
            .size
    }

    /// A detached CAdES signature of DOCUMENT; the status and the answer.
    async fn cades(&self, token: &str, credential: &str, pin: &str) -> (u16, Value) {
        let (status, json, _) = self
            .post(
                "/api/v1/signatures",
                token,
                json!({"credential_id": credential, "pin": pin, "format": "cades",
                       "document": B64.encode(DOCUMENT)}),
            )
            .await;
        (status, json)
    }
}

/// `openssl cms -verify` of the detached signature in `answer` over DOCUMENT, against the
/// data directory's chain.
fn openssl_accepts(data: &Path, answer: &Value, name: &str) {
    let cms = B64.decode(answer["signature"].as_str().unwrap()).unwrap();
    std::fs::write(data.join(format!("{name}.p7s")), cms).unwrap();
    std::fs::write(data.join("document.txt"), DOCUMENT).unwrap();
    let (ok, text) = openssl_in(
        data,
        &[
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            &format!("{name}.p7s"),
            "-content",
            "document.txt",
            "-CAfile",
            "certs/chain.pem",
            "-purpose",
            "any",
            "-out",
            "/dev/null",
        ],
    );
    assert!(
        ok && text.contains("Verification successful"),
        "{name}: {text}"
    );
}

fn pdf_fixture() -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/testdata/pdf-robustness/empty-a4.pdf");
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[tokio::test]
async fn organization_keys_in_the_token_sign_cades_and_pades_and_survive_a_token_outage() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let (data, admin) = init_in_softhsm(dir.path(), PIN);
    // The OCSP responders' keys are made in the token at init (certified when first used).
    {
        let token = open_softhsm(PIN);
        for ca in ["government", "public"] {
            assert!(token.find(&format!("kyso-ocsp-{ca}")).is_ok(), "{ca}");
        }
    }
    // The ledger key is in the token as well; its public half is what the ledger serves.
    assert_eq!(
        std::fs::read(data.join("keys/ledger.key")).unwrap(),
        b"pkcs11:kyso-ledger".to_vec()
    );

    let mut server = spawn_plain_server(&data, None);
    let api = Api::new(&server);
    let verifier = Verifier::parse(&api.get_text("/ledger/key").await).unwrap();
    let (status, official, _) = api
        .post(
            "/api/v1/accounts",
            &admin,
            json!({"name": "Văn thư UBND", "role": "official"}),
        )
        .await;
    assert_eq!(status, 201, "{official}");
    let (owner, owner_token) = (
        official["id"].as_i64().unwrap(),
        official["token"].as_str().unwrap().to_string(),
    );
    let org_subject = json!({"common_name": "UBND tỉnh Hà Giang", "tax_code": "0100109106",
                             "organization": "UBND tỉnh Hà Giang", "province": "Hà Giang"});

    // RSA-3072 credentials, PKCS #1 v1.5 and PSS, made in the token through the API.
    let mut rsa = Vec::new();
    for algorithm in ["rsa-pkcs1-sha256", "rsa-pss-sha256"] {
        let (status, issued, _) = api
            .post(
                "/api/v1/certificates",
                &admin,
                json!({"profile": "organization", "subject": org_subject, "owner_account": owner,
                       "key": {"algorithm": algorithm, "pin": SEAL_PIN, "hsm": true}}),
            )
            .await;
        assert_eq!(status, 201, "{algorithm}: {issued}");
        let pem = issued["certificate_pem"].as_str().unwrap();
        let der = cert_der(pem);
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert_eq!(
            cert.public_key().algorithm.algorithm.to_id_string(),
            "1.2.840.113549.1.1.1"
        );
        rsa.push((
            algorithm,
            issued["credential_id"].as_str().unwrap().to_string(),
        ));
    }
    // What the token is not for, and what only it makes.
    let (status, problem, content_type) = api
        .post(
            "/api/v1/certificates",
            &admin,
            json!({"profile": "citizen",
                   "subject": {"common_name": "Lê Văn Tám", "citizen_id": "001099014001"},
                   "key": {"pin": SEAL_PIN, "hsm": true}}),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    assert!(
        problem["detail"].as_str().unwrap().contains("citizens"),
        "{problem}"
    );
    let (status, problem, _) = api
        .post(
            "/api/v1/certificates",
            &admin,
            json!({"profile": "organization", "subject": org_subject,
                   "key": {"algorithm": "rsa-pss-sha256", "pin": SEAL_PIN}}),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("hardware token"),
        "{problem}"
    );

    // The seal from the console, beside the running server: `--generate --in-hsm`.
    let pin_file = dir.path().join("seal-pin.txt");
    std::fs::write(&pin_file, format!("{SEAL_PIN}\n")).unwrap();
    let owner_arg = owner.to_string();
    let seal_pem = data.join("seal.pem");
    let (ok, text) = kyso_run(
        &data,
        None,
        &[
            "cert",
            "request",
            "--profile",
            "organization",
            "--generate",
            "--in-hsm",
            "--pin-file",
            pin_file.to_str().unwrap(),
            "--cn",
            "UBND tỉnh Hà Giang",
            "--tax-code",
            "0100109106",
            "--org",
            "UBND tỉnh Hà Giang",
            "--province",
            "Hà Giang",
            "--owner",
            &owner_arg,
            "--out",
            seal_pem.to_str().unwrap(),
        ],
    );
    assert!(ok, "{text}");
    let seal = text
        .lines()
        .find_map(|l| l.strip_prefix("credential "))
        .expect("the console names the credential")
        .trim()
        .to_string();
    let (ok, text) = openssl_in(&data, &["verify", "-CAfile", "certs/chain.pem", "seal.pem"]);
    assert!(ok && text.contains("OK"), "{text}");

    // CAdES with each credential: OpenSSL verifies all three, kyso's verifier too.
    let size_before = api.ledger_size(&verifier).await;
    for (name, credential) in [("p256", seal.as_str())]
        .into_iter()
        .chain(rsa.iter().map(|(a, c)| (*a, c.as_str())))
    {
        let (status, signed) = api.cades(&owner_token, credential, SEAL_PIN).await;
        assert_eq!(status, 201, "{name}: {signed}");
        openssl_accepts(&data, &signed, name);
        let (status, report, _) = api
            .post(
                "/api/v1/verifications",
                &admin,
                json!({"document": B64.encode(DOCUMENT), "signature": signed["signature"]}),
            )
            .await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["indication"], "TOTAL_PASSED", "{name}: {report}");
        assert_eq!(
            report["signatures"][0]["ledger"]["status"], "included",
            "{report}"
        );
    }
    // Each signature is in the ledger, under checkpoints the token's ledger key signed.
    assert!(api.ledger_size(&verifier).await >= size_before + 3);

    // PAdES B-LT: the DSS holds kyso's OCSP answers, signed by a responder key in the token.
    let (status, signed, _) = api
        .post(
            "/api/v1/signatures",
            &owner_token,
            json!({"credential_id": seal, "pin": SEAL_PIN, "format": "pades",
                   "document": B64.encode(pdf_fixture()), "options": {"level": "B-LT"}}),
        )
        .await;
    assert_eq!(status, 201, "{signed}");
    let pdf = B64.decode(signed["document"].as_str().unwrap()).unwrap();
    std::fs::write(data.join("signed.pdf"), &pdf).unwrap();
    assert_well_formed_and_valid(&data, "signed.pdf");
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/verifications", api.base))
        .bearer_auth(&admin)
        .header("content-type", "application/pdf")
        .body(pdf)
        .send()
        .await
        .unwrap();
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["indication"], "TOTAL_PASSED", "{report}");

    // OCSP for the seal, answered by the government CA's responder: OpenSSL verifies it.
    let (ok, text) = openssl_in(
        &data,
        &[
            "ocsp",
            "-issuer",
            "certs/government.pem",
            "-sha256",
            "-cert",
            "seal.pem",
            "-reqout",
            "req.der",
        ],
    );
    assert!(ok, "{text}");
    let answer = reqwest::Client::new()
        .post(format!("{}/pki/ocsp", api.base))
        .header("content-type", "application/ocsp-request")
        .body(std::fs::read(data.join("req.der")).unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let text = openssl_ocsp_check(&data, &answer);
    assert!(text.contains("Cert Status: good"), "{text}");

    // A restart: every key is found again in the token, and signing goes on.
    server.kill();
    let mut server = spawn_plain_server(&data, None);
    let api = Api::new(&server);
    for (name, credential) in [
        ("p256-again", seal.as_str()),
        ("pss-again", rsa[1].1.as_str()),
    ] {
        let (status, signed) = api.cades(&owner_token, credential, SEAL_PIN).await;
        assert_eq!(status, 201, "{name}: {signed}");
        openssl_accepts(&data, &signed, name);
    }
    // A wrong PIN is still a wrong PIN: the token key is used only after kyso's PIN check.
    let (status, problem) = api.cades(&owner_token, &seal, "000000").await;
    assert_eq!(status, 403, "{problem}");

    // Seen from outside kyso: every key kyso made is sensitive and never extractable.
    {
        let token = open_softhsm(PIN);
        let mut labels: Vec<String> = [
            "kyso-root",
            "kyso-government",
            "kyso-public",
            "kyso-tsa",
            "kyso-ledger",
            "kyso-ocsp-government",
        ]
        .map(String::from)
        .to_vec();
        labels.extend([&seal, &rsa[0].1, &rsa[1].1].map(|c| format!("kyso-{c}")));
        for label in &labels {
            assert_eq!(
                token.find(label).unwrap().protection().unwrap(),
                (true, false),
                "{label}"
            );
        }
    }

    // A software credential: its key is not in the token, the ledger key that must record
    // its signatures is.
    let (status, issued, _) = api
        .post(
            "/api/v1/certificates",
            &admin,
            json!({"profile": "organization", "subject": org_subject, "owner_account": owner,
                   "key": {"pin": SEAL_PIN}}),
        )
        .await;
    assert_eq!(status, 201, "{issued}");
    let software = issued["credential_id"].as_str().unwrap().to_string();

    // The token goes away while the server runs (its store moved aside).
    let tokens = dir.path().join("tokens");
    let away: PathBuf = dir.path().join("tokens-away");
    let size = api.ledger_size(&verifier).await;
    std::fs::rename(&tokens, &away).unwrap();
    let (status, problem, content_type) = api
        .post(
            "/api/v1/signatures",
            &owner_token,
            json!({"credential_id": seal, "pin": SEAL_PIN, "format": "cades",
                   "document": B64.encode(DOCUMENT)}),
        )
        .await;
    assert_eq!(status, 503, "{problem}");
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    assert!(
        problem["type"]
            .as_str()
            .unwrap()
            .ends_with("key-unavailable"),
        "{problem}"
    );
    assert!(!problem.to_string().contains(SEAL_PIN) && !problem.to_string().contains(PIN));
    // The software key signs, but the ledger cannot seal the entry: the signature is not
    // released, and nothing is written.
    let (status, problem) = api.cades(&owner_token, &software, SEAL_PIN).await;
    assert_eq!(status, 503, "{problem}");
    assert!(
        problem["type"]
            .as_str()
            .unwrap()
            .ends_with("key-unavailable"),
        "{problem}"
    );
    assert!(problem.get("signature").is_none());
    assert_eq!(api.ledger_size(&verifier).await, size);
    // Nothing was signed, so nothing was recorded.
    std::fs::rename(&away, &tokens).unwrap();
    assert_eq!(api.ledger_size(&verifier).await, size);

    // Back: the same running server signs again (a client retries after Retry-After; the
    // module is reloaded at most twice a second).
    let mut answer = None;
    for _ in 0..20 {
        let (status, signed) = api.cades(&owner_token, &seal, SEAL_PIN).await;
        if status == 201 {
            answer = Some(signed);
            break;
        }
        assert_eq!(status, 503, "{signed}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let signed = answer.expect("signing recovers once the token is back");
    openssl_accepts(&data, &signed, "after-outage");
    assert_eq!(api.ledger_size(&verifier).await, size + 1);
    server.kill();

    // A token that is absent at start-up: the server does not start, and says why.
    std::fs::rename(&tokens, &away).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kyso"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--plain-http",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("PKCS #11") && text.contains("token store"),
        "{text}"
    );
    assert!(!text.contains(PIN), "{text}");
    std::fs::rename(&away, &tokens).unwrap();
}
