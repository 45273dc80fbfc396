-- 002_lean_transaction_indexes: two fewer indexes on transactions, the table every record of
-- every upload is written to.
--
-- Each btree index on transactions costs about 3 us of PostgreSQL CPU per row written (measured
-- on this project's host: a plain INSERT of 100,000 rows took 3.2 us per row into the bare
-- table, and 3.1-3.3 us more per row for each index; docs/performance.md, "txpersist"). With
-- the primary key and three more indexes it was the largest share of txpersist's write cost.
--
-- 1. UNIQUE (upload_id, idx) is implied by the primary key and the CHECK
--    event_id = upload_id || ':' || idx: idx is digits only, so the last ':' of an event_id
--    splits it back into exactly one (upload_id, idx); two rows with the same pair would have the
--    same event_id. The rows of one upload are found through the primary key instead:
--        event_id >= upload_id || ':' AND event_id < upload_id || ';'
--    (';' is the byte after ':'), which is why event_id gets the "C" collation: that range is
--    then byte order, whatever the database's default collation is. fraud_reasons.event_id and
--    emails.event_id get it too, so joins on event_id compare like with like.
-- 2. (client_id, datatrasancao_at) served no query of the product. The client's fraud history
--    (GET /api/v1/clients/{id}/fraud) reads the flagged rows of a client, newest verdict first:
--    a partial index on the flagged rows only, which an unflagged row never touches.
--
-- A query by client_id over all rows, or by upload_id without the range above, is now a
-- sequential scan; add an index for such an access path knowing its write cost.

ALTER TABLE transactions DROP CONSTRAINT transactions_upload_idx_key;
DROP INDEX transactions_client_id_idx;

ALTER TABLE transactions ALTER COLUMN event_id TYPE text COLLATE "C";
ALTER TABLE fraud_reasons ALTER COLUMN event_id TYPE text COLLATE "C";
ALTER TABLE emails ALTER COLUMN event_id TYPE text COLLATE "C";

CREATE INDEX transactions_client_flagged_idx ON transactions (client_id, scored_at DESC)
    WHERE flagged;
