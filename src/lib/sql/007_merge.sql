-- 007 merge: the record of each merge run and the audit of every decision it made.
-- Both tables live on node A of the merge (the node given as --node-a); node B gets no rows.
-- merge_audit_log keeps upstream's columns (reference/steep-repl-upstream.md §3.1) with the CHECK
-- fixed: upstream's list rejected the transfer resolutions, so transfers were never audited.

CREATE TABLE steep_repl.merges (
    merge_id                uuid PRIMARY KEY,
    node_a                  text NOT NULL,
    node_b                  text NOT NULL,
    tables                  text[] NOT NULL,
    strategy                text NOT NULL
        CONSTRAINT merges_strategy_check CHECK (strategy IN ('prefer-node-a', 'prefer-node-b', 'last-modified', 'manual')),
    timestamp_column        text,
    dry_run                 boolean NOT NULL DEFAULT false,
    status                  text NOT NULL DEFAULT 'running'
        CONSTRAINT merges_status_check CHECK (status IN ('running', 'complete', 'failed', 'cancelled')),
    started_at              timestamptz NOT NULL DEFAULT now(),
    completed_at            timestamptz,
    started_by              text NOT NULL DEFAULT current_user,
    job_id                  bigint,
    total_rows              bigint NOT NULL DEFAULT 0,
    total_matches           bigint NOT NULL DEFAULT 0,
    total_conflicts         bigint NOT NULL DEFAULT 0,
    total_a_only            bigint NOT NULL DEFAULT 0,
    total_b_only            bigint NOT NULL DEFAULT 0,
    rows_transferred_a_to_b bigint NOT NULL DEFAULT 0,
    rows_transferred_b_to_a bigint NOT NULL DEFAULT 0,
    conflicts_resolved      bigint NOT NULL DEFAULT 0,
    conflicts_skipped       bigint NOT NULL DEFAULT 0,
    summary                 jsonb NOT NULL DEFAULT '[]',
    errors                  jsonb NOT NULL DEFAULT '[]',
    CONSTRAINT merges_completed_check CHECK ((status = 'running') = (completed_at IS NULL))
);
CREATE INDEX merges_started_at_idx ON steep_repl.merges (started_at DESC);

CREATE TABLE steep_repl.merge_audit_log (
    id           bigserial PRIMARY KEY,
    merge_id     uuid NOT NULL REFERENCES steep_repl.merges (merge_id) ON DELETE CASCADE,
    table_schema text NOT NULL,
    table_name   text NOT NULL,
    pk_value     jsonb NOT NULL,
    category     text NOT NULL
        CONSTRAINT merge_audit_log_category_check CHECK (category IN ('match', 'conflict', 'local_only', 'remote_only')),
    resolution   text
        CONSTRAINT merge_audit_log_resolution_check CHECK (resolution IS NULL OR resolution IN
            ('kept_a', 'kept_b', 'skipped', 'transferred_a_to_b', 'transferred_b_to_a')),
    node_a_value jsonb,
    node_b_value jsonb,
    resolved_at  timestamptz NOT NULL DEFAULT now(),
    resolved_by  text
);
CREATE INDEX merge_audit_log_merge_id_idx ON steep_repl.merge_audit_log (merge_id);
CREATE INDEX merge_audit_log_table_idx ON steep_repl.merge_audit_log (table_schema, table_name);
CREATE INDEX merge_audit_log_resolved_at_idx ON steep_repl.merge_audit_log (resolved_at);
CREATE INDEX merge_audit_log_category_idx ON steep_repl.merge_audit_log (category);

-- The plan's SQL API: queue a merge of this database (node A) with a peer for a worker, and get the
-- merge id back. The peer is a registered node id (resolved as node:<id> by the worker, with its own
-- credentials) or a connection name from the worker's config file: never a password.
CREATE FUNCTION steep_repl.start_merge(p_peer text, p_tables text[], p_strategy text DEFAULT 'prefer-node-a', p_dry_run boolean DEFAULT false)
    RETURNS uuid
    -- No SET search_path: table names are resolved the way the caller wrote them (regclass, with the
    -- caller's search_path); pg_catalog is searched first anyway, and the function is not SECURITY
    -- DEFINER, so it runs with the caller's own rights.
    LANGUAGE plpgsql VOLATILE
    AS $$
DECLARE
    v_id     uuid := gen_random_uuid();
    v_ref    text;
    v_tables jsonb;
BEGIN
    IF p_peer IS NULL OR p_peer = '' THEN
        RAISE EXCEPTION 'peer must be a registered node id or a connection name' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_strategy IS NULL OR p_strategy NOT IN ('prefer-node-a', 'prefer-node-b', 'last-modified', 'manual') THEN
        RAISE EXCEPTION 'unknown strategy %: use prefer-node-a, prefer-node-b, last-modified or manual', coalesce(p_strategy, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_tables IS NULL OR cardinality(p_tables) = 0 THEN
        RAISE EXCEPTION 'give at least one table' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Each name is resolved here (it must exist on this node), quoted or not, as regclass reads it.
    SELECT jsonb_agg(jsonb_build_object('schema', n.nspname, 'name', c.relname) ORDER BY o)
      INTO v_tables
      FROM unnest(p_tables) WITH ORDINALITY AS t(spec, o)
      JOIN pg_class c ON c.oid = t.spec::regclass
      JOIN pg_namespace n ON n.oid = c.relnamespace;
    v_ref := CASE WHEN EXISTS (SELECT 1 FROM steep_repl.nodes WHERE node_id = p_peer) THEN 'node:' || p_peer ELSE p_peer END;
    PERFORM steep_repl.enqueue('merge_run', jsonb_build_object('nodeB', v_ref, 'tables', v_tables, 'strategy', p_strategy,
                                                              'dryRun', coalesce(p_dry_run, false), 'mergeId', v_id));
    RETURN v_id;
END
$$;
