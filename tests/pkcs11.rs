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
    drop(again);
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
