-- 009 merge sequences: a merge that copies rows with explicit key values can leave a sequence owned
-- by a merged table's column (serial, identity) behind max(column) on the node that received them;
-- the merge then advances it (never backwards) and audits that here, as category 'sequence' with
-- resolution 'advanced_on_a' / 'advanced_on_b', pk_value {"sequence": …, "column": …} and the
-- receiving node's value {"before": …, "is_called": …, "after": …}.

ALTER TABLE steep_repl.merge_audit_log DROP CONSTRAINT merge_audit_log_category_check;
ALTER TABLE steep_repl.merge_audit_log ADD CONSTRAINT merge_audit_log_category_check
    CHECK (category IN ('match', 'conflict', 'local_only', 'remote_only', 'sequence'));
ALTER TABLE steep_repl.merge_audit_log DROP CONSTRAINT merge_audit_log_resolution_check;
ALTER TABLE steep_repl.merge_audit_log ADD CONSTRAINT merge_audit_log_resolution_check
    CHECK (resolution IS NULL OR resolution IN
        ('kept_a', 'kept_b', 'skipped', 'transferred_a_to_b', 'transferred_b_to_a', 'advanced_on_a', 'advanced_on_b'));
