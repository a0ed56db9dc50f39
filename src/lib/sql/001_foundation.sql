-- 001 foundation: the upstream-compatible core tables (see reference/steep-repl-upstream.md §3, §11).
-- The installer has already created the schema and steep_repl.schema_version and holds the install
-- advisory lock; this file runs inside the installer's transaction.

CREATE TABLE steep_repl.nodes (
    node_id                        text PRIMARY KEY CHECK (node_id <> ''),
    node_name                      text NOT NULL,
    host                           text NOT NULL CONSTRAINT nodes_host_check CHECK (host <> ''),
    port                           integer NOT NULL DEFAULT 5432 CONSTRAINT nodes_port_check CHECK (port BETWEEN 1 AND 65535),
    grpc_host                      text,
    grpc_port                      integer CONSTRAINT nodes_grpc_port_check CHECK (grpc_port IS NULL OR grpc_port BETWEEN 1 AND 65535),
    priority                       integer NOT NULL DEFAULT 50 CONSTRAINT nodes_priority_check CHECK (priority BETWEEN 1 AND 100),
    is_coordinator                 boolean NOT NULL DEFAULT false,
    last_seen                      timestamptz,
    status                         text NOT NULL DEFAULT 'unknown'
        CONSTRAINT nodes_status_check CHECK (status IN ('unknown', 'healthy', 'degraded', 'unreachable', 'offline')),
    init_state                     text NOT NULL DEFAULT 'uninitialized'
        CONSTRAINT nodes_init_state_check CHECK (init_state IN ('uninitialized', 'preparing', 'copying', 'catching_up',
                                                                'synchronized', 'diverged', 'failed', 'reinitializing')),
    init_source_node               text REFERENCES steep_repl.nodes (node_id),
    init_started_at                timestamptz,
    init_completed_at              timestamptz,
    last_sync_throughput_bytes_sec real CHECK (last_sync_throughput_bytes_sec IS NULL OR last_sync_throughput_bytes_sec >= 0),
    last_sync_at                   timestamptz
);
CREATE INDEX idx_nodes_status ON steep_repl.nodes (status);
CREATE INDEX idx_nodes_coordinator ON steep_repl.nodes (is_coordinator) WHERE is_coordinator;
CREATE INDEX idx_nodes_init_state ON steep_repl.nodes (init_state);

CREATE TABLE steep_repl.coordinator_state (
    key        text PRIMARY KEY,
    value      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- No foreign keys: the history outlives the rows it talks about.
CREATE TABLE steep_repl.audit_log (
    id            bigserial PRIMARY KEY,
    occurred_at   timestamptz NOT NULL DEFAULT now(),
    action        text NOT NULL,
    actor         text NOT NULL,
    target_type   text,
    target_id     text,
    old_value     jsonb,
    new_value     jsonb,
    client_ip     inet,
    success       boolean NOT NULL DEFAULT true,
    error_message text
);
CREATE INDEX idx_audit_log_occurred_at ON steep_repl.audit_log (occurred_at DESC);
CREATE INDEX idx_audit_log_actor ON steep_repl.audit_log (actor);
CREATE INDEX idx_audit_log_action ON steep_repl.audit_log (action);
CREATE INDEX idx_audit_log_target ON steep_repl.audit_log (target_type, target_id) WHERE target_type IS NOT NULL;

-- The job queue, with the upstream 016 columns. Operation kinds are not a CHECK list: handlers
-- register them in the CLI and params are validated there at enqueue time. The jobs migration adds
-- leases, attempts, progress and results.
CREATE TABLE steep_repl.work_queue (
    id            bigserial PRIMARY KEY,
    operation     text NOT NULL CONSTRAINT work_queue_operation_check CHECK (operation ~ '^[a-z][a-z0-9_]*$'),
    snapshot_id   text,
    merge_id      text,
    params        jsonb NOT NULL DEFAULT '{}',
    status        text NOT NULL DEFAULT 'pending'
        CONSTRAINT work_queue_status_check CHECK (status IN ('pending', 'running', 'complete', 'failed', 'cancelled')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    completed_at  timestamptz,
    error_message text
);
CREATE INDEX work_queue_pending_idx ON steep_repl.work_queue (created_at) WHERE status = 'pending';
