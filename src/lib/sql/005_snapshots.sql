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

-- The plan's SQL API (reference §11), on top of the jobs API of 002: queue a generate job for a
-- worker from any SQL client, and read its progress. Fixed from the upstream sketch: valid status
-- and phase values, the right column names, a source node that may be absent, and a privilege
-- check that fits what the job does (it writes files on the worker's host).
CREATE FUNCTION steep_repl.start_snapshot(p_output_path text, p_compression text DEFAULT 'zstd', p_parallel integer DEFAULT 4)
    RETURNS steep_repl.snapshots
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    v_id  text;
    v_job bigint;
    v_row steep_repl.snapshots;
BEGIN
    IF NOT (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = session_user)
       AND NOT pg_has_role(session_user, 'pg_write_server_files', 'MEMBER') THEN
        RAISE EXCEPTION 'steep_repl.start_snapshot requires superuser or membership in pg_write_server_files'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_output_path IS NULL OR p_output_path !~ '^/' OR p_output_path ~ '(^|/)\.\.(/|$)' THEN
        RAISE EXCEPTION 'output path must be absolute and without ..: %', coalesce(p_output_path, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_compression IS NULL OR p_compression NOT IN ('none', 'gzip', 'lz4', 'zstd') THEN
        RAISE EXCEPTION 'compression must be none, gzip, lz4 or zstd' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_parallel IS NULL OR p_parallel NOT BETWEEN 1 AND 64 THEN
        RAISE EXCEPTION 'parallel must be between 1 and 64' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_id := 'snap_' || to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYYMMDD_HH24MISS') || '_'
            || substr(md5(random()::text || clock_timestamp()::text), 1, 8);
    v_job := steep_repl.enqueue('snapshot_generate',
                                jsonb_build_object('snapshotId', v_id, 'output', p_output_path,
                                                   'compression', p_compression, 'parallel', p_parallel));
    INSERT INTO steep_repl.snapshots (snapshot_id, storage_path, compression, status, phase, job_id, slot_name, publication_name)
    VALUES (v_id, p_output_path, p_compression, 'pending', 'idle', v_job, 'steep_' || lower(v_id), 'steep_pub_' || lower(v_id))
    RETURNING * INTO v_row;
    RETURN v_row;
END
$$;

CREATE FUNCTION steep_repl.snapshot_progress(p_snapshot_id text DEFAULT NULL)
    RETURNS TABLE (snapshot_id text, status text, phase text, overall_percent double precision, tables_completed integer,
                   tables_total integer, current_table text, bytes_written bigint, rows_written bigint,
                   throughput_bytes_sec double precision, eta_seconds integer, error text, job_id bigint, job_status text)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT s.snapshot_id, s.status, s.phase, s.overall_percent, s.tables_completed, s.table_count, s.current_table,
           s.bytes_written, s.rows_written, s.throughput_bytes_sec, s.eta_seconds, coalesce(s.error_message, q.error_message),
           s.job_id, q.status
      FROM steep_repl.snapshots s
      LEFT JOIN steep_repl.work_queue q ON q.id = s.job_id
     WHERE (p_snapshot_id IS NULL AND s.status IN ('pending', 'generating')) OR s.snapshot_id = p_snapshot_id
     ORDER BY s.created_at DESC
     LIMIT 1
$$;
