-- Accounts, certificates, requests and credentials (the certificate-authority issue).
CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    organization  TEXT,
    -- The CCCD verified when a citizen account was created; binds self-service requests.
    citizen_id    TEXT,
    token_hash    BLOB    NOT NULL UNIQUE,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT  NOT NULL
);

CREATE TABLE certificates (
    serial            TEXT    PRIMARY KEY,
    ca                TEXT    NOT NULL,
    profile           TEXT    NOT NULL,
    common_name       TEXT    NOT NULL,
    citizen_id        TEXT,
    tax_code          TEXT,
    owner_account     BIGINT,
    request_id        TEXT,
    credential_id     TEXT,
    status            TEXT    NOT NULL,
    revocation_reason TEXT,
    revoked_at        BIGINT,
    not_before        BIGINT  NOT NULL,
    not_after         BIGINT  NOT NULL,
    issued_at         BIGINT  NOT NULL,
    der               BLOB    NOT NULL
);
-- One active citizen certificate per CCCD, enforced by the database, not only by a check.
CREATE UNIQUE INDEX certificates_one_active_citizen
    ON certificates (citizen_id) WHERE profile = 'citizen' AND status = 'active';
CREATE INDEX certificates_owner ON certificates (owner_account, issued_at);
CREATE INDEX certificates_status ON certificates (status, issued_at);

CREATE TABLE certificate_requests (
    id             TEXT    PRIMARY KEY,
    profile        TEXT    NOT NULL,
    subject_json   TEXT    NOT NULL,
    spki           BLOB    NOT NULL,
    credential_id  TEXT,
    validity_days  BIGINT,
    requested_by   BIGINT  NOT NULL,
    status         TEXT    NOT NULL,
    decided_by     BIGINT,
    decided_at     BIGINT,
    reason         TEXT,
    serial         TEXT,
    created_at     BIGINT  NOT NULL
);
CREATE INDEX certificate_requests_status ON certificate_requests (status, created_at);

CREATE TABLE credentials (
    id                 TEXT    PRIMARY KEY,
    owner_account      BIGINT  NOT NULL,
    algorithm          TEXT    NOT NULL,
    sealed_key         BLOB    NOT NULL,
    certificate_serial TEXT,
    created_at         BIGINT  NOT NULL
);
CREATE INDEX credentials_owner ON credentials (owner_account);
