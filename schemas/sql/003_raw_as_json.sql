-- 003_raw_as_json: transactions.raw keeps the record's text as uploaded (json), not a parsed
-- binary tree (jsonb).
--
-- raw is written once per record and read rarely (operators, ->> of a field). Parsing it into
-- jsonb was the largest single cost of txpersist's COPY: 3.7 us of PostgreSQL CPU per row, against
-- 0.7 us for json, which only checks the syntax (measured on this project's host, COPY of 500-row
-- batches into txpersist's staging table: 3.76 ms with raw jsonb, 2.25 ms json, 1.91 ms text;
-- docs/performance.md, "txpersist"). json also keeps the record exactly as the client sent it
-- (key order, number text), which is what raw is for; ->> and ->> casts work the same. Compare
-- two values with raw::jsonb = ... (json has no equality operator). valor stays exact: txpersist
-- takes it from the record's text itself.
--
-- Existing rows are rewritten (ALTER TABLE ... TYPE takes an exclusive lock for the rewrite).

ALTER TABLE transactions ALTER COLUMN raw TYPE json USING raw::json;
