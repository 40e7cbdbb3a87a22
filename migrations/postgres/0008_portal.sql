-- The portal: a citizen's contact (e-mail or phone) given at registration, for the
-- registration desk.
ALTER TABLE accounts ADD COLUMN contact TEXT;
