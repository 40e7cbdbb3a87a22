//! Keys in a hardware token through PKCS #11, against SoftHSM2 (`.ci/run` installs it): a
//! fresh token, keys generated inside it (sensitive, not extractable), signatures that verify
//! with the public key the token reports, the keys found again after the module is opened
//! anew (a restart), and clear errors for a missing token, a wrong PIN and a missing key.

mod common;

use std::path::Path;
use std::sync::Arc;

use kyso::keys::pkcs11::{Token, TokenError};
use kyso::keys::{KeyAlgorithm, SigningKey};

use common::{softhsm_token, SOFTHSM_MODULE as MODULE};

fn verifies(key: &dyn SigningKey, msg: &[u8], sig: &[u8]) -> bool {
    let alg: &dyn ring::signature::VerificationAlgorithm = match key.algorithm() {
        KeyAlgorithm::EcdsaP384 => &ring::signature::ECDSA_P384_SHA384_ASN1,
        _ => &ring::signature::ECDSA_P256_SHA256_ASN1,
    };
    ring::signature::UnparsedPublicKey::new(alg, key.public_key())
        .verify(msg, sig)
        .is_ok()
}

#[test]
fn keys_made_in_softhsm_sign_stay_inside_and_are_found_again() {
    let dir = tempfile::tempdir().unwrap();
    let conf = softhsm_token(dir.path(), "kyso", "246813");
    // SOFTHSM2_CONF is read by the module when it is initialized; this is the only test in
    // this binary, so setting it for the process is safe.
    std::env::set_var("SOFTHSM2_CONF", &conf);
    let module = Path::new(MODULE);
    let pin = || cryptoki::types::AuthPin::new("246813".into());

    let token = Token::open(module, "kyso", pin(), 4).unwrap();
    let root = token.generate("root", KeyAlgorithm::EcdsaP384).unwrap();
    let seal = token.generate("org-seal", KeyAlgorithm::EcdsaP256).unwrap();
    assert!(matches!(
        token.generate("org-seal", KeyAlgorithm::EcdsaP256),
        Err(TokenError::Exists(_))
    ));
    for key in [&root as &dyn SigningKey, &seal] {
        let msg = "Quyết định số 1/QĐ-UBND".as_bytes();
        let sig = key.sign(msg).unwrap();
        assert!(verifies(key, msg, &sig), "{:?}", key.algorithm());
        assert!(!verifies(key, b"another text", &sig));
    }
    assert_eq!(root.public_key().len(), 97);
    assert_eq!(seal.public_key().len(), 65);
    // Generated inside, and it cannot leave.
    assert_eq!(seal.protection().unwrap(), (true, false));
    assert_eq!(root.protection().unwrap(), (true, false));

    // Many signers at once share the pool's sessions.
    let seal = Arc::new(seal);
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let seal = seal.clone();
            std::thread::spawn(move || {
                for j in 0..20 {
                    let msg = format!("document {i}-{j}");
                    let sig = seal.sign(msg.as_bytes()).unwrap();
                    assert!(verifies(&*seal, msg.as_bytes(), &sig));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let public = seal.public_key().to_vec();
    drop(seal);
    drop(root);
    drop(token);

    // A restart: the module is opened again and the key is found by its label.
    let token = Token::open(module, "kyso", pin(), 2).unwrap();
    let again = token.find("org-seal").unwrap();
    assert_eq!(again.public_key(), public.as_slice());
    let sig = again.sign(b"after the restart").unwrap();
    assert!(verifies(&again, b"after the restart", &sig));
    assert!(matches!(token.find("nobody"), Err(TokenError::NoKey(_))));

    // Ed25519 (the ledger key) and RSA-3072 with PKCS #1 v1.5 and PSS, over a message and
    // over a digest computed outside.
    use ring::signature as s;
    let ed = token.generate("ledger", KeyAlgorithm::Ed25519).unwrap();
    assert_eq!(ed.public_key().len(), 32);
    let sig = ed.sign(b"checkpoint").unwrap();
    assert!(s::UnparsedPublicKey::new(&s::ED25519, ed.public_key())
        .verify(b"checkpoint", &sig)
        .is_ok());
    assert!(ed.sign_digest(&[0u8; 32]).is_err());
    assert_eq!(ed.protection().unwrap(), (true, false));
    let msg = b"Cong van so 7";
    let sha384 = ring::digest::digest(&ring::digest::SHA384, msg);
    for (alg, own, other) in [
        (
            KeyAlgorithm::RsaPkcs1Sha256,
            &s::RSA_PKCS1_2048_8192_SHA256,
            &s::RSA_PKCS1_2048_8192_SHA384,
        ),
        (
            KeyAlgorithm::RsaPssSha256,
            &s::RSA_PSS_2048_8192_SHA256,
            &s::RSA_PSS_2048_8192_SHA384,
        ),
    ] {
        let label = format!("seal-{alg}");
        let key = token.generate(&label, alg).unwrap();
        assert_eq!(key.algorithm(), alg);
        let public = s::UnparsedPublicKey::new(own, key.public_key());
        assert!(public.verify(msg, &key.sign(msg).unwrap()).is_ok(), "{alg}");
        assert!(public.verify(b"other", &key.sign(msg).unwrap()).is_err());
        let by_digest = key.sign_digest(sha384.as_ref()).unwrap();
        assert!(s::UnparsedPublicKey::new(other, key.public_key())
            .verify(msg, &by_digest)
            .is_ok());
        assert_eq!(key.protection().unwrap(), (true, false));
        // Found again with the scheme it is used with; not as an EC key.
        assert_eq!(token.find_as(&label, Some(alg)).unwrap().algorithm(), alg);
        assert!(token
            .find_as(&label, Some(KeyAlgorithm::EcdsaP256))
            .is_err());
    }

    // The token goes away (its store moved aside) and comes back: signatures fail with
    // `Unavailable` meanwhile, and work again with the same key objects afterwards.
    let store = dir.path().join("tokens");
    let away = dir.path().join("tokens-away");
    std::fs::rename(&store, &away).unwrap();
    assert!(matches!(
        again.sign(b"while away"),
        Err(kyso::keys::KeyError::Unavailable)
    ));
    assert!(ed.sign(b"while away").is_err());
    std::fs::rename(&away, &store).unwrap();
    let mut back = None;
    for _ in 0..20 {
        if let Ok(sig) = again.sign(b"back") {
            back = Some(sig);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(verifies(&again, b"back", &back.expect("signing recovers")));
    assert!(ed.sign(b"back too").is_ok());
    drop(again);
    drop(ed);
    drop(token);

    // No such token, and a wrong PIN: clear errors, no PIN in them.
    let e = Token::open(module, "absent", pin(), 1).unwrap_err();
    assert!(matches!(e, TokenError::NoToken(_)), "{e}");
    let e = Token::open(
        module,
        "kyso",
        cryptoki::types::AuthPin::new("999999".into()),
        1,
    )
    .unwrap_err();
    assert!(matches!(e, TokenError::Pin), "{e}");
    assert!(!e.to_string().contains("999999"));
    let e = Token::open(Path::new("/nonexistent/module.so"), "kyso", pin(), 1).unwrap_err();
    assert!(matches!(e, TokenError::Module(_)), "{e}");
}
