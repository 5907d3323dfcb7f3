-- Tests of the monitor's schema and SQL API (docs/monitor-api.md).
--
--   psql -v ON_ERROR_STOP=1 -d pgfailover -f sql/test/api_test.sql
--
-- Needs a superuser session on a database where sql/NNN_*.sql are applied
-- and the monitor settings still have their defaults. Everything runs in one
-- transaction that is rolled back, so the database is left as it was found.
-- The API is called as pgfailover_node, the role keepers and the CLI use.
-- Any wrong outcome raises 'TEST FAILED: ...' and stops psql with a non-zero
-- exit status. Notifications are tested in notify_test.sql (they are only
-- delivered after a commit).

\set ON_ERROR_STOP 1
\set QUIET 1
BEGIN;
\ir helpers.sql

\echo schema: tables, constraints, indexes, functions, roles
DO $t$
DECLARE
  node_columns text[] := ARRAY[
    'id', 'formation', 'group_id', 'name', 'host', 'port', 'system_identifier',
    'candidate_priority', 'replication_quorum', 'goal_state', 'assigned_sync_num',
    'assigned_sync_standbys', 'assigned_upstream', 'target_lsn', 'may_write', 'goal_changed_at',
    'reported_state', 'last_report_at', 'pg_running', 'pg_down_since', 'lsn', 'timeline',
    'reported_upstream', 'streaming', 'last_streaming_at', 'reported_sync_num',
    'reported_sync_standbys', 'peers_ready', 'replication', 'state_changed_at', 'health',
    'health_since', 'last_health_check_at', 'health_failures', 'maintenance_requested',
    'drop_requested', 'registered_at'];
  api text[] := ARRAY[
    'register_node', 'node_active', 'create_formation', 'drop_node', 'perform_switchover',
    'perform_failover', 'perform_promotion', 'start_maintenance', 'stop_maintenance',
    'set_formation_number_sync_standbys', 'set_node_candidate_priority',
    'set_node_replication_quorum', 'get_formation_settings', 'get_node_settings',
    'current_state', 'last_events', 'formation_uri', 'get_monitor_settings', 'set_monitor_setting'];
  f record;
  t record;
BEGIN
  -- Later migrations may add columns and settings; these must be there.
  PERFORM pgfailover_test.eq(pgfailover_test.missing_columns('schema_migration', '{version,name,applied_at}'),
    '{}'::text[], 'schema_migration columns missing');
  PERFORM pgfailover_test.eq(
    (SELECT dbname || '/' || number_sync_standbys FROM pgfailover.formation WHERE name = 'default'),
    'postgres/1', 'formation default');
  PERFORM pgfailover_test.eq(
    (SELECT string_agg(name || '=' || value, ',' ORDER BY name) FROM pgfailover.monitor_setting
     WHERE name IN ('catchup_lag_bytes', 'decide_tick_ms', 'health_check_period_ms', 'health_check_retries',
                    'health_check_timeout_ms', 'keeper_poll_ms', 'network_partition_timeout_ms',
                    'node_lost_timeout_ms', 'postgres_restart_timeout_ms', 'standby_stream_timeout_ms',
                    'startup_grace_ms')),
    'catchup_lag_bytes=16777216,decide_tick_ms=500,health_check_period_ms=1000,'
    'health_check_retries=2,health_check_timeout_ms=1000,keeper_poll_ms=1000,'
    'network_partition_timeout_ms=10000,node_lost_timeout_ms=2500,postgres_restart_timeout_ms=6000,'
    'standby_stream_timeout_ms=4000,startup_grace_ms=3000',
    'monitor settings and their defaults');
  -- Every field of NodeSnapshot and GroupSnapshot has a column.
  PERFORM pgfailover_test.eq(pgfailover_test.missing_columns('node', node_columns), '{}'::text[], 'node columns missing');
  PERFORM pgfailover_test.eq(pgfailover_test.missing_columns('node_group',
    '{formation,group_id,switchover_target,switchover_requested_at}'), '{}'::text[], 'node_group columns missing');
  PERFORM pgfailover_test.eq(pgfailover_test.missing_columns('formation', '{name,dbname,number_sync_standbys,created_at}'),
    '{}'::text[], 'formation columns missing');
  PERFORM pgfailover_test.eq(pgfailover_test.missing_columns('event',
    '{id,at,formation,group_id,node_id,node_name,from_state,to_state,rule,reason}'), '{}'::text[], 'event columns missing');
  PERFORM pgfailover_test.eq(pgfailover_test.missing_columns('monitor_setting', '{name,value,description}'),
    '{}'::text[], 'monitor_setting columns missing');

  -- CHECK constraints refuse what the API would never write.
  INSERT INTO pgfailover.node_group (formation, group_id) VALUES ('default', 99);
  PERFORM pgfailover_test.expect_error(format($q$INSERT INTO pgfailover.node (formation, group_id, name, host, port, %s)
                                               VALUES ('default', 99, 'x', 'x.test', 5432, %s)$q$, c.col, c.val),
                                       '23514', '%violates check constraint%')
  FROM (VALUES ('goal_state', '''bogus'''), ('reported_state', '''bogus'''), ('candidate_priority', '101'),
               ('candidate_priority', '-1'), ('health', '''meh'''), ('timeline', '-1'),
               ('replication', '''{}''::jsonb')) AS c(col, val);
  PERFORM pgfailover_test.expect_error(format($q$INSERT INTO pgfailover.node (formation, group_id, name, host, port)
                                               VALUES ('default', 99, 'x', 'x.test', %s)$q$, p),
                                       '23514', '%violates check constraint%')
  FROM unnest(ARRAY[0, 65536]) AS p;
  PERFORM pgfailover_test.expect_error($q$INSERT INTO pgfailover.node_group (formation, group_id) VALUES ('default', -1)$q$,
                                       '23514', '%violates check constraint%');
  PERFORM pgfailover_test.expect_error($q$INSERT INTO pgfailover.event (formation, to_state, rule, reason) VALUES ('default', 'bogus', 'r', 'r')$q$,
                                       '23514', '%violates check constraint%');
  DELETE FROM pgfailover.node_group WHERE formation = 'default' AND group_id = 99;

  PERFORM pgfailover_test.ok(
    (SELECT indexdef LIKE '%(formation, group_id)' FROM pg_indexes
     WHERE schemaname = 'pgfailover' AND indexname = 'node_formation_group_idx'), 'index node (formation, group_id)');
  PERFORM pgfailover_test.ok(
    (SELECT indexdef LIKE '%(formation, id)' FROM pg_indexes
     WHERE schemaname = 'pgfailover' AND indexname = 'event_formation_id_idx'), 'index event (formation, id)');
  PERFORM pgfailover_test.ok(
    (SELECT indexdef LIKE 'CREATE UNIQUE INDEX%(lower(host), port)' FROM pg_indexes
     WHERE schemaname = 'pgfailover' AND indexname = 'node_host_port_key'), 'unique host:port');

  -- API functions: definer rights, pinned search_path, callable by keepers
  -- and by nobody else; helpers callable by nobody but the owner.
  PERFORM pgfailover_test.eq(
    ARRAY(SELECT unnest(api) EXCEPT SELECT proname::text FROM pg_proc WHERE pronamespace = 'pgfailover'::regnamespace),
    '{}'::text[], 'API functions missing');
  FOR f IN SELECT p.oid, p.proname::text AS name, p.prosecdef, p.proconfig, p.proacl
           FROM pg_proc p WHERE p.pronamespace = 'pgfailover'::regnamespace LOOP
    PERFORM pgfailover_test.ok(f.proacl IS NOT NULL
                               AND NOT EXISTS (SELECT 1 FROM aclexplode(f.proacl) a WHERE a.grantee = 0),
                               format('%s must not be executable by PUBLIC', f.name));
    PERFORM pgfailover_test.ok(NOT has_function_privilege('pgfailover_monitor', f.oid, 'EXECUTE'),
                               format('pgfailover_monitor must not execute %s', f.name));
    IF f.name = ANY (api) THEN
      PERFORM pgfailover_test.ok(f.prosecdef, format('%s must be SECURITY DEFINER', f.name));
      PERFORM pgfailover_test.eq(f.proconfig, '{"search_path=pgfailover, pg_catalog, pg_temp"}'::text[],
                                 format('%s search_path', f.name));
      PERFORM pgfailover_test.ok(has_function_privilege('pgfailover_node', f.oid, 'EXECUTE'),
                                 format('pgfailover_node must execute %s', f.name));
    ELSE
      PERFORM pgfailover_test.ok(NOT has_function_privilege('pgfailover_node', f.oid, 'EXECUTE'),
                                 format('pgfailover_node must not execute helper %s', f.name));
    END IF;
  END LOOP;

  PERFORM pgfailover_test.ok((SELECT rolcanlogin AND NOT rolsuper AND NOT rolcreaterole AND NOT rolcreatedb
                              FROM pg_roles WHERE rolname = r), format('role %s: login only', r))
  FROM unnest(ARRAY['pgfailover_node', 'pgfailover_monitor']) AS r;
  PERFORM pgfailover_test.ok((SELECT rolpassword IS NULL FROM pg_authid WHERE rolname = r),
                             format('no password set for %s by the migrations', r))
  FROM unnest(ARRAY['pgfailover_node', 'pgfailover_monitor']) AS r;
  PERFORM pgfailover_test.ok(has_schema_privilege('pgfailover_node', 'pgfailover', 'USAGE'), 'pgfailover_node USAGE');
  PERFORM pgfailover_test.ok(NOT has_schema_privilege('pgfailover_node', 'pgfailover', 'CREATE'), 'pgfailover_node no CREATE');
  PERFORM pgfailover_test.ok(NOT has_schema_privilege('pgfailover_monitor', 'pgfailover', 'USAGE'), 'pgfailover_monitor no USAGE');
  FOR t IN SELECT c.oid, c.relname, c.relkind FROM pg_class c
           WHERE c.relnamespace = 'pgfailover'::regnamespace AND c.relkind IN ('r', 'S') LOOP
    IF t.relkind = 'r' THEN
      PERFORM pgfailover_test.ok(NOT has_table_privilege(r, t.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER'),
                                 format('%s must have no privilege on table %s', r, t.relname))
      FROM unnest(ARRAY['pgfailover_node', 'pgfailover_monitor']) AS r;
    ELSE
      PERFORM pgfailover_test.ok(NOT has_sequence_privilege(r, t.oid, 'USAGE, SELECT, UPDATE'),
                                 format('%s must have no privilege on sequence %s', r, t.relname))
      FROM unnest(ARRAY['pgfailover_node', 'pgfailover_monitor']) AS r;
    END IF;
  END LOOP;
END
$t$;

SET ROLE pgfailover_node;

\echo create_formation, get_formation_settings
DO $t$
DECLARE
  r record;
BEGIN
  SELECT * INTO r FROM pgfailover.create_formation('apitest', 'keycloak', 1);
  PERFORM pgfailover_test.eq(r::text, '(apitest,keycloak,1)', 'create_formation result');
  SELECT * INTO r FROM pgfailover.get_formation_settings('apitest');
  PERFORM pgfailover_test.eq(r::text, '(apitest,keycloak,1)', 'get_formation_settings apitest');
  SELECT * INTO r FROM pgfailover.get_formation_settings('default');
  PERFORM pgfailover_test.eq(r::text, '(default,postgres,1)', 'get_formation_settings default');
  SELECT * INTO r FROM pgfailover.create_formation('grouped');
  PERFORM pgfailover_test.eq(r::text, '(grouped,postgres,1)', 'create_formation defaults');

  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.create_formation('apitest', 'x', 1)$q$,
    '23505', 'formation "apitest" already exists');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.create_formation('bad name', 'x', 1)$q$,
    '22023', 'formation name "bad name" is invalid: use 1 to 63 letters, digits, "_", "." or "-", starting with a letter or digit');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.create_formation(NULL, 'x', 1)$q$,
    '22023', 'formation name must not be null');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.create_formation('f2', '', 1)$q$,
    '22023', 'dbname "" is invalid: use 1 to 63 bytes');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.create_formation('f2', NULL, 1)$q$,
    '22023', 'dbname must not be null');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.create_formation('f2', 'x', -1)$q$,
    '22023', 'number_sync_standbys -1 is out of range: must be 0 or more');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.get_formation_settings('nope')$q$,
    'P0002', 'formation "nope" does not exist');
END
$t$;

\echo register_node
DO $t$
DECLARE
  r record;
  id1 bigint;
  id3 bigint;
BEGIN
  SELECT * INTO r FROM pgfailover.register_node('apitest', 'idp001', 'idp001.test', 5432, NULL, 50, true);
  PERFORM pgfailover_test.eq(r.name, 'idp001', 'register name');
  PERFORM pgfailover_test.eq(r.group_id, 0, 'register default group');
  PERFORM pgfailover_test.eq(r.goal_state, 'init', 'register goal');
  id1 := r.node_id;
  -- A keeper that crashed before saving its id registers again: same node.
  SELECT * INTO r FROM pgfailover.register_node('apitest', 'idp001', 'idp001.test', 5432, NULL, 50, true);
  PERFORM pgfailover_test.eq(r.node_id, id1, 'register again before any report');

  SELECT * INTO r FROM pgfailover.register_node('apitest', 'idp002', 'idp002.test', 5432, NULL, 50, true, 0);
  PERFORM pgfailover_test.ok(r.node_id > id1, 'ids increase');

  SELECT * INTO r FROM pgfailover.register_node('apitest', NULL, 'n3.test', 5432, NULL, 0, false);
  id3 := r.node_id;
  PERFORM pgfailover_test.eq(r.name, 'node_' || id3, 'unnamed node gets node_<id>');
  SELECT * INTO r FROM pgfailover.register_node('apitest', NULL, 'n3.test', 5432, NULL, 0, false);
  PERFORM pgfailover_test.eq(r.node_id, id3, 'unnamed node registers again');

  PERFORM pgfailover_test.eq(pgfailover_test.owner_value(
    $q$SELECT count(*) FROM pgfailover.event WHERE formation = 'apitest' AND rule = 'register'$q$),
    '3', 'one register event per new node');
  PERFORM pgfailover_test.eq(pgfailover_test.owner_value(
    $q$SELECT string_agg(name || ':' || candidate_priority || ':' || replication_quorum || ':' || goal_state, ',' ORDER BY id)
       FROM pgfailover.node WHERE formation = 'apitest'$q$),
    format('idp001:50:true:init,idp002:50:true:init,node_%s:0:false:init', id3), 'registered rows');

  -- Groups are created on first use.
  PERFORM pgfailover.register_node('grouped', 'g0', 'g0.test', 5432, NULL, 50, true, 0);
  PERFORM pgfailover.register_node('grouped', 'g1', 'g1.test', 5432, NULL, 50, true, 1);
  PERFORM pgfailover_test.eq(pgfailover_test.owner_value(
    $q$SELECT string_agg(group_id::text, ',' ORDER BY group_id) FROM pgfailover.node_group WHERE formation = 'grouped'$q$),
    '0,1', 'node_group rows');

  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.register_node('apitest', 'idp001', 'other.test', 5432, NULL, 50, true)$q$,
    '23505', 'node name "idp001" is already used in formation "apitest"');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.register_node('apitest', 'idp009', 'idp001.test', 5432, NULL, 50, true)$q$,
    '23505', 'host:port idp001.test:5432 is already used by node "idp001"');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.register_node('apitest', 'idp009', 'IDP001.test', 5432, NULL, 50, true)$q$,
    '23505', 'host:port IDP001.test:5432 is already used by node "idp001"');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.register_node('default', 'idp009', 'idp001.test', 5432, NULL, 50, true)$q$,
    '23505', 'host:port idp001.test:5432 is already used by node "idp001" in formation "apitest"');
  -- Same name and address, but in another group: another node, not a retry.
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.register_node('apitest', 'idp001', 'idp001.test', 5432, NULL, 50, true, 1)$q$,
    '23505', 'node name "idp001" is already used in formation "apitest"');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.register_node('apitest', 'idp009', 'idp009.test', 5432, NULL, 101, true)$q$,
    '22023', 'candidate priority 101 is out of range 0..100');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.register_node('apitest', 'idp009', 'idp009.test', 5432, NULL, -1, true)$q$,
    '22023', 'candidate priority -1 is out of range 0..100');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.register_node('apitest', 'idp009', 'idp009.test', 5432, NULL, NULL, true)$q$,
    '22023', 'candidate priority must not be null');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.register_node('apitest', 'idp009', 'idp009.test', 0, NULL, 50, true)$q$,
    '22023', 'port 0 is out of range 1..65535');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.register_node('apitest', 'idp009', 'idp009.test', 65536, NULL, 50, true)$q$,
    '22023', 'port 65536 is out of range 1..65535');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.register_node('apitest', 'idp009', 'idp009.test', NULL, NULL, 50, true)$q$,
    '22023', 'port must not be null');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.register_node('nope', 'idp009', 'idp009.test', 5432, NULL, 50, true)$q$,
    'P0002', 'formation "nope" does not exist');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.register_node('apitest', 'idp 9', 'idp009.test', 5432, NULL, 50, true)$q$,
    '22023', 'node name "idp 9" is invalid: %');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.register_node('apitest', 'idp009', 'a/b', 5432, NULL, 50, true)$q$,
    '22023', 'host "a/b" is invalid: use a host name or an IP address');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.register_node('apitest', 'idp009', NULL, 5432, NULL, 50, true)$q$,
    '22023', 'host must not be null');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.register_node('apitest', 'idp009', 'idp009.test', 5432, NULL, 50, true, -1)$q$,
    '22023', 'group id -1 is out of range: must be 0 or more');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.register_node('apitest', 'idp009', 'idp009.test', 5432, NULL, 50, NULL)$q$,
    '22023', 'replication quorum must not be null');
END
$t$;

\echo node_active
DO $t$
DECLARE
  r record;
  n pgfailover.node;
  id1 bigint := pgfailover_test.nid('apitest', 'idp001');
  id2 bigint := pgfailover_test.nid('apitest', 'idp002');
  id3 bigint := (SELECT node_id FROM pgfailover.current_state('apitest') WHERE name LIKE 'node\_%');
BEGIN
  SELECT * INTO r FROM pgfailover.node_active(id1, 'init', false, NULL, NULL, NULL, false, 0, NULL, NULL, NULL, NULL);
  PERFORM pgfailover_test.eq(r.goal_state, 'init', 'goal after registration');
  PERFORM pgfailover_test.eq(r.upstream_id, NULL::bigint, 'no upstream yet');
  PERFORM pgfailover_test.eq(r.dbname, 'keycloak', 'dbname');
  PERFORM pgfailover_test.eq(r.peers, jsonb_build_array(
      jsonb_build_object('id', id2, 'name', 'idp002', 'host', 'idp002.test', 'port', 5432),
      jsonb_build_object('id', id3, 'name', 'node_' || id3, 'host', 'n3.test', 'port', 5432)), 'peers');
  PERFORM pgfailover_test.eq(r.settings->'keeper_poll_ms', '1000'::jsonb, 'settings keeper_poll_ms');
  PERFORM pgfailover_test.eq(r.settings->'network_partition_timeout_ms', '10000'::jsonb, 'settings network_partition_timeout_ms');
  n := pgfailover_test.node_row('apitest', 'idp001');
  PERFORM pgfailover_test.eq(n.reported_state, 'init', 'reported_state recorded');
  PERFORM pgfailover_test.eq(n.last_report_at, now(), 'last_report_at');
  PERFORM pgfailover_test.eq(n.pg_down_since, now(), 'pg_down_since set when Postgres is down');
  PERFORM pgfailover_test.eq(n.state_changed_at, now(), 'state_changed_at on first report');
  PERFORM pgfailover_test.eq(n.lsn, '0/0'::pg_lsn, 'unknown lsn stays 0/0');
  -- Reports commit without waiting for the WAL flush (see node_active).
  PERFORM pgfailover_test.eq(current_setting('synchronous_commit'), 'off', 'node_active commits asynchronously');

  -- The decider makes idp001 primary, synchronous with idp002, which follows it.
  PERFORM pgfailover_test.assign('apitest', 'idp001', 'primary', NULL, 1, ARRAY['idp002']);
  PERFORM pgfailover_test.assign('apitest', 'idp002', 'secondary', 'idp001');

  SELECT * INTO r FROM pgfailover.node_active(id1, 'primary', true, 1, '0/5000000', NULL, false, 1,
    ARRAY[id2, id2], ARRAY[id3, id2, NULL],
    jsonb_build_array(jsonb_build_object('application_name', 'pgfailover_node_' || id2, 'state', 'streaming',
                                         'sync_state', 'quorum', 'flush_lsn', '0/4000000', 'replay_lag', 0.25)),
    7000001);
  PERFORM pgfailover_test.eq(r.goal_state, 'primary', 'primary goal');
  PERFORM pgfailover_test.eq(r.sync_num, 1, 'assigned sync_num');
  PERFORM pgfailover_test.eq(r.sync_standbys, ARRAY[id2], 'assigned sync_standbys');
  PERFORM pgfailover_test.eq(r.upstream_id, NULL::bigint, 'primary has no upstream');
  n := pgfailover_test.node_row('apitest', 'idp001');
  PERFORM pgfailover_test.eq(n.reported_sync_num, 1, 'reported_sync_num');
  PERFORM pgfailover_test.eq(n.reported_sync_standbys, ARRAY[id2], 'reported_sync_standbys as a set');
  PERFORM pgfailover_test.eq(n.peers_ready, ARRAY[id2, id3], 'peers_ready as a sorted set');
  PERFORM pgfailover_test.eq(n.pg_down_since, NULL::timestamptz, 'pg_down_since cleared when running');
  PERFORM pgfailover_test.eq(n.lsn, '0/5000000'::pg_lsn, 'lsn');
  PERFORM pgfailover_test.eq(n.timeline, 1, 'timeline');
  PERFORM pgfailover_test.eq(n.system_identifier, 7000001::bigint, 'system_identifier recorded');
  PERFORM pgfailover_test.eq(n.last_streaming_at, NULL::timestamptz, 'never streamed');
  PERFORM pgfailover_test.eq(n.replication->0->>'sync_state', 'quorum', 'replication recorded');

  SELECT * INTO r FROM pgfailover.node_active(id2, 'secondary', true, 1, '0/4000000', id1, true, 0, NULL, NULL, NULL, 7000001);
  PERFORM pgfailover_test.eq(r.goal_state, 'secondary', 'secondary goal');
  PERFORM pgfailover_test.eq(r.upstream_id, id1, 'upstream id');
  PERFORM pgfailover_test.eq(r.upstream_name, 'idp001', 'upstream name');
  PERFORM pgfailover_test.eq(r.upstream_host, 'idp001.test', 'upstream host');
  PERFORM pgfailover_test.eq(r.upstream_port, 5432, 'upstream port');
  PERFORM pgfailover_test.eq(r.sync_num, 0, 'standby sync_num');
  PERFORM pgfailover_test.eq(r.sync_standbys, '{}'::bigint[], 'standby sync_standbys');
  n := pgfailover_test.node_row('apitest', 'idp002');
  PERFORM pgfailover_test.eq(n.last_streaming_at, now(), 'last_streaming_at when streaming');
  PERFORM pgfailover_test.eq(n.reported_upstream, id1, 'reported_upstream');

  -- Facts that must survive reports which do not change them.
  PERFORM pgfailover_test.as_owner(format(
    $q$UPDATE pgfailover.node SET pg_running = false, pg_down_since = '2000-01-01', last_streaming_at = '2000-01-01',
                                  state_changed_at = '2000-01-01' WHERE id = %s$q$, id2));
  PERFORM pgfailover.node_active(id2, 'secondary', false, NULL, NULL, id1, false, 0, NULL, NULL, NULL, NULL);
  n := pgfailover_test.node_row('apitest', 'idp002');
  PERFORM pgfailover_test.eq(n.pg_down_since, '2000-01-01'::timestamptz, 'pg_down_since kept while still down');
  PERFORM pgfailover_test.eq(n.last_streaming_at, '2000-01-01'::timestamptz, 'last_streaming_at kept when not streaming');
  PERFORM pgfailover_test.eq(n.state_changed_at, '2000-01-01'::timestamptz, 'state_changed_at kept for the same state');
  PERFORM pgfailover_test.eq(n.lsn, '0/4000000'::pg_lsn, 'unknown lsn keeps the last known');
  PERFORM pgfailover_test.eq(n.timeline, 1, 'unknown timeline keeps the last known');
  PERFORM pgfailover_test.eq(n.system_identifier, 7000001::bigint, 'unknown system identifier keeps the last known');
  PERFORM pgfailover.node_active(id2, 'catchingup', true, 1, '0/4000000', id1, true, 0, NULL, NULL, NULL, NULL);
  n := pgfailover_test.node_row('apitest', 'idp002');
  PERFORM pgfailover_test.eq(n.state_changed_at, now(), 'state_changed_at on a new state');
  PERFORM pgfailover_test.eq(n.pg_down_since, NULL::timestamptz, 'pg_down_since cleared');
  PERFORM pgfailover_test.eq(n.last_streaming_at, now(), 'last_streaming_at refreshed');

  -- A count without standbys is "off", as in SyncConfig::any.
  PERFORM pgfailover.node_active(id1, 'primary', true, 1, '0/5000000', NULL, false, 2, '{}', ARRAY[id2, id3],
    jsonb_build_array(jsonb_build_object('application_name', 'pgfailover_node_' || id2, 'replay_lag', 0.25)), 7000001);
  PERFORM pgfailover_test.eq((pgfailover_test.node_row('apitest', 'idp001')).reported_sync_num, 0, 'sync without standbys is off');

  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.node_active(999999999, 'init', false, NULL, NULL, NULL, false, 0, NULL, NULL, NULL, NULL)$q$,
    'P0002', 'node 999999999 is not registered with this monitor (was it dropped?)');
  PERFORM pgfailover_test.expect_error(format($q$SELECT pgfailover.node_active(%s, 'bogus', false, NULL, NULL, NULL, false, 0, NULL, NULL, NULL, NULL)$q$, id1),
    '22023', 'reported state "bogus" is not a node state');
  PERFORM pgfailover_test.expect_error(format($q$SELECT pgfailover.node_active(%s, NULL, false, NULL, NULL, NULL, false, 0, NULL, NULL, NULL, NULL)$q$, id1),
    '22023', 'reported state "NULL" is not a node state');
  PERFORM pgfailover_test.expect_error(format($q$SELECT pgfailover.node_active(%s, 'primary', NULL, NULL, NULL, NULL, false, 0, NULL, NULL, NULL, NULL)$q$, id1),
    '22023', 'pg_running and streaming must not be null');
  PERFORM pgfailover_test.expect_error(format($q$SELECT pgfailover.node_active(%s, 'primary', true, -1, NULL, NULL, false, 0, NULL, NULL, NULL, NULL)$q$, id1),
    '22023', 'timeline -1 is out of range: must be 0 or more');
  PERFORM pgfailover_test.expect_error(format($q$SELECT pgfailover.node_active(%s, 'primary', true, 1, NULL, NULL, false, -1, NULL, NULL, NULL, NULL)$q$, id1),
    '22023', 'sync_num -1 is out of range: must be 0 or more');
  PERFORM pgfailover_test.expect_error(format($q$SELECT pgfailover.node_active(%s, 'primary', true, 1, NULL, NULL, false, 0, NULL, NULL, '{}', NULL)$q$, id1),
    '22023', 'replication must be a JSON array of pg_stat_replication rows, not a JSON object');
  -- A PGDATA from another cluster: refused, and its report not recorded.
  PERFORM pgfailover_test.expect_error(format($q$SELECT pgfailover.node_active(%s, 'single', true, 1, '0/9000000', NULL, false, 0, NULL, NULL, NULL, 42)$q$, id3),
    '55000', format('node "node_%s" reports system identifier 42 but node "idp001" of group 0 in formation "apitest" has 7000001', id3));
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.register_node('apitest', 'idp004', 'idp004.test', 5432, 42, 50, true)$q$,
    '55000', 'system identifier 42 differs from 7000001 of node "idp001" in group 0 of formation "apitest"');
  -- Once a node has reported, registering its name again is another keeper.
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.register_node('apitest', 'idp001', 'idp001.test', 5432, NULL, 50, true)$q$,
    '23505', 'node name "idp001" is already used in formation "apitest"');
END
$t$;

\echo current_state, last_events, formation_uri
DO $t$
DECLARE
  r record;
  id2 bigint := pgfailover_test.nid('apitest', 'idp002');
  id3 bigint := (SELECT node_id FROM pgfailover.current_state('apitest') WHERE name LIKE 'node\_%');
  libpq text := 'postgresql://idp001.test:5432,idp002.test:5432,n3.test:5432/keycloak?target_session_attrs=read-write&connect_timeout=2';
  jdbc text := 'jdbc:postgresql://idp001.test:5432,idp002.test:5432,n3.test:5432/keycloak?targetServerType=primary&hostRecheckSeconds=2&connectTimeout=2';
BEGIN
  PERFORM pgfailover_test.eq((SELECT string_agg(name, ',' ORDER BY node_id) FROM pgfailover.current_state('apitest')),
    format('idp001,idp002,node_%s', id3), 'current_state rows');
  SELECT * INTO r FROM pgfailover.current_state('apitest') WHERE name = 'idp001';
  PERFORM pgfailover_test.eq(r.lag_bytes, NULL::bigint, 'primary has no lag');
  PERFORM pgfailover_test.eq(r.lag_seconds, NULL::double precision, 'primary has no lag seconds');
  PERFORM pgfailover_test.eq(r.sync_standby_names, format('ANY 1 (pgfailover_node_%s)', id2), 'primary sync_standby_names');
  PERFORM pgfailover_test.eq(r.goal_state || '/' || r.reported_state || '/' || r.health || '/' || r.pg_running || '/' || r.lsn || '/' || r.timeline,
    'primary/primary/unknown/true/0/5000000/1', 'primary row');
  SELECT * INTO r FROM pgfailover.current_state('apitest') WHERE name = 'idp002';
  PERFORM pgfailover_test.eq(r.lag_bytes, 16777216::bigint, 'standby lag_bytes from the primary lsn');
  PERFORM pgfailover_test.eq(r.lag_seconds, 0.25::double precision, 'standby lag_seconds from the primary replay_lag');
  PERFORM pgfailover_test.eq(r.sync_standby_names, NULL::text, 'standby has no sync_standby_names');
  SELECT * INTO r FROM pgfailover.current_state('apitest') WHERE node_id = id3;
  PERFORM pgfailover_test.eq(r.lag_bytes, NULL::bigint, 'never reported: lag unknown');
  PERFORM pgfailover_test.eq(r.lag_seconds, NULL::double precision, 'not in replication: lag seconds unknown');
  PERFORM pgfailover_test.eq(r.candidate_priority || '/' || r.replication_quorum || '/' || r.maintenance_requested,
    '0/false/false', 'settings columns');
  PERFORM pgfailover_test.expect_error($q$SELECT * FROM pgfailover.current_state('nope')$q$,
    'P0002', 'formation "nope" does not exist');

  PERFORM pgfailover_test.as_owner($q$INSERT INTO pgfailover.event (formation, group_id, rule, reason)
                                      VALUES ('apitest', 0, 'test-a', 'a'), ('apitest', 0, 'test-b', 'b'),
                                             ('apitest', 0, 'test-c', 'c'), ('grouped', 0, 'test-other', 'x')$q$);
  PERFORM pgfailover_test.eq(ARRAY(SELECT rule FROM pgfailover.last_events('apitest', 2)),
    ARRAY['test-b', 'test-c'], 'last_events: newest, oldest first');
  PERFORM pgfailover_test.ok((SELECT bool_and(id > lag_id) FROM (
      SELECT id, lag(id, 1, 0::bigint) OVER () AS lag_id FROM pgfailover.last_events('apitest', 10)) x),
    'last_events ascending ids');
  PERFORM pgfailover_test.eq((SELECT count(*) FROM pgfailover.last_events('apitest')), 7::bigint,
    'last_events default count sees only its formation');
  PERFORM pgfailover_test.eq((SELECT count(*) FROM pgfailover.last_events('apitest', 0)), 0::bigint, 'last_events 0');
  PERFORM pgfailover_test.expect_error($q$SELECT * FROM pgfailover.last_events('apitest', -1)$q$,
    '22023', 'event count -1 is out of range: must be 0 or more');
  PERFORM pgfailover_test.expect_error($q$SELECT * FROM pgfailover.last_events('nope', 1)$q$,
    'P0002', 'formation "nope" does not exist');

  PERFORM pgfailover_test.eq(pgfailover.formation_uri('apitest', 'libpq', NULL), libpq, 'libpq uri');
  PERFORM pgfailover_test.eq(pgfailover.formation_uri('apitest'), libpq, 'libpq uri by default');
  PERFORM pgfailover_test.eq(pgfailover.formation_uri('apitest', 'libpq', 'require'), libpq || '&sslmode=require', 'libpq uri sslmode');
  PERFORM pgfailover_test.eq(pgfailover.formation_uri('apitest', 'jdbc', NULL), jdbc, 'jdbc uri');
  PERFORM pgfailover_test.eq(pgfailover.formation_uri('apitest', 'jdbc', ''), jdbc, 'jdbc uri, empty sslmode');
  PERFORM pgfailover_test.eq(pgfailover.formation_uri('apitest', 'jdbc', 'verify-full'), jdbc || '&ssl=true&sslmode=verify-full', 'jdbc uri ssl');
  PERFORM pgfailover_test.eq(pgfailover.formation_uri('apitest', 'jdbc', 'disable'), jdbc || '&sslmode=disable', 'jdbc uri ssl off');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.formation_uri('apitest', 'odbc', NULL)$q$,
    '22023', 'URI format "odbc" is not supported: use libpq or jdbc');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.formation_uri('apitest', 'libpq', 'sometimes')$q$,
    '22023', 'sslmode "sometimes" is not supported: use disable, allow, prefer, require, verify-ca or verify-full');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.formation_uri('nope', 'libpq', NULL)$q$,
    'P0002', 'formation "nope" does not exist');
  PERFORM pgfailover.create_formation('empty', 'postgres', 0);
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.formation_uri('empty', 'libpq', NULL)$q$,
    '55000', 'formation "empty" has no nodes');
  -- IPv6 hosts in brackets, database names percent-encoded.
  PERFORM pgfailover.create_formation('v6', 'key cloak/ü', 0);
  PERFORM pgfailover.register_node('v6', 'a', '::1', 5433, NULL, 50, true);
  PERFORM pgfailover.register_node('v6', 'b', 'fe80::2', 5432, NULL, 50, true);
  PERFORM pgfailover_test.eq(pgfailover.formation_uri('v6', 'libpq', NULL),
    'postgresql://[::1]:5433,[fe80::2]:5432/key%20cloak%2F%C3%BC?target_session_attrs=read-write&connect_timeout=2', 'ipv6 uri');
END
$t$;

\echo perform_switchover, perform_failover, perform_promotion
DO $t$
DECLARE
  g pgfailover.node_group;
  id2 bigint := pgfailover_test.nid('apitest', 'idp002');
  n3 text := (SELECT name FROM pgfailover.current_state('apitest') WHERE name LIKE 'node\_%');
BEGIN
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.perform_switchover('nope', 0)$q$,
    'P0002', 'formation "nope" does not exist');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.perform_switchover('apitest', 7)$q$,
    'P0002', 'group 7 does not exist in formation "apitest"');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.perform_failover('apitest', 7)$q$,
    'P0002', 'group 7 does not exist in formation "apitest"');

  -- The only secondary is unhealthy: no failed health check passes, no recent report.
  PERFORM pgfailover_test.assign('apitest', 'idp002', 'secondary', 'idp001');
  PERFORM pgfailover_test.set_health('apitest', 'idp002', 'bad', now() - interval '1 hour');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.perform_switchover('apitest', 0)$q$,
    '55000', 'group 0 in formation "apitest" has no healthy secondary with candidate priority above 0');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.perform_failover('apitest', 0)$q$,
    '55000', 'group 0 in formation "apitest" has no healthy secondary with candidate priority above 0');
  -- A passing health check makes it healthy, however old its last report.
  PERFORM pgfailover_test.set_health('apitest', 'idp002', 'good', now() - interval '1 hour');
  -- Priority 0 never counts.
  PERFORM pgfailover.set_node_candidate_priority('apitest', 'idp002', 0);
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.perform_switchover('apitest', 0)$q$,
    '55000', 'group 0 in formation "apitest" has no healthy secondary with candidate priority above 0');
  PERFORM pgfailover.set_node_candidate_priority('apitest', 'idp002', 50);
  -- No writable primary: nothing to switch over from.
  PERFORM pgfailover_test.assign('apitest', 'idp001', 'demoted');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.perform_switchover('apitest', 0)$q$,
    '55000', 'group 0 in formation "apitest" has no primary');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.perform_promotion('apitest', 'idp002')$q$,
    '55000', 'group 0 in formation "apitest" has no primary');
  PERFORM pgfailover_test.assign('apitest', 'idp001', 'primary', NULL, 1, ARRAY['idp002']);

  PERFORM pgfailover.perform_switchover('apitest', 0);
  g := pgfailover_test.group_row('apitest', 0);
  PERFORM pgfailover_test.eq(g.switchover_requested_at, now(), 'switchover requested');
  PERFORM pgfailover_test.eq(g.switchover_target, NULL::bigint, 'switchover has no target');
  PERFORM pgfailover_test.eq((SELECT rule FROM pgfailover.last_events('apitest', 1)), 'switchover-requested', 'switchover event');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.perform_switchover('apitest', 0)$q$,
    '55000', 'a switchover is already pending for group 0 in formation "apitest" (requested at %)');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.perform_failover('apitest', 0)$q$,
    '55000', 'a switchover is already pending for group 0 in formation "apitest" (requested at %)');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.perform_promotion('apitest', 'idp002')$q$,
    '55000', 'a switchover is already pending for group 0 in formation "apitest" (requested at %)');
  -- The decider settles it.
  PERFORM pgfailover_test.as_owner($q$UPDATE pgfailover.node_group SET switchover_requested_at = NULL WHERE formation = 'apitest'$q$);

  PERFORM pgfailover.perform_failover('apitest');
  PERFORM pgfailover_test.eq((pgfailover_test.group_row('apitest', 0)).switchover_requested_at, now(), 'failover requested');
  PERFORM pgfailover_test.eq((SELECT rule FROM pgfailover.last_events('apitest', 1)), 'failover-requested', 'failover event');
  PERFORM pgfailover_test.as_owner($q$UPDATE pgfailover.node_group SET switchover_requested_at = NULL WHERE formation = 'apitest'$q$);

  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.perform_promotion('apitest', 'idp009')$q$,
    'P0002', 'node "idp009" is not registered in formation "apitest"');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.perform_promotion('nope', 'idp002')$q$,
    'P0002', 'formation "nope" does not exist');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.perform_promotion('apitest', 'idp001')$q$,
    '55000', 'node "idp001" is already the primary of group 0 in formation "apitest"');
  PERFORM pgfailover_test.expect_error(format($q$SELECT pgfailover.perform_promotion('apitest', %L)$q$, n3),
    '55000', format('node "%s" has candidate priority 0 and is never promoted', n3));
  PERFORM pgfailover_test.assign('apitest', 'idp002', 'catchingup', 'idp001');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.perform_promotion('apitest', 'idp002')$q$,
    '55000', 'node "idp002" is not a secondary (its goal state is catchingup)');
  PERFORM pgfailover_test.assign('apitest', 'idp002', 'secondary', 'idp001');
  PERFORM pgfailover_test.set_health('apitest', 'idp002', 'bad', now() - interval '1 hour');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.perform_promotion('apitest', 'idp002')$q$,
    '55000', 'node "idp002" is not healthy (health bad, last report %)');
  PERFORM pgfailover_test.set_health('apitest', 'idp002', 'unknown', now());
  PERFORM pgfailover_test.as_owner(format($q$UPDATE pgfailover.node SET maintenance_requested = true WHERE id = %s$q$, id2));
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.perform_promotion('apitest', 'idp002')$q$,
    '55000', 'node "idp002" is going to maintenance');
  PERFORM pgfailover_test.as_owner(format($q$UPDATE pgfailover.node SET maintenance_requested = false WHERE id = %s$q$, id2));

  PERFORM pgfailover.perform_promotion('apitest', 'idp002');
  g := pgfailover_test.group_row('apitest', 0);
  PERFORM pgfailover_test.eq(g.switchover_target, id2, 'promotion target');
  PERFORM pgfailover_test.eq(g.switchover_requested_at, now(), 'promotion requested');
  PERFORM pgfailover_test.eq((SELECT rule || ' ' || node_name FROM pgfailover.last_events('apitest', 1)),
    'promotion-requested idp002', 'promotion event');
END
$t$;

\echo start_maintenance, stop_maintenance
DO $t$
DECLARE
  id1 bigint := pgfailover_test.nid('apitest', 'idp001');
BEGIN
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.start_maintenance('apitest', 'idp009')$q$,
    'P0002', 'node "idp009" is not registered in formation "apitest"');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.stop_maintenance('apitest', 'idp009')$q$,
    'P0002', 'node "idp009" is not registered in formation "apitest"');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.start_maintenance('nope', 'idp001')$q$,
    'P0002', 'formation "nope" does not exist');

  -- The primary cannot go while no secondary could take over.
  PERFORM pgfailover.set_node_candidate_priority('apitest', 'idp002', 0);
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.start_maintenance('apitest', 'idp001')$q$,
    '55000', 'node "idp001" is the primary of group 0 in formation "apitest" and no healthy secondary with candidate priority above 0 can take over');
  PERFORM pgfailover.set_node_candidate_priority('apitest', 'idp002', 50);

  -- idp002 is the only healthy node once idp001 stops answering (the third
  -- never reported).
  PERFORM pgfailover_test.set_health('apitest', 'idp001', 'bad', now() - interval '1 hour');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.start_maintenance('apitest', 'idp002')$q$,
    '55000', 'node "idp002" is the last healthy node of group 0 in formation "apitest"');
  PERFORM pgfailover_test.set_health('apitest', 'idp001', 'good', now());

  PERFORM pgfailover.start_maintenance('apitest', 'idp002');
  PERFORM pgfailover_test.ok((pgfailover_test.node_row('apitest', 'idp002')).maintenance_requested, 'maintenance requested');
  PERFORM pgfailover_test.eq((SELECT rule FROM pgfailover.last_events('apitest', 1)), 'maintenance-requested', 'maintenance event');
  PERFORM pgfailover_test.eq((SELECT maintenance_requested FROM pgfailover.current_state('apitest') WHERE name = 'idp002'), true,
    'current_state shows maintenance');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.start_maintenance('apitest', 'idp002')$q$,
    '55000', 'maintenance is already requested for node "idp002"');
  -- With idp002 going to maintenance, idp001 is the last one serving.
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.start_maintenance('apitest', 'idp001')$q$,
    '55000', 'node "idp001" is the last healthy node of group 0 in formation "apitest"');

  PERFORM pgfailover.stop_maintenance('apitest', 'idp002');
  PERFORM pgfailover_test.ok(NOT (pgfailover_test.node_row('apitest', 'idp002')).maintenance_requested, 'maintenance cleared');
  PERFORM pgfailover_test.eq((SELECT rule FROM pgfailover.last_events('apitest', 1)), 'maintenance-cleared', 'maintenance cleared event');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.stop_maintenance('apitest', 'idp002')$q$,
    '55000', 'maintenance is not requested for node "idp002"');

  -- The primary may go when a secondary can take over.
  PERFORM pgfailover.start_maintenance('apitest', 'idp001');
  PERFORM pgfailover_test.ok((pgfailover_test.node_row('apitest', 'idp001')).maintenance_requested, 'primary maintenance requested');
  PERFORM pgfailover.stop_maintenance('apitest', 'idp001');
END
$t$;

\echo formation and node settings
DO $t$
DECLARE
  r record;
BEGIN
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.set_formation_number_sync_standbys('apitest', -1)$q$,
    '22023', 'number_sync_standbys -1 is out of range: must be 0 or more');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.set_formation_number_sync_standbys('apitest', NULL)$q$,
    '22023', 'number_sync_standbys must not be null');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.set_formation_number_sync_standbys('apitest', 2)$q$,
    '55000', 'number_sync_standbys 2 needs at least 3 nodes with replication quorum in group 0 of formation "apitest", it has 2');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.set_formation_number_sync_standbys('grouped', 1)$q$,
    '55000', 'number_sync_standbys 1 needs at least 2 nodes with replication quorum in group 0 of formation "grouped", it has 1');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.set_formation_number_sync_standbys('nope', 1)$q$,
    'P0002', 'formation "nope" does not exist');
  SELECT * INTO r FROM pgfailover.set_formation_number_sync_standbys('apitest', 1);
  PERFORM pgfailover_test.eq(r::text, '(apitest,keycloak,1)', 'unchanged number_sync_standbys');

  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.set_node_replication_quorum('apitest', 'idp002', false)$q$,
    '55000', 'node "idp002" is needed for replication quorum: group 0 of formation "apitest" would have 1 nodes with replication quorum, and number_sync_standbys 1 needs 2');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.set_node_replication_quorum('apitest', 'idp002', NULL)$q$,
    '22023', 'replication quorum must not be null');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.set_node_replication_quorum('apitest', 'idp009', true)$q$,
    'P0002', 'node "idp009" is not registered in formation "apitest"');

  SELECT * INTO r FROM pgfailover.set_formation_number_sync_standbys('apitest', 0);
  PERFORM pgfailover_test.eq(r::text, '(apitest,keycloak,0)', 'number_sync_standbys set');
  PERFORM pgfailover_test.eq((SELECT rule FROM pgfailover.last_events('apitest', 1)), 'set-number-sync-standbys', 'number_sync_standbys event');
  SELECT * INTO r FROM pgfailover.set_node_replication_quorum('apitest', 'idp002', false);
  PERFORM pgfailover_test.eq(r::text, '(idp002,50,f)', 'replication quorum set');
  SELECT * INTO r FROM pgfailover.get_node_settings('apitest', 'idp002');
  PERFORM pgfailover_test.eq(r::text, '(idp002,50,f)', 'get_node_settings');
  PERFORM pgfailover.set_node_replication_quorum('apitest', 'idp002', true);
  PERFORM pgfailover.set_formation_number_sync_standbys('apitest', 1);

  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.set_node_candidate_priority('apitest', 'idp002', 101)$q$,
    '22023', 'candidate priority 101 is out of range 0..100');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.set_node_candidate_priority('apitest', 'idp009', 10)$q$,
    'P0002', 'node "idp009" is not registered in formation "apitest"');
  SELECT * INTO r FROM pgfailover.set_node_candidate_priority('apitest', 'idp002', 70);
  PERFORM pgfailover_test.eq(r::text, '(idp002,70,t)', 'candidate priority set');
  PERFORM pgfailover_test.eq((SELECT rule FROM pgfailover.last_events('apitest', 1)), 'set-candidate-priority', 'priority event');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.get_node_settings('apitest', 'idp009')$q$,
    'P0002', 'node "idp009" is not registered in formation "apitest"');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.get_node_settings('nope', 'idp002')$q$,
    'P0002', 'formation "nope" does not exist');
END
$t$;

\echo monitor settings
DO $t$
DECLARE
  r record;
  id1 bigint := pgfailover_test.nid('apitest', 'idp001');
BEGIN
  PERFORM pgfailover_test.eq((SELECT count(*) FROM pgfailover.get_monitor_settings()),
    pgfailover_test.owner_value('SELECT count(*) FROM pgfailover.monitor_setting')::bigint, 'get_monitor_settings rows');
  PERFORM pgfailover_test.eq((SELECT value FROM pgfailover.get_monitor_settings() WHERE name = 'decide_tick_ms'), '500', 'decide_tick_ms');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.set_monitor_setting('nope', '1')$q$,
    'P0002', 'monitor setting "nope" does not exist');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.set_monitor_setting('node_lost_timeout_ms', 'abc')$q$,
    '22023', 'value "abc" for monitor setting "node_lost_timeout_ms" is not an integer');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.set_monitor_setting('node_lost_timeout_ms', '2.5')$q$,
    '22023', 'value "2.5" for monitor setting "node_lost_timeout_ms" is not an integer');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.set_monitor_setting('node_lost_timeout_ms', NULL)$q$,
    '22023', 'value "NULL" for monitor setting "node_lost_timeout_ms" is not an integer');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.set_monitor_setting('node_lost_timeout_ms', '1')$q$,
    '22023', 'value 1 for monitor setting "node_lost_timeout_ms" is out of range 500..600000');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.set_monitor_setting('keeper_poll_ms', '3000')$q$,
    '22023', 'keeper_poll_ms (3000) must be less than node_lost_timeout_ms (2500)');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.set_monitor_setting('node_lost_timeout_ms', '900')$q$,
    '22023', 'keeper_poll_ms (1000) must be less than node_lost_timeout_ms (900)');

  SELECT * INTO r FROM pgfailover.set_monitor_setting('node_lost_timeout_ms', ' 3000 ');
  PERFORM pgfailover_test.eq(r.name || '=' || r.value, 'node_lost_timeout_ms=3000', 'set_monitor_setting result');
  PERFORM pgfailover_test.eq((SELECT value FROM pgfailover.get_monitor_settings() WHERE name = 'node_lost_timeout_ms'), '3000', 'setting stored');
  PERFORM pgfailover_test.eq((SELECT settings->'node_lost_timeout_ms' FROM pgfailover.node_active(id1, 'primary', true, 1, '0/5000000', NULL, false, 0, NULL, NULL, NULL, NULL)),
    '3000'::jsonb, 'keepers see the new value');
  PERFORM pgfailover_test.eq((SELECT reason FROM pgfailover.last_events('apitest', 1)),
    'node_lost_timeout_ms changed from 2500 to 3000', 'setting change logged');
  PERFORM pgfailover.set_monitor_setting('node_lost_timeout_ms', '2500');
END
$t$;

\echo drop_node
DO $t$
DECLARE
  id1 bigint := pgfailover_test.nid('apitest', 'idp001');
  id2 bigint := pgfailover_test.nid('apitest', 'idp002');
  n3 text := (SELECT name FROM pgfailover.current_state('apitest') WHERE name LIKE 'node\_%');
  g pgfailover.node_group;
BEGIN
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.drop_node('apitest', 'idp009', false)$q$,
    'P0002', 'node "idp009" is not registered in formation "apitest"');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.drop_node('apitest', 'idp009', true)$q$,
    'P0002', 'node "idp009" is not registered in formation "apitest"');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.drop_node('nope', 'idp001')$q$,
    'P0002', 'formation "nope" does not exist');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.drop_node('apitest', 'idp001', true)$q$,
    '55000', 'node "idp001" is the primary of group 0 in formation "apitest", which has other nodes');

  -- Without force: a request for the decider; asking twice is harmless.
  PERFORM pgfailover.drop_node('apitest', n3, false);
  PERFORM pgfailover_test.ok((pgfailover_test.node_row('apitest', n3)).drop_requested, 'drop requested');
  PERFORM pgfailover.drop_node('apitest', n3);
  PERFORM pgfailover_test.eq(pgfailover_test.owner_value(
    $q$SELECT count(*) FROM pgfailover.event WHERE formation = 'apitest' AND rule = 'drop-requested'$q$), '1', 'one drop event');

  -- By force: the row goes, with the promotion aimed at it (still pending from
  -- the promotion test) and the upstream assignments pointing to it.
  g := pgfailover_test.group_row('apitest', 0);
  PERFORM pgfailover_test.eq(g.switchover_target, id2, 'promotion of idp002 pending');
  PERFORM pgfailover_test.assign('apitest', n3, 'wait_standby', 'idp002');
  PERFORM pgfailover.drop_node('apitest', 'idp002', true);
  PERFORM pgfailover_test.eq(pgfailover_test.nid('apitest', 'idp002'), NULL::bigint, 'idp002 deleted');
  g := pgfailover_test.group_row('apitest', 0);
  PERFORM pgfailover_test.eq(g.switchover_target, NULL::bigint, 'promotion target cleared');
  PERFORM pgfailover_test.eq(g.switchover_requested_at, NULL::timestamptz, 'promotion request cleared');
  PERFORM pgfailover_test.eq((pgfailover_test.node_row('apitest', n3)).assigned_upstream, NULL::bigint, 'upstream cleared');
  PERFORM pgfailover_test.eq((SELECT rule || ' ' || node_name FROM pgfailover.last_events('apitest', 1)), 'drop-forced idp002', 'drop event');
  PERFORM pgfailover_test.expect_error(format($q$SELECT pgfailover.node_active(%s, 'secondary', true, 1, NULL, NULL, false, 0, NULL, NULL, NULL, NULL)$q$, id2),
    'P0002', format('node %s is not registered with this monitor (was it dropped?)', id2));

  PERFORM pgfailover.drop_node('apitest', n3, true);
  -- Alone in its group, the primary may go.
  PERFORM pgfailover.drop_node('apitest', 'idp001', true);
  PERFORM pgfailover_test.eq((SELECT count(*) FROM pgfailover.current_state('apitest')), 0::bigint, 'all nodes dropped');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.formation_uri('apitest', 'libpq', NULL)$q$,
    '55000', 'formation "apitest" has no nodes');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.perform_switchover('apitest', 0)$q$,
    '55000', 'group 0 in formation "apitest" has no primary');
END
$t$;

\echo permissions
DO $t$
BEGIN
  PERFORM pgfailover_test.eq(current_user::text, 'pgfailover_node', 'running as pgfailover_node');
  PERFORM pgfailover_test.expect_error('SELECT * FROM pgfailover.node', '42501', 'permission denied for table node');
  PERFORM pgfailover_test.expect_error('SELECT * FROM pgfailover.schema_migration', '42501', 'permission denied for table schema_migration');
  PERFORM pgfailover_test.expect_error('SELECT * FROM pgfailover.monitor_setting', '42501', 'permission denied for table monitor_setting');
  PERFORM pgfailover_test.expect_error($q$INSERT INTO pgfailover.formation (name, dbname) VALUES ('evil', 'x')$q$,
    '42501', 'permission denied for table formation');
  PERFORM pgfailover_test.expect_error($q$UPDATE pgfailover.node SET goal_state = 'primary'$q$,
    '42501', 'permission denied for table node');
  PERFORM pgfailover_test.expect_error('DELETE FROM pgfailover.event', '42501', 'permission denied for table event');
  PERFORM pgfailover_test.expect_error($q$SELECT nextval('pgfailover.node_id_seq')$q$,
    '42501', 'permission denied for sequence node_id_seq');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.log_event('default', 0, NULL, NULL, 'evil', 'evil')$q$,
    '42501', 'permission denied for function log_event');
  PERFORM pgfailover_test.expect_error($q$SELECT pgfailover.notify_decide('default', 0)$q$,
    '42501', 'permission denied for function notify_decide');
  PERFORM pgfailover_test.expect_error($q$CREATE TABLE pgfailover.evil (x int)$q$,
    '42501', 'permission denied for schema pgfailover');
  -- The API works for it.
  PERFORM pgfailover_test.eq((SELECT dbname FROM pgfailover.get_formation_settings('default')), 'postgres', 'API callable');
END
$t$;

-- A temporary table named like one of ours must not be read by the API in
-- place of the real one: the functions' search_path ends with pg_temp, which
-- otherwise is searched first.
CREATE TEMP TABLE node (id bigint, formation text, host text, port integer);
INSERT INTO pg_temp.node VALUES (1, 'v6', 'evil.test', 1);
DO $t$
BEGIN
  PERFORM pgfailover_test.eq(pgfailover.formation_uri('v6', 'libpq', NULL),
    'postgresql://[::1]:5433,[fe80::2]:5432/key%20cloak%2F%C3%BC?target_session_attrs=read-write&connect_timeout=2',
    'a temporary table does not shadow the real one');
END
$t$;
DROP TABLE pg_temp.node;

RESET ROLE;
SET ROLE pgfailover_monitor;
DO $t$
BEGIN
  PERFORM pgfailover_test.expect_error($q$SELECT * FROM pgfailover.current_state('default')$q$,
    '42501', 'permission denied for schema pgfailover');
END
$t$;
RESET ROLE;

ROLLBACK;
\echo api_test: all tests passed
