-- 003 schema: per-table fingerprints captured per node (upstream steep_repl.schema_fingerprints
-- columns, reference/steep-repl-upstream.md §3.1), and the fingerprint as SQL functions that build
-- exactly the input string of src/lib/schema/fingerprint.ts (one algorithm, documented in
-- docs/schema.md). Upstream's redundant index on node_id alone (the primary key starts with it) is
-- not copied.

CREATE TABLE steep_repl.schema_fingerprints (
    node_id            text NOT NULL CONSTRAINT schema_fingerprints_node_id_check CHECK (node_id <> ''),
    table_schema       text NOT NULL,
    table_name         text NOT NULL,
    fingerprint        text NOT NULL CONSTRAINT schema_fingerprints_fingerprint_check CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    column_count       integer NOT NULL CONSTRAINT schema_fingerprints_column_count_check CHECK (column_count >= 0),
    captured_at        timestamptz NOT NULL DEFAULT now(),
    column_definitions jsonb,
    PRIMARY KEY (node_id, table_schema, table_name)
);
CREATE INDEX idx_fingerprints_captured ON steep_repl.schema_fingerprints (captured_at);

-- The fingerprint input of a table: NULL when the table does not exist, '' when it has no columns.
CREATE FUNCTION steep_repl.fingerprint_input(p_schema text, p_table text) RETURNS text
    LANGUAGE sql STABLE
    SET search_path = ''
AS $$
    SELECT CASE WHEN c.oid IS NULL THEN NULL ELSE COALESCE((
        SELECT pg_catalog.string_agg(
                   '"' || pg_catalog.replace(a.attname, '"', '""') || '" '
                   || pg_catalog.format_type(a.atttypid, a.atttypmod)
                   || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE ' NULL' END
                   || CASE WHEN a.attcollation <> 0
                           THEN ' COLLATE "' || pg_catalog.replace(cn.nspname, '"', '""') || '"."'
                                || pg_catalog.replace(co.collname, '"', '""') || '"'
                           ELSE '' END,
                   E'\n' ORDER BY a.attnum)
          FROM pg_catalog.pg_attribute a
          LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
          LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '') END
      FROM (SELECT NULL) AS one
      LEFT JOIN (pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace)
             ON n.nspname = p_schema AND c.relname = p_table AND c.relkind IN ('r', 'p')
$$;

-- Upstream's name and signature: lower-case hex SHA-256 of the UTF-8 bytes of fingerprint_input.
CREATE FUNCTION steep_repl.compute_fingerprint(p_schema text, p_table text) RETURNS text
    LANGUAGE sql STABLE
    SET search_path = ''
AS $$
    SELECT pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(steep_repl.fingerprint_input(p_schema, p_table), 'UTF8')), 'hex')
$$;
