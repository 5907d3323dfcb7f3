-- Tests of the notifications the API sends (docs/monitor-api.md,
-- "Notifications"): node_active wakes the decider only when a fact it decides
-- on changed; operator requests always do.
--
--   psql -v ON_ERROR_STOP=1 -d pgfailover -f sql/test/notify_test.sql
--
-- Notifications are delivered only after a commit, and a session cannot read
-- its own from SQL, so this file commits each call and listens through a
-- second connection (dblink, from postgresql-15's contrib) to the same
-- server: superuser, local socket or localhost, no password. It works in its
-- own formation 'notifytest' and removes it, the dblink extension and the
-- test schema at the end.

\set ON_ERROR_STOP 1
\set QUIET 1
\ir helpers.sql

-- Leftovers of an interrupted run.
DELETE FROM pgfailover.node WHERE formation = 'notifytest';
DELETE FROM pgfailover.node_group WHERE formation = 'notifytest';
DELETE FROM pgfailover.event WHERE formation = 'notifytest';
DELETE FROM pgfailover.formation WHERE name = 'notifytest';

CREATE EXTENSION IF NOT EXISTS dblink SCHEMA pgfailover_test;
-- Wherever dblink is installed, call it unqualified.
SELECT set_config('search_path', (SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'dblink')
                                 || ', ' || current_setting('search_path'), false) \g /dev/null

-- The listener connects the way this session did: through the first socket
-- directory when there is one, else over TCP to localhost.
SELECT dblink_connect('listener', format('host=%s port=%s dbname=%s user=%s',
  coalesce(nullif(split_part(current_setting('unix_socket_directories'), ',', 1), ''), 'localhost'),
  current_setting('port'), current_database(), current_user)) \g /dev/null
SELECT dblink_exec('listener', 'LISTEN pgfailover_decide') \g /dev/null
SELECT dblink_exec('listener', 'LISTEN pgfailover_events') \g /dev/null

-- Waits for the sentinel this session sent last and checks what the listener
-- received before it. Notifications reach a listener in commit order, so no
-- sleeping is needed to be sure that nothing else was sent.
CREATE FUNCTION pgfailover_test.expect_notes(want text[], what text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  got text[] := '{}';
  note record;
  deadline timestamptz := clock_timestamp() + interval '5 seconds';
BEGIN
  LOOP
    FOR note IN SELECT * FROM dblink_get_notify('listener') LOOP
      IF note.extra = 'sentinel' THEN
        PERFORM pgfailover_test.eq(got, want, what);
        RETURN;
      END IF;
      got := got || (note.notify_name || ' ' || note.extra);
    END LOOP;
    IF clock_timestamp() > deadline THEN
      PERFORM pgfailover_test.fail(format('%s: no sentinel within 5 s; got %s', what, got));
    END IF;
    PERFORM pg_sleep(0.01);
  END LOOP;
END
$$;

SELECT pgfailover.create_formation('notifytest', 'postgres', 0) \g /dev/null
NOTIFY pgfailover_decide, 'sentinel';
SELECT pgfailover_test.expect_notes('{pgfailover_events notifytest}', 'create_formation: an event, no group to decide') \g /dev/null

SET ROLE pgfailover_node;

SELECT pgfailover.register_node('notifytest', 'a', 'a.notifytest', 5432, NULL, 50, true) \g /dev/null
NOTIFY pgfailover_decide, 'sentinel';
SELECT pgfailover_test.expect_notes('{pgfailover_events notifytest, pgfailover_decide notifytest/0}', 'register_node') \g /dev/null
SELECT pgfailover.register_node('notifytest', 'b', 'b.notifytest', 5432, NULL, 50, true) \g /dev/null
NOTIFY pgfailover_decide, 'sentinel';
SELECT pgfailover_test.expect_notes('{pgfailover_events notifytest, pgfailover_decide notifytest/0}', 'register_node b') \g /dev/null

SELECT pgfailover_test.nid('notifytest', 'a') AS a, pgfailover_test.nid('notifytest', 'b') AS b \gset

SELECT current_setting('synchronous_commit') AS synchronous_commit_before \gset
-- node_active: the first report wakes the decider, the same report again does not.
SELECT pgfailover.node_active(:a, 'init', false, NULL, NULL, NULL, false, 0, NULL, NULL, NULL, NULL) \g /dev/null
NOTIFY pgfailover_decide, 'sentinel';
SELECT pgfailover_test.expect_notes('{pgfailover_decide notifytest/0}', 'first report') \g /dev/null
SELECT pgfailover.node_active(:a, 'init', false, NULL, NULL, NULL, false, 0, NULL, NULL, NULL, NULL) \g /dev/null
NOTIFY pgfailover_decide, 'sentinel';
SELECT pgfailover_test.expect_notes('{}', 'same report') \g /dev/null
-- Its asynchronous commit is for its own transaction only.
SELECT pgfailover_test.eq(current_setting('synchronous_commit'), :'synchronous_commit_before',
                          'synchronous_commit after node_active') \g /dev/null

SELECT pgfailover.node_active(:a, 'single', false, NULL, NULL, NULL, false, 0, NULL, NULL, NULL, NULL) \g /dev/null
NOTIFY pgfailover_decide, 'sentinel';
SELECT pgfailover_test.expect_notes('{pgfailover_decide notifytest/0}', 'reported state changed') \g /dev/null
SELECT pgfailover.node_active(:a, 'single', true, 1, '0/1000000', NULL, false, 0, NULL, NULL, NULL, 7000001) \g /dev/null
NOTIFY pgfailover_decide, 'sentinel';
SELECT pgfailover_test.expect_notes('{pgfailover_decide notifytest/0}', 'pg_running changed') \g /dev/null
-- The LSN of a primary moves all the time; it alone decides nothing.
SELECT pgfailover.node_active(:a, 'single', true, 1, '0/2000000', NULL, false, 0, NULL, NULL, '[]', 7000001) \g /dev/null
NOTIFY pgfailover_decide, 'sentinel';
SELECT pgfailover_test.expect_notes('{}', 'only the lsn and replication changed') \g /dev/null
SELECT pgfailover.node_active(:a, 'single', true, 1, '0/2000000', NULL, false, 0, NULL, ARRAY[:b]::bigint[], '[]', 7000001) \g /dev/null
NOTIFY pgfailover_decide, 'sentinel';
SELECT pgfailover_test.expect_notes('{pgfailover_decide notifytest/0}', 'peers_ready changed') \g /dev/null
-- The same set, with a duplicate: not a change.
SELECT pgfailover.node_active(:a, 'single', true, 1, '0/2000000', NULL, false, 0, NULL, ARRAY[:b, :b]::bigint[], '[]', 7000001) \g /dev/null
NOTIFY pgfailover_decide, 'sentinel';
SELECT pgfailover_test.expect_notes('{}', 'peers_ready unchanged as a set') \g /dev/null
SELECT pgfailover.node_active(:a, 'single', true, 1, '0/2000000', NULL, false, 1, ARRAY[:b]::bigint[], ARRAY[:b]::bigint[], '[]', 7000001) \g /dev/null
NOTIFY pgfailover_decide, 'sentinel';
SELECT pgfailover_test.expect_notes('{pgfailover_decide notifytest/0}', 'sync settings changed') \g /dev/null
SELECT pgfailover.node_active(:a, 'single', true, 2, '0/2000000', NULL, false, 1, ARRAY[:b]::bigint[], ARRAY[:b]::bigint[], '[]', 7000001) \g /dev/null
NOTIFY pgfailover_decide, 'sentinel';
SELECT pgfailover_test.expect_notes('{pgfailover_decide notifytest/0}', 'timeline changed') \g /dev/null

-- A standby: upstream and streaming matter; while it catches up, every
-- report does (its LSN decides when it becomes a secondary).
SELECT pgfailover.node_active(:b, 'wait_standby', true, 2, '0/1000000', NULL, false, 0, NULL, NULL, NULL, 7000001) \g /dev/null
NOTIFY pgfailover_decide, 'sentinel';
SELECT pgfailover_test.expect_notes('{pgfailover_decide notifytest/0}', 'standby first report') \g /dev/null
SELECT pgfailover.node_active(:b, 'wait_standby', true, 2, '0/1000000', :a, false, 0, NULL, NULL, NULL, 7000001) \g /dev/null
NOTIFY pgfailover_decide, 'sentinel';
SELECT pgfailover_test.expect_notes('{pgfailover_decide notifytest/0}', 'upstream changed') \g /dev/null
SELECT pgfailover.node_active(:b, 'wait_standby', true, 2, '0/1000000', :a, true, 0, NULL, NULL, NULL, 7000001) \g /dev/null
NOTIFY pgfailover_decide, 'sentinel';
SELECT pgfailover_test.expect_notes('{pgfailover_decide notifytest/0}', 'streaming changed') \g /dev/null
SELECT pgfailover.node_active(:b, 'catchingup', true, 2, '0/1000000', :a, true, 0, NULL, NULL, NULL, 7000001) \g /dev/null
SELECT pgfailover.node_active(:b, 'catchingup', true, 2, '0/1800000', :a, true, 0, NULL, NULL, NULL, 7000001) \g /dev/null
NOTIFY pgfailover_decide, 'sentinel';
-- Two transactions, two notifications (one per transaction is kept).
SELECT pgfailover_test.expect_notes('{pgfailover_decide notifytest/0, pgfailover_decide notifytest/0}', 'catching up') \g /dev/null
SELECT pgfailover.node_active(:b, 'secondary', true, 2, '0/2000000', :a, true, 0, NULL, NULL, NULL, 7000001) \g /dev/null
SELECT pgfailover.node_active(:b, 'secondary', true, 2, '0/2100000', :a, true, 0, NULL, NULL, NULL, 7000001) \g /dev/null
NOTIFY pgfailover_decide, 'sentinel';
SELECT pgfailover_test.expect_notes('{pgfailover_decide notifytest/0}', 'secondary: only the state change') \g /dev/null

-- A report after a silence longer than node_lost_timeout_ms: the node is back.
SELECT pgfailover_test.as_owner(format($q$UPDATE pgfailover.node SET last_report_at = now() - interval '1 hour' WHERE id = %s$q$, :b)) \g /dev/null
SELECT pgfailover.node_active(:b, 'secondary', true, 2, '0/2100000', :a, true, 0, NULL, NULL, NULL, 7000001) \g /dev/null
NOTIFY pgfailover_decide, 'sentinel';
SELECT pgfailover_test.expect_notes('{pgfailover_decide notifytest/0}', 'back after being lost') \g /dev/null

-- A refused report sends nothing.
DO $t$
BEGIN
  PERFORM pgfailover_test.expect_error(format(
    $q$SELECT pgfailover.node_active(%s, 'single', true, 2, '0/2100000', NULL, true, 0, NULL, NULL, NULL, 42)$q$,
    pgfailover_test.nid('notifytest', 'b')), '55000', '% reports system identifier 42 %');
END
$t$;
NOTIFY pgfailover_decide, 'sentinel';
SELECT pgfailover_test.expect_notes('{}', 'refused report') \g /dev/null

-- Operator requests. Both nodes pass their health checks, however long the
-- test has taken so far.
SELECT pgfailover_test.set_health('notifytest', x, 'good', now()) FROM unnest(ARRAY['a', 'b']) AS x \g /dev/null
SELECT pgfailover_test.assign('notifytest', 'a', 'primary', NULL, 0, '{}') \g /dev/null
SELECT pgfailover_test.assign('notifytest', 'b', 'secondary', 'a') \g /dev/null
SELECT pgfailover.set_node_candidate_priority('notifytest', 'b', 60) \g /dev/null
NOTIFY pgfailover_decide, 'sentinel';
SELECT pgfailover_test.expect_notes('{pgfailover_events notifytest, pgfailover_decide notifytest/0}', 'set_node_candidate_priority') \g /dev/null
SELECT pgfailover.set_node_candidate_priority('notifytest', 'b', 60) \g /dev/null
NOTIFY pgfailover_decide, 'sentinel';
SELECT pgfailover_test.expect_notes('{}', 'set_node_candidate_priority to the same value') \g /dev/null
SELECT pgfailover.set_node_replication_quorum('notifytest', 'b', false) \g /dev/null
NOTIFY pgfailover_decide, 'sentinel';
SELECT pgfailover_test.expect_notes('{pgfailover_events notifytest, pgfailover_decide notifytest/0}', 'set_node_replication_quorum') \g /dev/null
SELECT pgfailover.set_formation_number_sync_standbys('notifytest', 0) \g /dev/null
NOTIFY pgfailover_decide, 'sentinel';
SELECT pgfailover_test.expect_notes('{}', 'set_formation_number_sync_standbys to the same value') \g /dev/null
SELECT pgfailover.set_node_replication_quorum('notifytest', 'b', true) \g /dev/null
SELECT pgfailover.set_formation_number_sync_standbys('notifytest', 1) \g /dev/null
NOTIFY pgfailover_decide, 'sentinel';
SELECT pgfailover_test.expect_notes('{pgfailover_events notifytest, pgfailover_decide notifytest/0, pgfailover_events notifytest, pgfailover_decide notifytest/0}', 'set_formation_number_sync_standbys') \g /dev/null
SELECT pgfailover.start_maintenance('notifytest', 'b') \g /dev/null
SELECT pgfailover.stop_maintenance('notifytest', 'b') \g /dev/null
NOTIFY pgfailover_decide, 'sentinel';
SELECT pgfailover_test.expect_notes('{pgfailover_events notifytest, pgfailover_decide notifytest/0, pgfailover_events notifytest, pgfailover_decide notifytest/0}', 'maintenance') \g /dev/null
SELECT pgfailover.perform_switchover('notifytest', 0) \g /dev/null
NOTIFY pgfailover_decide, 'sentinel';
SELECT pgfailover_test.expect_notes('{pgfailover_events notifytest, pgfailover_decide notifytest/0}', 'perform_switchover') \g /dev/null
SELECT pgfailover_test.as_owner($q$UPDATE pgfailover.node_group SET switchover_requested_at = NULL WHERE formation = 'notifytest'$q$) \g /dev/null
SELECT pgfailover.perform_failover('notifytest', 0) \g /dev/null
NOTIFY pgfailover_decide, 'sentinel';
SELECT pgfailover_test.expect_notes('{pgfailover_events notifytest, pgfailover_decide notifytest/0}', 'perform_failover') \g /dev/null
SELECT pgfailover_test.as_owner($q$UPDATE pgfailover.node_group SET switchover_requested_at = NULL WHERE formation = 'notifytest'$q$) \g /dev/null
SELECT pgfailover.perform_promotion('notifytest', 'b') \g /dev/null
NOTIFY pgfailover_decide, 'sentinel';
SELECT pgfailover_test.expect_notes('{pgfailover_events notifytest, pgfailover_decide notifytest/0}', 'perform_promotion') \g /dev/null
SELECT pgfailover.drop_node('notifytest', 'b', false) \g /dev/null
NOTIFY pgfailover_decide, 'sentinel';
SELECT pgfailover_test.expect_notes('{pgfailover_events notifytest, pgfailover_decide notifytest/0}', 'drop_node') \g /dev/null
SELECT pgfailover.drop_node('notifytest', 'b', false) \g /dev/null
NOTIFY pgfailover_decide, 'sentinel';
SELECT pgfailover_test.expect_notes('{}', 'drop_node requested again') \g /dev/null
SELECT pgfailover.drop_node('notifytest', 'b', true) \g /dev/null
NOTIFY pgfailover_decide, 'sentinel';
SELECT pgfailover_test.expect_notes('{pgfailover_events notifytest, pgfailover_decide notifytest/0}', 'drop_node force') \g /dev/null
-- A monitor setting concerns every group, and is logged in every formation.
SELECT pgfailover.set_monitor_setting('decide_tick_ms', '400') \g /dev/null
SELECT pgfailover.set_monitor_setting('decide_tick_ms', '500') \g /dev/null
NOTIFY pgfailover_decide, 'sentinel';
SELECT pgfailover_test.expect_notes(
  string_to_array(pgfailover_test.owner_value($q$
    SELECT string_agg(x, ',' ORDER BY step, o, k, g) FROM (VALUES (1), (2)) AS steps(step),
      LATERAL (SELECT 'pgfailover_decide ' || ng.formation || '/' || ng.group_id AS x, 0 AS o,
                      ng.formation AS k, ng.group_id AS g FROM pgfailover.node_group ng
               UNION ALL
               SELECT 'pgfailover_events ' || f.name, 1, f.name, 0 FROM pgfailover.formation f) AS notes$q$), ','),
  'set_monitor_setting') \g /dev/null

RESET ROLE;
SELECT dblink_disconnect('listener') \g /dev/null
DELETE FROM pgfailover.node WHERE formation = 'notifytest';
DELETE FROM pgfailover.node_group WHERE formation = 'notifytest';
DELETE FROM pgfailover.event WHERE formation = 'notifytest';
DELETE FROM pgfailover.formation WHERE name = 'notifytest';
DELETE FROM pgfailover.event WHERE rule = 'set-monitor-setting' AND reason LIKE 'decide_tick_ms changed %';
DROP SCHEMA pgfailover_test CASCADE;
\echo notify_test: all tests passed
