-- 005 snapshots: the upstream-compatible snapshots table (reference §3.1) with its defects fixed
-- (source node optional, progress written during the run, the notify trigger kept), and the
-- resumable apply state a target keeps.

CREATE TABLE steep_repl.snapshots (
    snapshot_id          text PRIMARY KEY CHECK (snapshot_id ~ '^[A-Za-z0-9_-]{1,100}$'),
    -- Upstream required a registered node; a snapshot of an unregistered server is still a snapshot.
    source_node_id       text REFERENCES steep_repl.nodes (node_id) ON DELETE SET NULL,
    target_node_id       text REFERENCES steep_repl.nodes (node_id) ON DELETE SET NULL,
    lsn                  text,
    storage_path         text,
    checksum             text,
    compression          text DEFAULT 'gzip' CHECK (compression IN ('none', 'gzip', 'lz4', 'zstd')),
    status               text NOT NULL DEFAULT 'pending'
        CONSTRAINT snapshots_status_check CHECK (status IN ('pending', 'generating', 'complete', 'applying', 'applied', 'failed', 'cancelled', 'expired')),
    phase                text NOT NULL DEFAULT 'idle'
        CONSTRAINT snapshots_phase_check CHECK (phase IN ('idle', 'schema', 'data', 'indexes', 'constraints', 'sequences', 'verify')),
    error_message        text,
    overall_percent      real NOT NULL DEFAULT 0 CHECK (overall_percent BETWEEN 0 AND 100),
    current_table        text,
    table_count          integer NOT NULL DEFAULT 0 CHECK (table_count >= 0),
    tables_completed     integer NOT NULL DEFAULT 0 CHECK (tables_completed >= 0 AND tables_completed <= table_count),
    size_bytes           bigint NOT NULL DEFAULT 0 CHECK (size_bytes >= 0),
    bytes_written        bigint NOT NULL DEFAULT 0 CHECK (bytes_written >= 0),
    rows_total           bigint NOT NULL DEFAULT 0,
    rows_written         bigint NOT NULL DEFAULT 0,
    throughput_bytes_sec real NOT NULL DEFAULT 0,
    eta_seconds          integer NOT NULL DEFAULT 0,
    compression_ratio    real NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL DEFAULT now(),
    started_at           timestamptz,
    completed_at         timestamptz,
    expires_at           timestamptz,
    -- Added here: what generate kept on the source, so delete --drop-slot can remove it.
    slot_name            text,
    publication_name     text,
    job_id               bigint
);
CREATE INDEX idx_snapshots_source ON steep_repl.snapshots (source_node_id);
CREATE INDEX idx_snapshots_target ON steep_repl.snapshots (target_node_id) WHERE target_node_id IS NOT NULL;
CREATE INDEX idx_snapshots_status ON steep_repl.snapshots (status);
CREATE INDEX idx_snapshots_active ON steep_repl.snapshots (status) WHERE status IN ('generating', 'applying');
CREATE INDEX idx_snapshots_expires ON steep_repl.snapshots (expires_at) WHERE expires_at IS NOT NULL;

CREATE FUNCTION steep_repl.notify_snapshot_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    PERFORM pg_notify('steep_repl_snapshots', json_build_object(
        'snapshot_id', NEW.snapshot_id, 'status', NEW.status, 'phase', NEW.phase,
        'overall_percent', NEW.overall_percent)::text);
    RETURN NEW;
END
$$;
CREATE TRIGGER snapshot_notify AFTER INSERT OR UPDATE ON steep_repl.snapshots
    FOR EACH ROW EXECUTE FUNCTION steep_repl.notify_snapshot_change();

-- On a target: one row per snapshot being applied, and one per data part loaded. A part's row is
-- written in the transaction that loaded it, so after a crash exactly the committed parts count
-- as done and --resume redoes the rest.
CREATE TABLE steep_repl.snapshot_apply (
    snapshot_id  text PRIMARY KEY,
    manifest_checksum text NOT NULL,
    phase        text NOT NULL DEFAULT 'pre-data'
        CHECK (phase IN ('pre-data', 'data', 'post-data', 'sequences', 'analyze', 'subscribe', 'done')),
    started_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz
);
CREATE TABLE steep_repl.snapshot_apply_parts (
    snapshot_id  text NOT NULL REFERENCES steep_repl.snapshot_apply (snapshot_id) ON DELETE CASCADE,
    file         text NOT NULL,
    rows         bigint NOT NULL,
    raw_bytes    bigint NOT NULL,
    data_sha256  text NOT NULL,
    loaded_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (snapshot_id, file)
);
