-- Revocation (CRLs and OCSP): each certificate's CRL shard (its CRL distribution point names
-- it), the invalidity date a revocation may state, and every CRL published.
ALTER TABLE certificates ADD COLUMN crl_shard BIGINT NOT NULL DEFAULT 0;
ALTER TABLE certificates ADD COLUMN invalidity_date BIGINT;
-- What a CRL shard lists, covered by the index so a shard of a million entries is one range
-- scan. Only revoked rows are in it: issuing a certificate never touches it.
CREATE INDEX certificates_revoked
    ON certificates (ca, crl_shard, serial, revoked_at, revocation_reason, invalidity_date)
    WHERE status = 'revoked';
CREATE TABLE crls (
    ca           TEXT    NOT NULL,
    shard        BIGINT  NOT NULL,
    -- CRL number: thisUpdate in milliseconds, so nodes never need to agree on a counter.
    number       BIGINT  NOT NULL,
    this_update  BIGINT  NOT NULL,
    next_update  BIGINT  NOT NULL,
    entries      BIGINT  NOT NULL,
    der          BYTEA   NOT NULL,
    PRIMARY KEY (ca, shard, number)
);
