-- 002 jobs: the work queue grows what a real queue needs (priorities, attempts, leases renewed by a
-- heartbeat, cancel requests, progress and result documents), the registry of live workers, and the
-- SQL API any client can use without the CLI: enqueue, job_progress, wait_job, cancel_job, health.
-- Runs inside the installer's transaction; REVOKE ... FROM PUBLIC is repeated by the installer.

ALTER TABLE steep_repl.work_queue
    ADD COLUMN priority            integer NOT NULL DEFAULT 0
        CONSTRAINT work_queue_priority_check CHECK (priority BETWEEN -1000 AND 1000),
    ADD COLUMN run_after           timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN attempts            integer NOT NULL DEFAULT 0 CONSTRAINT work_queue_attempts_check CHECK (attempts >= 0),
    ADD COLUMN max_attempts        integer NOT NULL DEFAULT 3
        CONSTRAINT work_queue_max_attempts_check CHECK (max_attempts BETWEEN 1 AND 100),
    ADD COLUMN lease_owner         text,
    ADD COLUMN lease_expires_at    timestamptz,
    ADD COLUMN heartbeat_at        timestamptz,
    -- 'direct' (run by the command that queued it) or 'worker'; set when claimed.
    ADD COLUMN executor            text CONSTRAINT work_queue_executor_check CHECK (executor IN ('direct', 'worker')),
    ADD COLUMN cancel_requested_at timestamptz,
    ADD COLUMN progress            jsonb,
    ADD COLUMN result              jsonb,
    ADD COLUMN created_by          text NOT NULL DEFAULT current_user,
    ADD COLUMN updated_at          timestamptz NOT NULL DEFAULT now(),
    ADD CONSTRAINT work_queue_params_object_check CHECK (jsonb_typeof(params) = 'object'),
    -- Job params never hold secrets: another server is named (a config connection name or a node
    -- id), never given with its password. Keys named like passwords and URLs with a password part
    -- are refused; the CLI checks the same rule first to give a precise message.
    ADD CONSTRAINT work_queue_params_no_secrets_check CHECK (
        params::text !~* '"(password|passwd|sslpassword|secret|pgpassword)"[[:space:]]*:'
        AND params::text !~* '[a-z]+://[^/@[:space:]"]*:[^/@[:space:]"]+@'
        AND params::text !~* '(^|[^a-z_])(password|sslpassword)[[:space:]]*='),
    -- Only running jobs hold a lease. A running row without one was set by another tool (the
    -- upstream extension's worker, a script): it counts as running and is never reclaimed.
    ADD CONSTRAINT work_queue_lease_check CHECK (status = 'running' OR (lease_owner IS NULL AND lease_expires_at IS NULL));

-- The claim order (see steep_repl.claim in src/direct/queue.ts): highest priority first, then the
-- oldest; only pending rows are in the index. The upstream index on created_at stays.
CREATE INDEX work_queue_claim_idx ON steep_repl.work_queue (priority DESC, run_after, id) WHERE status = 'pending';
CREATE INDEX work_queue_lease_idx ON steep_repl.work_queue (lease_expires_at) WHERE status = 'running';
CREATE INDEX work_queue_status_idx ON steep_repl.work_queue (status, id DESC);

CREATE TABLE steep_repl.workers (
    id                text PRIMARY KEY CHECK (id <> ''),
    host              text NOT NULL,
    pid               integer NOT NULL,
    version           text NOT NULL,
    -- NULL: every operation this worker knows; else only these.
    operations        text[],
    concurrency       integer NOT NULL DEFAULT 1 CHECK (concurrency BETWEEN 1 AND 256),
    heartbeat_seconds integer NOT NULL DEFAULT 5 CHECK (heartbeat_seconds BETWEEN 1 AND 3600),
    started_at        timestamptz NOT NULL DEFAULT now(),
    last_seen         timestamptz NOT NULL DEFAULT now(),
    jobs_done         bigint NOT NULL DEFAULT 0
);

-- A worker is live while it has been seen within three heartbeats.
CREATE FUNCTION steep_repl.worker_is_live(w steep_repl.workers) RETURNS boolean
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT w.last_seen > now() - make_interval(secs => 3 * w.heartbeat_seconds) $$;

-- Queue a job and return its id; wakes the workers. Params are checked against the operation's
-- schema by the executor (and by the CLI before queueing); here only the shape and the no-secret
-- rule (the table's CHECKs). A NOTICE says when no live worker takes this operation.
CREATE FUNCTION steep_repl.enqueue(p_operation text, p_params jsonb DEFAULT '{}', p_priority integer DEFAULT 0,
                                   p_max_attempts integer DEFAULT 3, p_run_after timestamptz DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    v_id bigint;
BEGIN
    IF p_operation IS NULL OR p_operation !~ '^[a-z][a-z0-9_]*$' THEN
        RAISE EXCEPTION 'invalid operation name %', coalesce(quote_literal(p_operation), 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Operation names are lower case: letters, digits and _.';
    END IF;
    INSERT INTO steep_repl.work_queue (operation, params, priority, max_attempts, run_after, created_by)
    VALUES (p_operation, coalesce(p_params, '{}'), coalesce(p_priority, 0), coalesce(p_max_attempts, 3),
            coalesce(p_run_after, now()), session_user)
    RETURNING id INTO v_id;
    PERFORM pg_notify('steep_repl_work', 'job:' || v_id || ':' || p_operation);
    IF NOT EXISTS (SELECT 1 FROM steep_repl.workers w
                    WHERE steep_repl.worker_is_live(w) AND (w.operations IS NULL OR p_operation = ANY (w.operations))) THEN
        RAISE NOTICE 'job % queued, but no live worker takes operation %', v_id, p_operation
            USING HINT = 'Start one: steep-repl worker -d <this database>';
    END IF;
    RETURN v_id;
END
$$;

-- The latest progress of a job, as persisted by its executor (a watcher that joins late starts here).
CREATE FUNCTION steep_repl.job_progress(p_id bigint)
    RETURNS TABLE (id bigint, operation text, status text, phase text, percent double precision,
                   current_item text, rows_done bigint, bytes_done bigint, bytes_total bigint,
                   throughput_bytes_sec double precision, eta_seconds double precision, attempts integer,
                   max_attempts integer, cancel_requested boolean, error_message text, progress jsonb,
                   updated_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT q.id, q.operation, q.status, q.progress->>'phase', (q.progress->>'percent')::float8,
           q.progress->>'item', (q.progress->>'rows')::bigint, (q.progress->>'bytes')::bigint,
           (q.progress->>'bytesTotal')::bigint, (q.progress->>'rate')::float8, (q.progress->>'eta')::float8,
           q.attempts, q.max_attempts, q.cancel_requested_at IS NOT NULL, q.error_message, q.progress, q.updated_at
      FROM steep_repl.work_queue q WHERE q.id = p_id
$$;

-- Waits until the job is complete, failed or cancelled and returns its row. Raises (SQLSTATE 57014)
-- after p_timeout_seconds. Each poll sees newly committed changes (READ COMMITTED); under REPEATABLE
-- READ or SERIALIZABLE it could never see the job finish, so it refuses to run there.
CREATE FUNCTION steep_repl.wait_job(p_id bigint, p_timeout_seconds double precision DEFAULT 86400)
    RETURNS steep_repl.work_queue
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    v_row steep_repl.work_queue;
    v_deadline timestamptz := clock_timestamp() + make_interval(secs => greatest(coalesce(p_timeout_seconds, 0), 0));
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'steep_repl.wait_job needs READ COMMITTED isolation (this transaction is %)',
            current_setting('transaction_isolation') USING ERRCODE = 'invalid_transaction_state';
    END IF;
    LOOP
        SELECT * INTO v_row FROM steep_repl.work_queue WHERE id = p_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'job % does not exist', p_id USING ERRCODE = 'no_data_found';
        END IF;
        IF v_row.status IN ('complete', 'failed', 'cancelled') THEN
            RETURN v_row;
        END IF;
        IF clock_timestamp() >= v_deadline THEN
            RAISE EXCEPTION 'timeout waiting for job % (still %)', p_id, v_row.status
                USING ERRCODE = 'query_canceled', HINT = 'Wait again, or cancel it: SELECT steep_repl.cancel_job(' || p_id || ');';
        END IF;
        PERFORM pg_sleep(least(0.2, greatest(extract(epoch FROM v_deadline - clock_timestamp()), 0.01)));
    END LOOP;
END
$$;

-- Cancels a job: a pending one at once, a running one by asking its executor to stop at its next
-- safe point (status stays running until it has). Returns the status after the call.
CREATE FUNCTION steep_repl.cancel_job(p_id bigint)
    RETURNS text
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    v_status text;
BEGIN
    UPDATE steep_repl.work_queue
       SET status = CASE WHEN status = 'pending' THEN 'cancelled' ELSE status END,
           completed_at = CASE WHEN status = 'pending' THEN now() ELSE completed_at END,
           error_message = CASE WHEN status = 'pending' THEN 'cancelled by ' || session_user || ' before it started'
                                ELSE error_message END,
           cancel_requested_at = coalesce(cancel_requested_at, now()),
           updated_at = now()
     WHERE id = p_id AND status IN ('pending', 'running')
    RETURNING status INTO v_status;
    IF FOUND THEN
        IF v_status = 'running' THEN
            PERFORM pg_notify('steep_repl_work', 'cancel:' || p_id);
        END IF;
        RETURN v_status;
    END IF;
    SELECT status INTO v_status FROM steep_repl.work_queue WHERE id = p_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job % does not exist', p_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN v_status;
END
$$;

-- One row of what `steep-repl health` reports (the facts and the verdict it can judge from SQL).
-- The CLI adds what only a client can know (its own schema version, TLS, its role's privileges).
CREATE FUNCTION steep_repl.health()
    RETURNS TABLE (healthy boolean, problems text[], server_version text, server_version_num integer,
                   in_recovery boolean, wal_level text, schema_version integer, max_replication_slots integer,
                   replication_slots_used integer, lost_slots text[], max_wal_senders integer,
                   jobs_pending integer, jobs_running integer, jobs_failed_last_day integer,
                   jobs_stale_leases integer, live_workers integer, oldest_pending_seconds double precision)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    v_problems text[] := '{}';
    v_major integer := current_setting('server_version_num')::integer / 10000;
BEGIN
    server_version := current_setting('server_version');
    server_version_num := current_setting('server_version_num')::integer;
    in_recovery := pg_is_in_recovery();
    wal_level := current_setting('wal_level');
    max_replication_slots := current_setting('max_replication_slots')::integer;
    max_wal_senders := current_setting('max_wal_senders')::integer;
    SELECT max(version) INTO schema_version FROM steep_repl.schema_version;
    SELECT count(*)::integer, coalesce(array_agg(slot_name::text ORDER BY slot_name) FILTER (WHERE wal_status = 'lost'), '{}')
      INTO replication_slots_used, lost_slots FROM pg_replication_slots;
    SELECT count(*) FILTER (WHERE status = 'pending')::integer,
           count(*) FILTER (WHERE status = 'running')::integer,
           count(*) FILTER (WHERE status = 'failed' AND completed_at > now() - interval '1 day')::integer,
           count(*) FILTER (WHERE status = 'running' AND lease_expires_at < now())::integer,
           extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'pending'))::float8
      INTO jobs_pending, jobs_running, jobs_failed_last_day, jobs_stale_leases, oldest_pending_seconds
      FROM steep_repl.work_queue;
    SELECT count(*)::integer INTO live_workers FROM steep_repl.workers w WHERE steep_repl.worker_is_live(w);
    IF v_major < 15 OR v_major > 18 THEN
        v_problems := v_problems || ('server version: PostgreSQL ' || server_version || ' is not supported');
    END IF;
    IF wal_level <> 'logical' THEN
        v_problems := v_problems || ('wal_level: ' || wal_level || ' (logical replication needs logical)');
    END IF;
    IF NOT (max_replication_slots > replication_slots_used AND max_wal_senders > 0) THEN
        v_problems := v_problems || ('replication capacity: ' || replication_slots_used || '/' || max_replication_slots
                                     || ' slots used, ' || max_wal_senders || ' WAL senders');
    END IF;
    IF cardinality(lost_slots) > 0 THEN
        v_problems := v_problems || ('slots lost their WAL: ' || array_to_string(lost_slots, ', '));
    END IF;
    problems := v_problems;
    healthy := cardinality(v_problems) = 0;
    RETURN NEXT;
END
$$;

REVOKE ALL ON steep_repl.workers FROM PUBLIC;
REVOKE ALL ON FUNCTION steep_repl.worker_is_live(steep_repl.workers), steep_repl.enqueue(text, jsonb, integer, integer, timestamptz),
    steep_repl.job_progress(bigint), steep_repl.wait_job(bigint, double precision), steep_repl.cancel_job(bigint),
    steep_repl.health() FROM PUBLIC;
