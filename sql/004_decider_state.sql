-- What the decider must remember between decisions beyond the node rows.
--
-- last_primary: the node most recently assigned a writable state
-- (GroupSnapshot::last_primary). Its synchronous replication settings say which
-- standbys hold every acknowledged write, so an election waits for enough of
-- them (invariant I2). It must survive a monitor restart or a takeover by
-- another monitor process, hence a column and not process memory.
-- No foreign key: the node may have been deleted since (drop_node with force);
-- decide() treats an id it cannot find as unknown.

ALTER TABLE pgfailover.node_group ADD COLUMN IF NOT EXISTS last_primary bigint;

-- A database that already had decisions before this column existed: the node
-- holding a writable goal is the last primary.
UPDATE pgfailover.node_group g
SET last_primary = (SELECT n.id FROM pgfailover.node n
                    WHERE n.formation = g.formation AND n.group_id = g.group_id
                      AND n.goal_state IN ('single', 'wait_primary', 'primary')
                    ORDER BY n.goal_changed_at DESC LIMIT 1)
WHERE g.last_primary IS NULL;
