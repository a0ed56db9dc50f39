-- 004 walrus: the decisions of `walrus watch` / `walrus tune --apply` and the state the watcher
-- keeps between cycles (and across watchers: a standby that takes over continues from it).
-- The history mirrors pg_walrus's walrus.history (reference/pg_walrus-upstream.md §6.1) so its
-- queries keep working, with two fixes: forced_checkpoints is the delta of the interval (upstream
-- stored the cumulative counter) and the counter itself is kept beside it in requested_total.

CREATE TABLE steep_repl.walrus_history (
    id                     bigserial PRIMARY KEY,
    "timestamp"            timestamptz NOT NULL DEFAULT now(),
    action                 text NOT NULL
        CONSTRAINT walrus_history_action_check CHECK (action IN ('increase', 'decrease', 'capped', 'dry_run', 'skipped')),
    old_size_mb            integer NOT NULL CONSTRAINT walrus_history_old_size_check CHECK (old_size_mb > 0),
    new_size_mb            integer NOT NULL CONSTRAINT walrus_history_new_size_check CHECK (new_size_mb > 0),
    forced_checkpoints     bigint NOT NULL CONSTRAINT walrus_history_forced_check CHECK (forced_checkpoints >= 0),
    requested_total        bigint CHECK (requested_total IS NULL OR requested_total >= 0),
    checkpoint_timeout_sec integer NOT NULL CONSTRAINT walrus_history_timeout_check CHECK (checkpoint_timeout_sec > 0),
    interval_sec           numeric CHECK (interval_sec IS NULL OR interval_sec > 0),
    reason                 text,
    metadata               jsonb,
    source                 text NOT NULL DEFAULT 'watch' CHECK (source IN ('watch', 'tune'))
);
CREATE INDEX walrus_history_timestamp_idx ON steep_repl.walrus_history ("timestamp");
COMMENT ON TABLE steep_repl.walrus_history IS 'max_wal_size sizing decisions of steep-repl walrus (pg_walrus-compatible columns)';
COMMENT ON COLUMN steep_repl.walrus_history.forced_checkpoints IS 'Requested checkpoints in the interval that led to the decision';
COMMENT ON COLUMN steep_repl.walrus_history.requested_total IS 'Cumulative requested-checkpoint counter at decision time';

-- One row. generation moves on `walrus reset`: a watcher that read an older generation does not
-- write its state back over the reset.
CREATE TABLE steep_repl.walrus_state (
    singleton              boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    generation             bigint NOT NULL DEFAULT 0,
    baseline_requested     bigint,
    baseline_stats_reset   timestamptz,
    baseline_at            timestamptz,
    quiet_intervals        integer NOT NULL DEFAULT 0,
    last_adjustment_at     timestamptz,
    changes_this_hour      integer NOT NULL DEFAULT 0,
    hour_window_start      timestamptz,
    total_adjustments      bigint NOT NULL DEFAULT 0,
    -- whether the rate-limit fields above were counted by a dry run (a real run starts afresh)
    dry_run                boolean NOT NULL DEFAULT false,
    -- the watcher that wrote last: host, pid, settings, mode
    watcher                jsonb,
    updated_at             timestamptz NOT NULL DEFAULT now()
);
INSERT INTO steep_repl.walrus_state DEFAULT VALUES;
