//! kyso ("ký số"): a digital signature and certificate service for e-government.
#![forbid(unsafe_code)]

/// HTTP: routing, authentication, request parsing, the one error map.
pub mod api;
/// Blocking work from async code, on the calling thread.
pub mod blocking;
/// The command line (one file per command group).
pub mod cli;
/// Typed configuration, checked at start-up.
pub mod config;
/// The one `SigningKey` abstraction; software keys sealed at rest.
pub mod keys;
/// The audit ledger: RFC 9162 Merkle tree, proofs.
pub mod ledger;
/// Pure PKI logic: profiles, CSRs, issuance, lint. No I/O, no clock.
pub mod pki;
/// Policy: who may get, approve, revoke; rate limits; data-directory setup.
pub mod service;
/// Storage: the repository trait, SQLite and PostgreSQL.
pub mod store;
/// The web pages: citizen portal, registration desk, verification and ledger pages.
pub mod web;
