-- 008 node prepare: the two-step init records on the node which snapshot it will complete from
-- (node prepare writes them; node complete reads them when --input is not given).
ALTER TABLE steep_repl.init_progress
    ADD COLUMN snapshot_id   text,
    ADD COLUMN snapshot_path text;
