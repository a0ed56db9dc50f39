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
