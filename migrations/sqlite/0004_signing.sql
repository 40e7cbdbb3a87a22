-- Signing: wrong PINs in a row per credential (the credential locks at the configured limit).
ALTER TABLE credentials ADD COLUMN failed_pins INTEGER NOT NULL DEFAULT 0;
