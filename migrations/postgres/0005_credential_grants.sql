-- Accounts allowed to use an organization's credential (its seal) besides its holder: the
-- designated clerks, granted and withdrawn by an RA or admin.
CREATE TABLE credential_grants (
    credential_id  TEXT    NOT NULL,
    account_id     BIGINT  NOT NULL,
    granted_by     BIGINT  NOT NULL,
    granted_at     BIGINT  NOT NULL,
    PRIMARY KEY (credential_id, account_id)
);
