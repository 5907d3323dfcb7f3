-- Operator functions against a decider that is deciding: they must wait for
-- the group lock and then succeed, never deadlock with it, and never hold up
-- the decider's own writes (events, node rows) longer than that.
--
--   psql -v ON_ERROR_STOP=1 -d pgfailover -f sql/test/concurrency_test.sql
--
-- Two extra sessions through dblink (postgresql-15's contrib): 'decider' does
-- what the monitor service does in its decision transaction (FOR UPDATE of the
-- group row, UPDATE of node rows, INSERT of events); 'operator' calls the API
-- asynchronously. Superuser, local socket or localhost, no password. Works in
-- its own formation 'locktest' and removes it at the end.

\set ON_ERROR_STOP 1
\set QUIET 1
\ir helpers.sql

DELETE FROM pgfailover.node WHERE formation = 'locktest';
DELETE FROM pgfailover.node_group WHERE formation = 'locktest';
DELETE FROM pgfailover.event WHERE formation = 'locktest';
DELETE FROM pgfailover.formation WHERE name = 'locktest';

CREATE EXTENSION IF NOT EXISTS dblink SCHEMA pgfailover_test;
-- Wherever dblink is installed, call it unqualified.
SELECT set_config('search_path', (SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'dblink')
                                 || ', ' || current_setting('search_path'), false) \g /dev/null

SELECT pgfailover.create_formation('locktest', 'postgres', 0) \g /dev/null
SELECT pgfailover.register_node('locktest', x, x || '.locktest', 5432, NULL, 50, true)
FROM unnest(ARRAY['a', 'b', 'c']) AS x \g /dev/null
SELECT pgfailover_test.assign('locktest', 'a', 'primary') \g /dev/null
SELECT pgfailover_test.assign('locktest', x, 'secondary', 'a') FROM unnest(ARRAY['b', 'c']) AS x \g /dev/null
SELECT pgfailover_test.set_health('locktest', x, 'good', now()) FROM unnest(ARRAY['a', 'b', 'c']) AS x \g /dev/null

-- Deadlocks are detected after deadlock_timeout (1 s); the statement timeout
-- turns any other endless wait into an error too.
SELECT dblink_connect(c, format('host=%s port=%s dbname=%s user=%s options=-cstatement_timeout=5000',
  coalesce(nullif(split_part(current_setting('unix_socket_directories'), ',', 1), ''), 'localhost'),
  current_setting('port'), current_database(), current_user))
FROM unnest(ARRAY['decider', 'operator']) AS c \g /dev/null

CREATE FUNCTION pgfailover_test.decider_begin()
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM dblink_exec('decider', 'BEGIN');
  PERFORM * FROM dblink('decider',
    $q$SELECT group_id FROM pgfailover.node_group WHERE formation = 'locktest' AND group_id = 0 FOR UPDATE$q$) AS t(g int);
END
$$;

-- Sends an API call on 'operator' and checks that it waits for the decider.
CREATE FUNCTION pgfailover_test.operator_send(call text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM dblink_send_query('operator', 'SELECT (' || call || ')::text');
  PERFORM pg_sleep(0.3);
  PERFORM pgfailover_test.ok(dblink_is_busy('operator') = 1,
                             call || ' must wait while the decider holds the group');
END
$$;

-- The decider writes what a decision writes, then commits; the operator's call
-- must then complete without error.
CREATE FUNCTION pgfailover_test.decider_decide_and_commit(call text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  result text;
BEGIN
  PERFORM dblink_exec('decider',
    $q$UPDATE pgfailover.node SET goal_changed_at = now() WHERE formation = 'locktest'$q$);
  PERFORM dblink_exec('decider',
    $q$INSERT INTO pgfailover.event (formation, group_id, rule, reason) VALUES ('locktest', 0, 'test-decision', 'x')$q$);
  PERFORM * FROM dblink('decider',
    $q$SELECT number_sync_standbys FROM pgfailover.formation WHERE name = 'locktest'$q$) AS t(n int);
  PERFORM dblink_exec('decider', 'COMMIT');
  SELECT r INTO result FROM dblink_get_result('operator') AS t(r text);
  -- dblink_get_result needs a final call that returns nothing.
  PERFORM * FROM dblink_get_result('operator') AS t(r text);
  RETURN result;
EXCEPTION WHEN OTHERS THEN
  PERFORM pgfailover_test.fail(format('%s against a deciding decider: %s', call, SQLERRM));
END
$$;

-- Each operator function that takes the group lock, in turn.
DO $t$
DECLARE
  call text;
BEGIN
  FOREACH call IN ARRAY ARRAY[
    $q$pgfailover.set_node_replication_quorum('locktest', 'c', false)$q$,
    $q$pgfailover.set_node_candidate_priority('locktest', 'c', 40)$q$,
    $q$pgfailover.start_maintenance('locktest', 'c')$q$,
    $q$pgfailover.stop_maintenance('locktest', 'c')$q$,
    $q$pgfailover.perform_switchover('locktest', 0)$q$,
    $q$pgfailover.register_node('locktest', 'd', 'd.locktest', 5432, NULL, 50, true)$q$,
    $q$pgfailover.drop_node('locktest', 'd', true)$q$,
    $q$pgfailover.drop_node('locktest', 'c', false)$q$]
  LOOP
    PERFORM pgfailover_test.decider_begin();
    PERFORM pgfailover_test.operator_send(call);
    PERFORM pgfailover_test.decider_decide_and_commit(call);
  END LOOP;
END
$t$;

-- The formation row lock of an operator transaction still open must not hold
-- up the decider's event inserts (their foreign key check locks that row).
SELECT dblink_exec('operator', 'BEGIN') \g /dev/null
SELECT * FROM dblink('operator',
  $q$SELECT pgfailover.set_formation_number_sync_standbys('locktest', 1)::text$q$) AS t(r text) \g /dev/null
DO $t$
BEGIN
  PERFORM pgfailover_test.decider_begin();
  PERFORM dblink_exec('decider',
    $q$INSERT INTO pgfailover.event (formation, group_id, rule, reason) VALUES ('locktest', 0, 'test-decision', 'x')$q$);
  PERFORM dblink_exec('decider', 'COMMIT');
EXCEPTION WHEN OTHERS THEN
  PERFORM pgfailover_test.fail('decider blocked by an operator''s formation lock: ' || SQLERRM);
END
$t$;
SELECT dblink_exec('operator', 'COMMIT') \g /dev/null

SELECT dblink_disconnect(c) FROM unnest(ARRAY['decider', 'operator']) AS c \g /dev/null
DELETE FROM pgfailover.node WHERE formation = 'locktest';
DELETE FROM pgfailover.node_group WHERE formation = 'locktest';
DELETE FROM pgfailover.event WHERE formation = 'locktest';
DELETE FROM pgfailover.formation WHERE name = 'locktest';
DROP SCHEMA pgfailover_test CASCADE;
\echo concurrency_test: all tests passed
