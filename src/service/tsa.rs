//! The time-stamping authority: open to anyone (rate-limited per address); every token is a
//! ledger entry, durable before the token is returned.

use super::{now, random_bytes, Service, ServiceError};
use crate::ledger::entry::{kinds, Entry};
use crate::pki::tsa::{self, TimeStampRequest, TsaError, TsaIdentity};

impl Service {
    /// Answers a DER TimeStampReq with a DER TimeStampResp granting a token.
    pub async fn timestamp(
        &self,
        request: &[u8],
        client: Option<&str>,
    ) -> Result<Vec<u8>, ServiceError> {
        let t = now();
        if let Some(addr) = client {
            self.limiter.check(
                &format!("tsa:{addr}"),
                self.policy.tsa_per_address_per_hour,
                t.unix_timestamp(),
            )?;
        }
        let req = TimeStampRequest::parse(request).map_err(invalid)?;
        let (token, entry) = self.time_stamp_token(&req)?;
        self.record(&entry).await?;
        Ok(tsa::granted(&token))
    }

    /// Builds and signs a token for `req`, with the ledger entry that must be recorded before
    /// it is released.
    pub(super) fn time_stamp_token(
        &self,
        req: &TimeStampRequest,
    ) -> Result<(Vec<u8>, Entry), ServiceError> {
        let t = now();
        let unit = &self.cas.tsa;
        let issuer = self
            .cas
            .get("government")
            .ok_or_else(|| ServiceError::Internal("government CA not loaded".into()))?;
        let identity = TsaIdentity {
            policy: &self.urls.policies.tsa,
            cert_der: &unit.cert_der,
            issuer_der: &issuer.cert_der,
            key: unit.key.algorithm(),
        };
        let serial = random_bytes::<16>()?;
        let prepared = tsa::prepare(req, &identity, &serial, t).map_err(invalid)?;
        let signature = unit
            .key
            .sign(&prepared.attrs.der)
            .map_err(ServiceError::from)?;
        let token = tsa::token(req, &identity, &prepared, &signature).map_err(invalid)?;
        let entry = Entry {
            ca: Some("tsa".into()),
            document_digest: Some(req.algorithm.tagged_hex(&req.imprint)),
            format: Some("rfc3161".into()),
            request_id: Some(hex::encode(serial)),
            signature_sha256: Some(hex::encode(ring::digest::digest(
                &ring::digest::SHA256,
                &token,
            ))),
            ..Entry::new(kinds::TIMESTAMP_ISSUED, 0, t.unix_timestamp())
        };
        Ok((token, entry))
    }
}

fn invalid(e: TsaError) -> ServiceError {
    match e {
        TsaError::Build(detail) => ServiceError::Internal(detail),
        other => ServiceError::Invalid(other.to_string()),
    }
}
