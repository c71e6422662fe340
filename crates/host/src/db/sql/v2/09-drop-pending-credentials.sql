-- v2 "drop-pending-credentials": removes a table of older v2 releases.
DROP INDEX IF EXISTS idx_pending_credentials_status;
DROP TABLE IF EXISTS pending_credentials;
