-- 006 nodes: the registry's SQL API (register_node, heartbeat, node_status), the init state machine
-- enforced by a trigger (upstream checked it only in one Go method and skipped it elsewhere), and
-- the upstream init_progress / init_slots tables (reference §3.1, §4.3).

-- Allowed init_state transitions (reference §4.3), plus what a demanding operator needs that
-- upstream wrote without validation: synchronized → reinitializing (reinit of some tables),
-- synchronized/diverged → uninitialized (full reinit), and any running state → failed.
CREATE FUNCTION steep_repl.init_transition_allowed(from_state text, to_state text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT from_state = to_state OR (from_state, to_state) IN (
        ('uninitialized', 'preparing'), ('uninitialized', 'failed'),
        ('preparing', 'copying'), ('preparing', 'catching_up'), ('preparing', 'failed'),
        ('copying', 'catching_up'), ('copying', 'failed'),
        ('catching_up', 'synchronized'), ('catching_up', 'failed'),
        ('synchronized', 'diverged'), ('synchronized', 'reinitializing'), ('synchronized', 'uninitialized'),
        ('diverged', 'reinitializing'), ('diverged', 'failed'), ('diverged', 'uninitialized'),
        ('failed', 'uninitialized'), ('failed', 'preparing'), ('failed', 'reinitializing'),
        ('reinitializing', 'copying'), ('reinitializing', 'catching_up'), ('reinitializing', 'synchronized'),
        ('reinitializing', 'failed'), ('reinitializing', 'uninitialized')
    )
$$;

CREATE FUNCTION steep_repl.nodes_check_transition() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT steep_repl.init_transition_allowed(OLD.init_state, NEW.init_state) THEN
        RAISE EXCEPTION 'invalid state transition from % to % for node %', OLD.init_state, NEW.init_state, OLD.node_id
            USING ERRCODE = 'check_violation', HINT = 'See steep-repl node status; a failed node can be initialized again.';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER nodes_init_state_transition BEFORE UPDATE OF init_state ON steep_repl.nodes
    FOR EACH ROW EXECUTE FUNCTION steep_repl.nodes_check_transition();

CREATE TABLE steep_repl.init_progress (
    node_id               text PRIMARY KEY REFERENCES steep_repl.nodes (node_id) ON DELETE CASCADE,
    phase                 text NOT NULL
        CONSTRAINT progress_phase_check CHECK (phase IN ('preparing', 'copying', 'catching_up', 'complete', 'failed')),
    overall_percent       real NOT NULL DEFAULT 0 CONSTRAINT progress_overall_percent_check CHECK (overall_percent BETWEEN 0 AND 100),
    tables_total          integer NOT NULL DEFAULT 0 CHECK (tables_total >= 0),
    tables_completed      integer NOT NULL DEFAULT 0 CHECK (tables_completed >= 0),
    current_table         text,
    current_table_percent real DEFAULT 0 CHECK (current_table_percent BETWEEN 0 AND 100),
    rows_copied           bigint DEFAULT 0 CHECK (rows_copied >= 0),
    bytes_copied          bigint DEFAULT 0 CHECK (bytes_copied >= 0),
    throughput_rows_sec   real DEFAULT 0,
    started_at            timestamptz NOT NULL DEFAULT now(),
    eta_seconds           integer CHECK (eta_seconds IS NULL OR eta_seconds >= 0),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    parallel_workers      integer DEFAULT 1 CHECK (parallel_workers BETWEEN 1 AND 64),
    error_message         text,
    -- What this project adds: where the init stands for cleanup, and the replication lag.
    source_node_id        text,
    slot_name             text,
    publication_name      text,
    subscription_name     text,
    lsn                   text,
    lag_bytes             bigint,
    job_id                text,
    -- Tables the init created on the target (dropped again by a cancel or failure).
    created_tables        jsonb,
    CONSTRAINT progress_tables_check CHECK (tables_completed <= tables_total)
);

CREATE TABLE steep_repl.init_slots (
    slot_name    text PRIMARY KEY,
    node_id      text NOT NULL REFERENCES steep_repl.nodes (node_id) ON DELETE CASCADE,
    lsn          text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    used_by_node text REFERENCES steep_repl.nodes (node_id) ON DELETE SET NULL,
    used_at      timestamptz
);
CREATE INDEX idx_init_slots_node ON steep_repl.init_slots (node_id);
CREATE INDEX idx_init_slots_expires ON steep_repl.init_slots (expires_at) WHERE expires_at IS NOT NULL;

-- Upsert of a node; the health and init state of an existing row are kept.
CREATE FUNCTION steep_repl.register_node(p_node_id text, p_name text, p_host text, p_port integer DEFAULT 5432, p_priority integer DEFAULT 50)
RETURNS steep_repl.nodes
LANGUAGE sql AS $$
    INSERT INTO steep_repl.nodes (node_id, node_name, host, port, priority)
    VALUES (p_node_id, coalesce(p_name, p_node_id), p_host, coalesce(p_port, 5432), coalesce(p_priority, 50))
    ON CONFLICT (node_id) DO UPDATE SET node_name = EXCLUDED.node_name, host = EXCLUDED.host, port = EXCLUDED.port, priority = EXCLUDED.priority
    RETURNING *
$$;

CREATE FUNCTION steep_repl.heartbeat(p_node_id text) RETURNS timestamptz
LANGUAGE plpgsql AS $$
DECLARE
    seen timestamptz;
BEGIN
    UPDATE steep_repl.nodes SET last_seen = clock_timestamp(), status = CASE WHEN status = 'offline' THEN status ELSE 'healthy' END
     WHERE node_id = p_node_id RETURNING last_seen INTO seen;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'node % is not registered', p_node_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN seen;
END
$$;

-- Healthy: seen within p_max_age and not marked offline/unreachable.
CREATE FUNCTION steep_repl.node_status(p_node_id text DEFAULT NULL, p_max_age interval DEFAULT '30 seconds')
RETURNS TABLE (node_id text, node_name text, host text, port integer, priority integer, status text, init_state text,
               init_source_node text, last_seen timestamptz, seconds_since_seen double precision, is_healthy boolean)
LANGUAGE sql STABLE AS $$
    SELECT n.node_id, n.node_name, n.host, n.port, n.priority, n.status, n.init_state, n.init_source_node, n.last_seen,
           extract(epoch FROM clock_timestamp() - n.last_seen)::double precision,
           coalesce(n.last_seen > clock_timestamp() - p_max_age AND n.status NOT IN ('offline', 'unreachable'), false)
      FROM steep_repl.nodes n
     WHERE p_node_id IS NULL OR n.node_id = p_node_id
     ORDER BY n.priority DESC, n.node_id
$$;

REVOKE ALL ON steep_repl.init_progress, steep_repl.init_slots FROM PUBLIC;
REVOKE ALL ON FUNCTION steep_repl.register_node(text, text, text, integer, integer), steep_repl.heartbeat(text),
    steep_repl.node_status(text, interval), steep_repl.init_transition_allowed(text, text) FROM PUBLIC;
