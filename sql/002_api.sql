-- The monitor's SQL API (docs/monitor-api.md) and the helpers behind it.
--
-- API functions are SECURITY DEFINER: keepers and the CLI connect as
-- pgfailover_node, which may call them but may not touch the tables. Their
-- search_path is pinned and ends with pg_temp, so a caller's temporary table
-- named like one of ours can never be picked up instead of the real one.
--
-- Parameters carry the names of the contract, which are also column names; in
-- SQL statements they are written as function_name.parameter so that no
-- reference is ambiguous (plpgsql's default is to refuse ambiguity).
--
-- Every API function validates before it writes and raises with one of four
-- SQLSTATEs: 22023 bad argument, 23505 name or address taken, P0002 unknown
-- thing, 55000 refused in the current state. An error aborts the statement,
-- so nothing is left half-done.

-- Result types. Composite types rather than RETURNS TABLE: OUT parameters would
-- share a namespace with the input parameters (both have a name, a group_id,
-- a sync_num), which plpgsql does not allow.
DO $$
BEGIN
  IF to_regtype('pgfailover.registered_node') IS NULL THEN
    CREATE TYPE pgfailover.registered_node AS (
      node_id    bigint,
      name       text,
      group_id   integer,
      goal_state text
    );
  END IF;
  IF to_regtype('pgfailover.node_assignment') IS NULL THEN
    CREATE TYPE pgfailover.node_assignment AS (
      goal_state    text,
      upstream_id   bigint,
      upstream_name text,
      upstream_host text,
      upstream_port integer,
      sync_num      integer,
      sync_standbys bigint[],
      target_lsn    pg_lsn,
      peers         jsonb,
      dbname        text,
      settings      jsonb,
      goal_version  bigint
    );
  END IF;
  IF to_regtype('pgfailover.formation_settings') IS NULL THEN
    CREATE TYPE pgfailover.formation_settings AS (
      formation            text,
      dbname               text,
      number_sync_standbys integer
    );
  END IF;
  IF to_regtype('pgfailover.node_settings') IS NULL THEN
    CREATE TYPE pgfailover.node_settings AS (
      name               text,
      candidate_priority integer,
      replication_quorum boolean
    );
  END IF;
  IF to_regtype('pgfailover.node_status') IS NULL THEN
    CREATE TYPE pgfailover.node_status AS (
      node_id               bigint,
      name                  text,
      host                  text,
      port                  integer,
      group_id              integer,
      timeline              integer,
      lsn                   pg_lsn,
      reported_state        text,
      goal_state            text,
      health                text,
      pg_running            boolean,
      last_report_at        timestamptz,
      lag_bytes             bigint,
      lag_seconds           double precision,
      candidate_priority    integer,
      replication_quorum    boolean,
      maintenance_requested boolean,
      sync_standby_names    text
    );
  END IF;
END
$$;

---------------------------------------------------------------------------
-- Helpers (not granted to pgfailover_node)
---------------------------------------------------------------------------

-- Mirrors common/node_state.h: the states whose holder may accept writes, and
-- those that make a node the group's primary (draining still holds the data
-- of record).
CREATE OR REPLACE FUNCTION pgfailover.accepts_writes(state text)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT $1 IN ('single', 'wait_primary', 'primary') $$;

CREATE OR REPLACE FUNCTION pgfailover.is_primary_role(state text)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT $1 IN ('single', 'wait_primary', 'primary', 'draining') $$;

-- Node id lists are sets (SyncConfig keeps them sorted and unique); storing
-- them normalised makes "did it change?" a plain array comparison.
CREATE OR REPLACE FUNCTION pgfailover.id_set(ids bigint[])
RETURNS bigint[] LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT coalesce(array_agg(DISTINCT i ORDER BY i), '{}')
  FROM unnest($1) AS i WHERE i IS NOT NULL
$$;

-- synchronous_standby_names as SyncConfig::to_guc() writes it.
CREATE OR REPLACE FUNCTION pgfailover.sync_guc(num_sync integer, standbys bigint[])
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT CASE
    WHEN $1 > 0 AND cardinality($2) > 0 THEN
      format('ANY %s (%s)', $1,
             (SELECT string_agg('pgfailover_node_' || i, ', ' ORDER BY i) FROM unnest($2) AS i))
    ELSE ''
  END
$$;

CREATE OR REPLACE FUNCTION pgfailover.setting_value(setting text)
RETURNS bigint LANGUAGE sql STABLE
AS $$ SELECT s.value::bigint FROM pgfailover.monitor_setting s WHERE s.name = $1 $$;

CREATE OR REPLACE FUNCTION pgfailover.node_lost_timeout()
RETURNS interval LANGUAGE sql STABLE
AS $$ SELECT make_interval(secs => pgfailover.setting_value('node_lost_timeout_ms') / 1000.0) $$;

-- "Healthy" for the operator checks: the monitor's health check passes, or the
-- keeper reported recently (a node whose health check is still unknown, e.g.
-- right after the monitor started, is judged by its reports).
CREATE OR REPLACE FUNCTION pgfailover.is_healthy(health text, last_report_at timestamptz, lost_timeout interval)
RETURNS boolean LANGUAGE sql STABLE
AS $$ SELECT $1 = 'good' OR coalesce($2 >= now() - $3, false) $$;

-- A secondary that a switchover could promote right now.
CREATE OR REPLACE FUNCTION pgfailover.has_candidate(formation text, group_id integer, except_node bigint)
RETURNS boolean LANGUAGE sql STABLE
AS $$
  SELECT EXISTS (
    SELECT 1 FROM pgfailover.node c
    WHERE c.formation = $1 AND c.group_id = $2 AND c.id IS DISTINCT FROM $3
      AND c.goal_state = 'secondary' AND c.candidate_priority > 0
      AND NOT c.maintenance_requested AND NOT c.drop_requested
      AND pgfailover.is_healthy(c.health, c.last_report_at, pgfailover.node_lost_timeout()))
$$;

CREATE OR REPLACE FUNCTION pgfailover.notify_decide(formation text, group_id integer)
RETURNS void LANGUAGE sql
AS $$ SELECT pg_notify('pgfailover_decide', $1 || '/' || $2) $$;

-- Operator requests are logged next to the decider's events so that `show
-- events` tells who asked for what; they change no goal, so no from/to state.
CREATE OR REPLACE FUNCTION pgfailover.log_event(formation text, group_id integer, node_id bigint,
                                                node_name text, rule text, reason text)
RETURNS void LANGUAGE sql
AS $$
  INSERT INTO pgfailover.event (formation, group_id, node_id, node_name, rule, reason)
  VALUES ($1, $2, $3, $4, $5, $6);
  SELECT pg_notify('pgfailover_events', $1);
$$;

CREATE OR REPLACE FUNCTION pgfailover.formation_row(formation text, for_update boolean DEFAULT false)
RETURNS pgfailover.formation
LANGUAGE plpgsql SET search_path = pgfailover, pg_catalog, pg_temp
AS $$
DECLARE
  f pgfailover.formation;
BEGIN
  IF for_update THEN
    SELECT * INTO f FROM pgfailover.formation x WHERE x.name = formation_row.formation FOR NO KEY UPDATE;
  ELSE
    SELECT * INTO f FROM pgfailover.formation x WHERE x.name = formation_row.formation;
  END IF;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'formation "%" does not exist', formation USING ERRCODE = 'P0002';
  END IF;
  RETURN f;
END
$$;

-- Takes the group's row lock, the same lock the decider holds while deciding,
-- so a request is never checked against a group that is changing under it.
-- All row locks here are NO KEY UPDATE: they conflict with each other and with
-- the decider's FOR UPDATE, but not with the KEY SHARE locks that foreign key
-- checks take. A FOR UPDATE on the formation row deadlocked with a decider
-- that held the group and inserted an event (its FK check waits for the
-- formation row) while the operator held the formation and waited for the
-- group; concurrency_test.sql replays that.
CREATE OR REPLACE FUNCTION pgfailover.lock_group(formation text, group_id integer)
RETURNS pgfailover.node_group
LANGUAGE plpgsql SET search_path = pgfailover, pg_catalog, pg_temp
AS $$
DECLARE
  g pgfailover.node_group;
BEGIN
  PERFORM pgfailover.formation_row(formation);
  SELECT * INTO g FROM pgfailover.node_group x
  WHERE x.formation = lock_group.formation AND x.group_id = lock_group.group_id
  FOR NO KEY UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'group % does not exist in formation "%"', group_id, formation
      USING ERRCODE = 'P0002';
  END IF;
  RETURN g;
END
$$;

-- Locks in the decider's order, group first, then the node; the node is read
-- again under the lock because it may have been dropped meanwhile.
CREATE OR REPLACE FUNCTION pgfailover.lock_node(formation text, name text)
RETURNS pgfailover.node
LANGUAGE plpgsql SET search_path = pgfailover, pg_catalog, pg_temp
AS $$
DECLARE
  n pgfailover.node;
  grp integer;
BEGIN
  PERFORM pgfailover.formation_row(formation);
  SELECT x.group_id INTO grp FROM pgfailover.node x
  WHERE x.formation = lock_node.formation AND x.name = lock_node.name;
  IF FOUND THEN
    PERFORM pgfailover.lock_group(formation, grp);
    SELECT * INTO n FROM pgfailover.node x
    WHERE x.formation = lock_node.formation AND x.name = lock_node.name
    FOR NO KEY UPDATE;
  END IF;
  IF n.id IS NULL THEN
    RAISE EXCEPTION 'node "%" is not registered in formation "%"', name, formation
      USING ERRCODE = 'P0002';
  END IF;
  RETURN n;
END
$$;

-- Hosts go into URIs: IPv6 addresses need brackets there.
CREATE OR REPLACE FUNCTION pgfailover.uri_host(host text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN strpos($1, ':') > 0 THEN '[' || $1 || ']' ELSE $1 END $$;

-- Percent-encodes everything but RFC 3986 unreserved characters; database
-- names may contain anything.
CREATE OR REPLACE FUNCTION pgfailover.uri_encode(s text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT coalesce(string_agg(
           CASE WHEN b < 128 AND chr(b) ~ '[A-Za-z0-9._~-]' THEN chr(b)
                ELSE '%' || upper(lpad(to_hex(b), 2, '0')) END,
           '' ORDER BY i), '')
  FROM (SELECT i, get_byte(convert_to($1, 'UTF8'), i) AS b
        FROM generate_series(0, octet_length(convert_to($1, 'UTF8')) - 1) AS i) AS bytes
$$;

CREATE OR REPLACE FUNCTION pgfailover.check_not_null(value anyelement, what text)
RETURNS void LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
  IF value IS NULL THEN
    RAISE EXCEPTION '% must not be null', what USING ERRCODE = '22023';
  END IF;
END
$$;

CREATE OR REPLACE FUNCTION pgfailover.check_name(name text, what text)
RETURNS void LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
  PERFORM pgfailover.check_not_null(name, what);
  IF NOT pgfailover.is_valid_name(name) THEN
    RAISE EXCEPTION '% "%" is invalid: use 1 to 63 letters, digits, "_", "." or "-", starting with a letter or digit',
      what, name USING ERRCODE = '22023';
  END IF;
END
$$;

CREATE OR REPLACE FUNCTION pgfailover.check_priority(priority integer)
RETURNS void LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
  PERFORM pgfailover.check_not_null(priority, 'candidate priority');
  IF priority NOT BETWEEN 0 AND 100 THEN
    RAISE EXCEPTION 'candidate priority % is out of range 0..100', priority USING ERRCODE = '22023';
  END IF;
END
$$;

---------------------------------------------------------------------------
-- Keepers
---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pgfailover.register_node(
  formation          text,
  name               text,
  host               text,
  port               integer,
  system_identifier  bigint,
  candidate_priority integer,
  replication_quorum boolean,
  group_id           integer DEFAULT 0)
RETURNS pgfailover.registered_node
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pgfailover, pg_catalog, pg_temp
AS $$
DECLARE
  n pgfailover.node;
  new_id bigint;
  new_name text;
  other pgfailover.node;
BEGIN
  PERFORM formation_row(formation);
  IF name IS NOT NULL THEN
    PERFORM check_name(name, 'node name');
  END IF;
  PERFORM check_not_null(host, 'host');
  IF host !~ '^[A-Za-z0-9:][A-Za-z0-9._:-]{0,252}$' THEN
    RAISE EXCEPTION 'host "%" is invalid: use a host name or an IP address', host USING ERRCODE = '22023';
  END IF;
  PERFORM check_not_null(port, 'port');
  IF port NOT BETWEEN 1 AND 65535 THEN
    RAISE EXCEPTION 'port % is out of range 1..65535', port USING ERRCODE = '22023';
  END IF;
  PERFORM check_priority(candidate_priority);
  PERFORM check_not_null(replication_quorum, 'replication quorum');
  PERFORM check_not_null(group_id, 'group id');
  IF group_id < 0 THEN
    RAISE EXCEPTION 'group id % is out of range: must be 0 or more', group_id USING ERRCODE = '22023';
  END IF;

  INSERT INTO node_group AS g (formation, group_id)
  VALUES (register_node.formation, register_node.group_id)
  ON CONFLICT DO NOTHING;
  PERFORM lock_group(formation, group_id);

  -- A keeper that died between registering and saving its node id registers
  -- again with the same arguments: give it back the row it already has, as long
  -- as nothing has been reported under it (otherwise it is another keeper).
  SELECT * INTO n FROM node x
  WHERE x.formation = register_node.formation
    AND x.group_id = register_node.group_id
    AND lower(x.host) = lower(register_node.host) AND x.port = register_node.port
    AND (x.name = register_node.name OR (register_node.name IS NULL AND x.name = 'node_' || x.id))
    AND x.last_report_at IS NULL;
  IF FOUND THEN
    RETURN ROW(n.id, n.name, n.group_id, n.goal_state)::registered_node;
  END IF;

  IF name IS NOT NULL THEN
    PERFORM 1 FROM node x WHERE x.formation = register_node.formation AND x.name = register_node.name;
    IF FOUND THEN
      RAISE EXCEPTION 'node name "%" is already used in formation "%"', name, formation
        USING ERRCODE = '23505';
    END IF;
  END IF;

  SELECT * INTO other FROM node x
  WHERE lower(x.host) = lower(register_node.host) AND x.port = register_node.port;
  IF FOUND THEN
    RAISE EXCEPTION 'host:port %:% is already used by node "%"%', host, port, other.name,
      CASE WHEN other.formation <> formation THEN format(' in formation "%s"', other.formation) ELSE '' END
      USING ERRCODE = '23505';
  END IF;

  IF system_identifier IS NOT NULL THEN
    SELECT * INTO other FROM node x
    WHERE x.formation = register_node.formation AND x.group_id = register_node.group_id
      AND x.system_identifier <> register_node.system_identifier
    ORDER BY x.id LIMIT 1;
    IF FOUND THEN
      RAISE EXCEPTION 'system identifier % differs from % of node "%" in group % of formation "%"',
        system_identifier, other.system_identifier, other.name, group_id, formation
        USING ERRCODE = '55000',
              HINT = 'The node''s data directory belongs to another cluster.';
    END IF;
  END IF;

  new_id := nextval('pgfailover.node_id_seq');
  new_name := coalesce(name, 'node_' || new_id);
  -- DO NOTHING instead of an error: a concurrent registration in another group
  -- or formation may have taken the name or the address since the checks above.
  INSERT INTO node AS x (id, formation, group_id, name, host, port, system_identifier,
                         candidate_priority, replication_quorum)
  VALUES (new_id, register_node.formation, register_node.group_id, new_name, register_node.host,
          register_node.port, register_node.system_identifier, register_node.candidate_priority,
          register_node.replication_quorum)
  ON CONFLICT DO NOTHING;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'node name "%" or host:port %:% is already used', new_name, host, port
      USING ERRCODE = '23505';
  END IF;

  PERFORM log_event(formation, group_id, new_id, new_name, 'register',
    format('registered %s:%s in group %s, candidate priority %s, replication quorum %s',
           host, port, group_id, candidate_priority, replication_quorum));
  PERFORM notify_decide(formation, group_id);
  RETURN ROW(new_id, new_name, group_id, 'init')::registered_node;
END
$$;

-- The hot path: every keeper calls it about once a second. One UPDATE records
-- the report and returns the facts as they were before it (self-join on the
-- old row version), one SELECT reads the group, the formation's dbname and the
-- settings. The decider is woken only when a fact it decides on changed.
CREATE OR REPLACE FUNCTION pgfailover.node_active(
  node_id           bigint,
  reported_state    text,
  pg_running        boolean,
  timeline          integer,
  lsn               pg_lsn,
  reported_upstream bigint,
  streaming         boolean,
  sync_num          integer,
  sync_standbys     bigint[],
  peers_ready       bigint[],
  replication       jsonb,
  system_identifier bigint,
  reached_goal_version bigint DEFAULT NULL)
RETURNS pgfailover.node_assignment
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pgfailover, pg_catalog, pg_temp
AS $$
DECLARE
  me record;
  grp record;
BEGIN
  IF reported_state IS NULL OR NOT reported_state = ANY (node_state_names()) THEN
    RAISE EXCEPTION 'reported state "%" is not a node state', coalesce(reported_state, 'NULL')
      USING ERRCODE = '22023', HINT = 'One of: ' || array_to_string(node_state_names(), ', ');
  END IF;
  IF pg_running IS NULL OR streaming IS NULL THEN
    RAISE EXCEPTION 'pg_running and streaming must not be null' USING ERRCODE = '22023';
  END IF;
  IF timeline < 0 THEN
    RAISE EXCEPTION 'timeline % is out of range: must be 0 or more', timeline USING ERRCODE = '22023';
  END IF;
  IF sync_num < 0 THEN
    RAISE EXCEPTION 'sync_num % is out of range: must be 0 or more', sync_num USING ERRCODE = '22023';
  END IF;
  IF reached_goal_version < 0 THEN
    RAISE EXCEPTION 'reached_goal_version % is out of range: must be 0 or more', reached_goal_version
      USING ERRCODE = '22023';
  END IF;
  IF jsonb_typeof(replication) <> 'array' THEN
    RAISE EXCEPTION 'replication must be a JSON array of pg_stat_replication rows, not a JSON %',
      jsonb_typeof(replication) USING ERRCODE = '22023';
  END IF;

  -- A report is repeated by the keeper's next poll, so losing the last few in
  -- a monitor crash is harmless, and any decision taken on a report flushes it
  -- with its own (synchronous) commit. Not waiting for the WAL flush here is
  -- what lets thousands of keepers report per second. LOCAL: only this
  -- transaction, and it outlives this function (which pins only search_path).
  SET LOCAL synchronous_commit = off;

  UPDATE node AS n SET
    reported_state         = node_active.reported_state,
    -- The version of the goal the keeper reached. A keeper that does not send
    -- one (older than goal versions) is judged by its state alone, as before.
    reported_goal_version  = CASE WHEN node_active.reached_goal_version IS NOT NULL
                                  THEN node_active.reached_goal_version
                                  WHEN node_active.reported_state = o.goal_state THEN o.goal_version
                                  ELSE o.reported_goal_version END,
    last_report_at         = now(),
    pg_running             = node_active.pg_running,
    pg_down_since          = CASE WHEN node_active.pg_running THEN NULL
                                  ELSE coalesce(o.pg_down_since, now()) END,
    -- Unknown (NULL) LSN and timeline, e.g. while Postgres is down: keep the last known.
    lsn                    = coalesce(node_active.lsn, o.lsn),
    timeline               = coalesce(node_active.timeline, o.timeline),
    reported_upstream      = node_active.reported_upstream,
    streaming              = node_active.streaming,
    last_streaming_at      = CASE WHEN node_active.streaming THEN now() ELSE o.last_streaming_at END,
    -- Normalised as SyncConfig::any does (no count or no standbys: off), and
    -- as sets. id_set only where there is something to sort: it is a
    -- subquery, and most reports carry empty lists.
    reported_sync_num      = CASE WHEN node_active.sync_num > 0
                                   AND cardinality(array_remove(node_active.sync_standbys, NULL)) > 0
                                  THEN node_active.sync_num ELSE 0 END,
    reported_sync_standbys = CASE WHEN node_active.sync_num > 0 THEN id_set(node_active.sync_standbys)
                                  ELSE '{}' END,
    peers_ready            = CASE WHEN cardinality(node_active.peers_ready) > 0 THEN id_set(node_active.peers_ready)
                                  ELSE '{}' END,
    replication            = node_active.replication,
    system_identifier      = coalesce(node_active.system_identifier, o.system_identifier),
    state_changed_at       = CASE WHEN o.reported_state IS DISTINCT FROM node_active.reported_state
                                  THEN now() ELSE o.state_changed_at END
  FROM node AS o
  WHERE n.id = node_active.node_id AND o.id = n.id
  RETURNING n.id, n.formation, n.group_id, n.name, n.goal_state, n.goal_version, n.assigned_upstream,
            n.assigned_sync_num, n.assigned_sync_standbys, n.target_lsn, n.system_identifier,
            o.last_report_at AS previous_report_at,
            (o.reported_state IS DISTINCT FROM n.reported_state
             OR o.reported_goal_version <> n.reported_goal_version
             OR o.pg_running <> n.pg_running
             OR o.streaming <> n.streaming
             OR o.reported_upstream IS DISTINCT FROM n.reported_upstream
             OR o.reported_sync_num <> n.reported_sync_num
             OR o.reported_sync_standbys <> n.reported_sync_standbys
             OR o.peers_ready <> n.peers_ready
             OR o.timeline <> n.timeline
             OR o.system_identifier IS DISTINCT FROM n.system_identifier
             -- While catching up, the LSN decides when the node becomes a secondary.
             OR n.reported_state = 'catchingup' OR n.goal_state = 'catchingup') AS facts_changed
  INTO me;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'node % is not registered with this monitor (was it dropped?)', node_id
      USING ERRCODE = 'P0002';
  END IF;

  SELECT
    coalesce(jsonb_agg(jsonb_build_object('id', p.id, 'name', p.name, 'host', p.host, 'port', p.port)
                       ORDER BY p.id) FILTER (WHERE p.id <> me.id), '[]') AS peers,
    max(p.name) FILTER (WHERE p.id = me.assigned_upstream) AS upstream_name,
    max(p.host) FILTER (WHERE p.id = me.assigned_upstream) AS upstream_host,
    max(p.port) FILTER (WHERE p.id = me.assigned_upstream) AS upstream_port,
    (array_agg(p.name ORDER BY p.id) FILTER (WHERE p.id <> me.id
       AND p.system_identifier <> me.system_identifier))[1] AS foreign_name,
    (array_agg(p.system_identifier ORDER BY p.id) FILTER (WHERE p.id <> me.id
       AND p.system_identifier <> me.system_identifier))[1] AS foreign_sysid,
    (SELECT f.dbname FROM formation f WHERE f.name = me.formation) AS dbname,
    (SELECT jsonb_object_agg(s.name, CASE WHEN s.value ~ '^-?[0-9]+$' THEN to_jsonb(s.value::bigint)
                                          ELSE to_jsonb(s.value) END)
     FROM monitor_setting s) AS settings
  INTO grp
  FROM node p
  WHERE p.formation = me.formation AND p.group_id = me.group_id;

  -- A node whose PGDATA belongs to another cluster must not be counted as a
  -- member of this group; raising also undoes the UPDATE above.
  IF grp.foreign_name IS NOT NULL THEN
    RAISE EXCEPTION 'node "%" reports system identifier % but node "%" of group % in formation "%" has %',
      me.name, me.system_identifier, grp.foreign_name, me.group_id, me.formation, grp.foreign_sysid
      USING ERRCODE = '55000', HINT = 'The node''s data directory belongs to another cluster.';
  END IF;

  -- A first report, or one after a silence long enough to count as lost,
  -- changes what the decider thinks of the node as much as any reported fact.
  IF me.facts_changed
     OR me.previous_report_at IS NULL
     OR me.previous_report_at < now() - make_interval(secs => (grp.settings->>'node_lost_timeout_ms')::bigint / 1000.0)
  THEN
    PERFORM pg_notify('pgfailover_decide', me.formation || '/' || me.group_id);
  END IF;

  RETURN ROW(me.goal_state, me.assigned_upstream, grp.upstream_name, grp.upstream_host,
             grp.upstream_port, me.assigned_sync_num, me.assigned_sync_standbys, me.target_lsn,
             grp.peers, grp.dbname, grp.settings, me.goal_version)::node_assignment;
END
$$;

---------------------------------------------------------------------------
-- Operators: formations and nodes
---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pgfailover.create_formation(
  name                 text,
  dbname               text DEFAULT 'postgres',
  number_sync_standbys integer DEFAULT 1)
RETURNS pgfailover.formation_settings
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pgfailover, pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM check_name(name, 'formation name');
  PERFORM check_not_null(dbname, 'dbname');
  IF octet_length(dbname) NOT BETWEEN 1 AND 63 THEN
    RAISE EXCEPTION 'dbname "%" is invalid: use 1 to 63 bytes', dbname USING ERRCODE = '22023';
  END IF;
  PERFORM check_not_null(number_sync_standbys, 'number_sync_standbys');
  IF number_sync_standbys < 0 THEN
    RAISE EXCEPTION 'number_sync_standbys % is out of range: must be 0 or more', number_sync_standbys
      USING ERRCODE = '22023';
  END IF;

  INSERT INTO formation AS f (name, dbname, number_sync_standbys)
  VALUES (create_formation.name, create_formation.dbname, create_formation.number_sync_standbys)
  ON CONFLICT DO NOTHING;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'formation "%" already exists', name USING ERRCODE = '23505';
  END IF;
  -- No decide notification: a new formation has no group to decide about.
  PERFORM log_event(name, NULL, NULL, NULL, 'create-formation',
    format('created formation %s (dbname %s, number_sync_standbys %s)', name, dbname, number_sync_standbys));
  RETURN ROW(name, dbname, number_sync_standbys)::formation_settings;
END
$$;

CREATE OR REPLACE FUNCTION pgfailover.drop_node(formation text, name text, force boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pgfailover, pg_catalog, pg_temp
AS $$
DECLARE
  n node;
BEGIN
  PERFORM check_not_null(force, 'force');
  n := lock_node(formation, name);

  IF NOT force THEN
    -- The decider takes the node out of the group (goal 'dropped') and deletes
    -- the row once the keeper has reported it stopped.
    IF NOT n.drop_requested THEN
      UPDATE node x SET drop_requested = true WHERE x.id = n.id;
      PERFORM log_event(n.formation, n.group_id, n.id, n.name, 'drop-requested',
                        format('drop of node %s requested', n.name));
      PERFORM notify_decide(n.formation, n.group_id);
    END IF;
    RETURN;
  END IF;

  -- Deleting a primary that has standbys would leave them without a group
  -- primary and the decider without the facts to elect one safely.
  IF (is_primary_role(n.goal_state) OR n.may_write)
     AND EXISTS (SELECT 1 FROM node x
                 WHERE x.formation = n.formation AND x.group_id = n.group_id AND x.id <> n.id) THEN
    RAISE EXCEPTION 'node "%" is the primary of group % in formation "%", which has other nodes',
      n.name, n.group_id, n.formation
      USING ERRCODE = '55000',
            HINT = 'Perform a switchover first, or drop it without force.';
  END IF;

  -- A promotion of this very node cannot happen any more.
  UPDATE node_group g SET switchover_target = NULL, switchover_requested_at = NULL
  WHERE g.formation = n.formation AND g.group_id = n.group_id AND g.switchover_target = n.id;
  DELETE FROM node x WHERE x.id = n.id;
  PERFORM log_event(n.formation, n.group_id, n.id, n.name, 'drop-forced',
                    format('node %s (%s:%s) deleted by force in state %s', n.name, n.host, n.port, n.goal_state));
  PERFORM notify_decide(n.formation, n.group_id);
END
$$;

CREATE OR REPLACE FUNCTION pgfailover.set_formation_number_sync_standbys(formation text, number_sync_standbys integer)
RETURNS pgfailover.formation_settings
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pgfailover, pg_catalog, pg_temp
AS $$
DECLARE
  f formation;
  short record;
  g record;
BEGIN
  PERFORM check_not_null(number_sync_standbys, 'number_sync_standbys');
  IF number_sync_standbys < 0 THEN
    RAISE EXCEPTION 'number_sync_standbys % is out of range: must be 0 or more', number_sync_standbys
      USING ERRCODE = '22023';
  END IF;
  -- The formation row lock serialises this with set_node_replication_quorum,
  -- which checks the same condition from the other side.
  f := formation_row(formation, true);

  -- Whichever quorum node is the primary, it needs that many quorum standbys.
  SELECT x.group_id, count(*) FILTER (WHERE x.replication_quorum) AS quorum_nodes
  INTO short
  FROM node x
  WHERE x.formation = f.name
  GROUP BY x.group_id
  HAVING count(*) FILTER (WHERE x.replication_quorum) - 1 < set_formation_number_sync_standbys.number_sync_standbys
  ORDER BY x.group_id LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'number_sync_standbys % needs at least % nodes with replication quorum in group % of formation "%", it has %',
      number_sync_standbys, number_sync_standbys + 1, short.group_id, f.name, short.quorum_nodes
      USING ERRCODE = '55000';
  END IF;

  IF f.number_sync_standbys <> number_sync_standbys THEN
    UPDATE formation x SET number_sync_standbys = set_formation_number_sync_standbys.number_sync_standbys
    WHERE x.name = f.name;
    PERFORM log_event(f.name, NULL, NULL, NULL, 'set-number-sync-standbys',
      format('number_sync_standbys changed from %s to %s', f.number_sync_standbys, number_sync_standbys));
    FOR g IN SELECT x.group_id FROM node_group x WHERE x.formation = f.name ORDER BY x.group_id LOOP
      PERFORM notify_decide(f.name, g.group_id);
    END LOOP;
  END IF;
  RETURN ROW(f.name, f.dbname, number_sync_standbys)::formation_settings;
END
$$;

CREATE OR REPLACE FUNCTION pgfailover.set_node_candidate_priority(formation text, name text, priority integer)
RETURNS pgfailover.node_settings
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pgfailover, pg_catalog, pg_temp
AS $$
DECLARE
  n node;
BEGIN
  PERFORM check_priority(priority);
  n := lock_node(formation, name);
  IF n.candidate_priority <> priority THEN
    UPDATE node x SET candidate_priority = set_node_candidate_priority.priority WHERE x.id = n.id;
    PERFORM log_event(n.formation, n.group_id, n.id, n.name, 'set-candidate-priority',
      format('candidate priority of %s changed from %s to %s', n.name, n.candidate_priority, priority));
    PERFORM notify_decide(n.formation, n.group_id);
  END IF;
  RETURN ROW(n.name, priority, n.replication_quorum)::node_settings;
END
$$;

CREATE OR REPLACE FUNCTION pgfailover.set_node_replication_quorum(formation text, name text, replication_quorum boolean)
RETURNS pgfailover.node_settings
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pgfailover, pg_catalog, pg_temp
AS $$
DECLARE
  f formation;
  n node;
  quorum_nodes bigint;
BEGIN
  PERFORM check_not_null(replication_quorum, 'replication quorum');
  f := formation_row(formation, true);
  n := lock_node(formation, name);
  IF n.replication_quorum = replication_quorum THEN
    RETURN ROW(n.name, n.candidate_priority, n.replication_quorum)::node_settings;
  END IF;

  IF NOT replication_quorum THEN
    SELECT count(*) INTO quorum_nodes FROM node x
    WHERE x.formation = n.formation AND x.group_id = n.group_id AND x.replication_quorum AND x.id <> n.id;
    IF quorum_nodes - 1 < f.number_sync_standbys THEN
      RAISE EXCEPTION 'node "%" is needed for replication quorum: group % of formation "%" would have % nodes with replication quorum, and number_sync_standbys % needs %',
        n.name, n.group_id, n.formation, quorum_nodes, f.number_sync_standbys, f.number_sync_standbys + 1
        USING ERRCODE = '55000',
              HINT = 'Lower the formation''s number_sync_standbys first.';
    END IF;
  END IF;

  UPDATE node x SET replication_quorum = set_node_replication_quorum.replication_quorum WHERE x.id = n.id;
  PERFORM log_event(n.formation, n.group_id, n.id, n.name, 'set-replication-quorum',
    format('replication quorum of %s changed from %s to %s', n.name, n.replication_quorum, replication_quorum));
  PERFORM notify_decide(n.formation, n.group_id);
  RETURN ROW(n.name, n.candidate_priority, replication_quorum)::node_settings;
END
$$;

CREATE OR REPLACE FUNCTION pgfailover.get_formation_settings(formation text)
RETURNS pgfailover.formation_settings
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pgfailover, pg_catalog, pg_temp
AS $$
DECLARE
  f formation;
BEGIN
  f := formation_row(formation);
  RETURN ROW(f.name, f.dbname, f.number_sync_standbys)::formation_settings;
END
$$;

CREATE OR REPLACE FUNCTION pgfailover.get_node_settings(formation text, name text)
RETURNS pgfailover.node_settings
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pgfailover, pg_catalog, pg_temp
AS $$
DECLARE
  n node;
BEGIN
  PERFORM formation_row(formation);
  SELECT * INTO n FROM node x WHERE x.formation = get_node_settings.formation AND x.name = get_node_settings.name;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'node "%" is not registered in formation "%"', name, formation USING ERRCODE = 'P0002';
  END IF;
  RETURN ROW(n.name, n.candidate_priority, n.replication_quorum)::node_settings;
END
$$;

---------------------------------------------------------------------------
-- Operators: switchover, failover, promotion, maintenance
---------------------------------------------------------------------------

-- Shared by perform_switchover/failover/promotion: the caller has locked the
-- group; target is NULL for "the decider picks the best candidate".
CREATE OR REPLACE FUNCTION pgfailover.request_switchover(g pgfailover.node_group, target pgfailover.node, kind text)
RETURNS void
LANGUAGE plpgsql SET search_path = pgfailover, pg_catalog, pg_temp
AS $$
BEGIN
  IF g.switchover_requested_at IS NOT NULL THEN
    RAISE EXCEPTION 'a switchover is already pending for group % in formation "%" (requested at %)',
      g.group_id, g.formation, g.switchover_requested_at USING ERRCODE = '55000';
  END IF;
  PERFORM 1 FROM node x
  WHERE x.formation = g.formation AND x.group_id = g.group_id AND accepts_writes(x.goal_state);
  IF NOT FOUND THEN
    RAISE EXCEPTION 'group % in formation "%" has no primary', g.group_id, g.formation
      USING ERRCODE = '55000';
  END IF;
  IF target.id IS NULL AND NOT has_candidate(g.formation, g.group_id, NULL) THEN
    RAISE EXCEPTION 'group % in formation "%" has no healthy secondary with candidate priority above 0',
      g.group_id, g.formation USING ERRCODE = '55000';
  END IF;

  UPDATE node_group x SET switchover_target = target.id, switchover_requested_at = now()
  WHERE x.formation = g.formation AND x.group_id = g.group_id;
  PERFORM log_event(g.formation, g.group_id, target.id, target.name, kind || '-requested',
    CASE WHEN target.id IS NULL THEN format('%s of group %s requested', kind, g.group_id)
         ELSE format('promotion of %s requested', target.name) END);
  PERFORM notify_decide(g.formation, g.group_id);
END
$$;

CREATE OR REPLACE FUNCTION pgfailover.perform_switchover(formation text, group_id integer DEFAULT 0)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pgfailover, pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM check_not_null(group_id, 'group id');
  PERFORM request_switchover(lock_group(formation, group_id), NULL, 'switchover');
END
$$;

-- Same request as a switchover, as in pg_auto_failover: the old primary is
-- demoted in an orderly way; the name is what operators look for.
CREATE OR REPLACE FUNCTION pgfailover.perform_failover(formation text, group_id integer DEFAULT 0)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pgfailover, pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM check_not_null(group_id, 'group id');
  PERFORM request_switchover(lock_group(formation, group_id), NULL, 'failover');
END
$$;

CREATE OR REPLACE FUNCTION pgfailover.perform_promotion(formation text, name text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pgfailover, pg_catalog, pg_temp
AS $$
DECLARE
  n node;
  g node_group;
BEGIN
  n := lock_node(formation, name);
  -- lock_node holds the group lock already; this only reads the row.
  SELECT * INTO g FROM node_group x WHERE x.formation = n.formation AND x.group_id = n.group_id;

  IF is_primary_role(n.goal_state) THEN
    RAISE EXCEPTION 'node "%" is already the primary of group % in formation "%"',
      n.name, n.group_id, n.formation USING ERRCODE = '55000';
  END IF;
  IF n.candidate_priority = 0 THEN
    RAISE EXCEPTION 'node "%" has candidate priority 0 and is never promoted', n.name
      USING ERRCODE = '55000', HINT = 'Raise its candidate priority first.';
  END IF;
  IF n.goal_state <> 'secondary' THEN
    RAISE EXCEPTION 'node "%" is not a secondary (its goal state is %)', n.name, n.goal_state
      USING ERRCODE = '55000';
  END IF;
  IF n.maintenance_requested OR n.drop_requested THEN
    RAISE EXCEPTION 'node "%" is %', n.name,
      CASE WHEN n.drop_requested THEN 'being dropped' ELSE 'going to maintenance' END
      USING ERRCODE = '55000';
  END IF;
  IF NOT is_healthy(n.health, n.last_report_at, node_lost_timeout()) THEN
    RAISE EXCEPTION 'node "%" is not healthy (health %, last report %)', n.name, n.health,
      coalesce(n.last_report_at::text, 'never') USING ERRCODE = '55000';
  END IF;
  PERFORM request_switchover(g, n, 'promotion');
END
$$;

CREATE OR REPLACE FUNCTION pgfailover.start_maintenance(formation text, name text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pgfailover, pg_catalog, pg_temp
AS $$
DECLARE
  n node;
BEGIN
  n := lock_node(formation, name);
  IF n.maintenance_requested THEN
    RAISE EXCEPTION 'maintenance is already requested for node "%"', n.name USING ERRCODE = '55000';
  END IF;
  -- Nodes in or going to maintenance, or being dropped, will not serve.
  PERFORM 1 FROM node x
  WHERE x.formation = n.formation AND x.group_id = n.group_id AND x.id <> n.id
    AND NOT x.maintenance_requested AND NOT x.drop_requested
    AND is_healthy(x.health, x.last_report_at, node_lost_timeout());
  IF NOT FOUND THEN
    RAISE EXCEPTION 'node "%" is the last healthy node of group % in formation "%"',
      n.name, n.group_id, n.formation USING ERRCODE = '55000';
  END IF;
  IF (is_primary_role(n.goal_state) OR n.may_write) AND NOT has_candidate(n.formation, n.group_id, n.id) THEN
    RAISE EXCEPTION 'node "%" is the primary of group % in formation "%" and no healthy secondary with candidate priority above 0 can take over',
      n.name, n.group_id, n.formation USING ERRCODE = '55000';
  END IF;

  UPDATE node x SET maintenance_requested = true WHERE x.id = n.id;
  PERFORM log_event(n.formation, n.group_id, n.id, n.name, 'maintenance-requested',
                    format('maintenance of %s requested in state %s', n.name, n.goal_state));
  PERFORM notify_decide(n.formation, n.group_id);
END
$$;

CREATE OR REPLACE FUNCTION pgfailover.stop_maintenance(formation text, name text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pgfailover, pg_catalog, pg_temp
AS $$
DECLARE
  n node;
BEGIN
  n := lock_node(formation, name);
  IF NOT n.maintenance_requested THEN
    RAISE EXCEPTION 'maintenance is not requested for node "%"', n.name USING ERRCODE = '55000';
  END IF;
  UPDATE node x SET maintenance_requested = false WHERE x.id = n.id;
  PERFORM log_event(n.formation, n.group_id, n.id, n.name, 'maintenance-cleared',
                    format('end of maintenance of %s requested in state %s', n.name, n.goal_state));
  PERFORM notify_decide(n.formation, n.group_id);
END
$$;

---------------------------------------------------------------------------
-- Operators: reading state
---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pgfailover.current_state(formation text)
RETURNS SETOF pgfailover.node_status
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pgfailover, pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM formation_row(formation);
  RETURN QUERY
  SELECT n.id, n.name, n.host, n.port, n.group_id, n.timeline, n.lsn, n.reported_state,
         n.goal_state, n.health, n.pg_running, n.last_report_at,
         CASE WHEN p.id IS NOT NULL AND p.id <> n.id
                   AND p.last_report_at IS NOT NULL AND n.last_report_at IS NOT NULL
              -- Reports arrive at different times; a standby is never ahead.
              THEN greatest(p.lsn - n.lsn, 0)::bigint END,
         CASE WHEN p.id IS NOT NULL AND p.id <> n.id THEN
           (SELECT (r->>'replay_lag')::double precision
            FROM jsonb_array_elements(p.replication) AS r
            WHERE r->>'application_name' = 'pgfailover_node_' || n.id
              AND jsonb_typeof(r->'replay_lag') = 'number'
            LIMIT 1) END,
         n.candidate_priority, n.replication_quorum, n.maintenance_requested,
         CASE WHEN is_primary_role(n.goal_state) THEN sync_guc(n.assigned_sync_num, n.assigned_sync_standbys) END
  FROM node n
  LEFT JOIN LATERAL (
    SELECT x.id, x.lsn, x.last_report_at, x.replication FROM node x
    WHERE x.formation = n.formation AND x.group_id = n.group_id AND is_primary_role(x.goal_state)
    ORDER BY accepts_writes(x.goal_state) DESC, x.id
    LIMIT 1) AS p ON true
  WHERE n.formation = current_state.formation
  ORDER BY n.group_id, n.id;
END
$$;

CREATE OR REPLACE FUNCTION pgfailover.last_events(formation text, count integer DEFAULT 10)
RETURNS SETOF pgfailover.event
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pgfailover, pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM formation_row(formation);
  PERFORM check_not_null(count, 'event count');
  IF count < 0 THEN
    RAISE EXCEPTION 'event count % is out of range: must be 0 or more', count USING ERRCODE = '22023';
  END IF;
  RETURN QUERY
  SELECT * FROM (SELECT e.* FROM event e WHERE e.formation = last_events.formation
                 ORDER BY e.id DESC LIMIT last_events.count) AS newest
  ORDER BY newest.id;
END
$$;

CREATE OR REPLACE FUNCTION pgfailover.formation_uri(formation text, format text DEFAULT 'libpq', sslmode text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pgfailover, pg_catalog, pg_temp
AS $$
DECLARE
  f formation;
  hosts text;
  ssl text := nullif(sslmode, '');
BEGIN
  f := formation_row(formation);
  IF format IS NULL OR format NOT IN ('libpq', 'jdbc') THEN
    RAISE EXCEPTION 'URI format "%" is not supported: use libpq or jdbc', coalesce(format, 'NULL')
      USING ERRCODE = '22023';
  END IF;
  IF ssl NOT IN ('disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full') THEN
    RAISE EXCEPTION 'sslmode "%" is not supported: use disable, allow, prefer, require, verify-ca or verify-full', ssl
      USING ERRCODE = '22023';
  END IF;

  -- Node id order: the order a client tries them in stays stable over failovers.
  SELECT string_agg(uri_host(n.host) || ':' || n.port, ',' ORDER BY n.id) INTO hosts
  FROM node n WHERE n.formation = f.name;
  IF hosts IS NULL THEN
    RAISE EXCEPTION 'formation "%" has no nodes', f.name USING ERRCODE = '55000';
  END IF;

  IF format = 'libpq' THEN
    RETURN 'postgresql://' || hosts || '/' || uri_encode(f.dbname)
           || '?target_session_attrs=read-write&connect_timeout=2'
           || coalesce('&sslmode=' || ssl, '');
  END IF;
  -- pgjdbc ignores target_session_attrs; targetServerType is its equivalent.
  -- Its sslmode wins over ssl=true, but ssl=true next to sslmode=disable would
  -- only mislead a reader of the URL.
  RETURN 'jdbc:postgresql://' || hosts || '/' || uri_encode(f.dbname)
         || '?targetServerType=primary&hostRecheckSeconds=2&connectTimeout=2'
         || CASE WHEN ssl IS NULL THEN ''
                 WHEN ssl = 'disable' THEN '&sslmode=disable'
                 ELSE '&ssl=true&sslmode=' || ssl END;
END
$$;

---------------------------------------------------------------------------
-- Operators: monitor settings
---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pgfailover.get_monitor_settings()
RETURNS SETOF pgfailover.monitor_setting
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pgfailover, pg_catalog, pg_temp
AS $$ SELECT * FROM pgfailover.monitor_setting ORDER BY name $$;

CREATE OR REPLACE FUNCTION pgfailover.set_monitor_setting(name text, value text)
RETURNS pgfailover.monitor_setting
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pgfailover, pg_catalog, pg_temp
AS $$
DECLARE
  s monitor_setting;
  v numeric;
  poll bigint;
  lost bigint;
  g record;
BEGIN
  -- Serialises writers (the cross-checks below read other rows) without
  -- blocking node_active, which only reads the table.
  LOCK TABLE monitor_setting IN SHARE ROW EXCLUSIVE MODE;
  SELECT * INTO s FROM monitor_setting x WHERE x.name = set_monitor_setting.name;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'monitor setting "%" does not exist', coalesce(name, 'NULL')
      USING ERRCODE = 'P0002', HINT = 'get_monitor_settings() lists them.';
  END IF;
  IF value IS NULL OR btrim(value) !~ '^-?[0-9]{1,18}$' THEN
    RAISE EXCEPTION 'value "%" for monitor setting "%" is not an integer', coalesce(value, 'NULL'), s.name
      USING ERRCODE = '22023';
  END IF;
  v := btrim(value)::numeric;
  IF v NOT BETWEEN s.min_value AND s.max_value THEN
    RAISE EXCEPTION 'value % for monitor setting "%" is out of range %..%', v, s.name, s.min_value, s.max_value
      USING ERRCODE = '22023';
  END IF;

  -- A node polling slower than the lost timeout would look lost between two
  -- of its reports.
  poll := CASE WHEN s.name = 'keeper_poll_ms' THEN v ELSE setting_value('keeper_poll_ms') END;
  lost := CASE WHEN s.name = 'node_lost_timeout_ms' THEN v ELSE setting_value('node_lost_timeout_ms') END;
  IF poll >= lost THEN
    RAISE EXCEPTION 'keeper_poll_ms (%) must be less than node_lost_timeout_ms (%)', poll, lost
      USING ERRCODE = '22023';
  END IF;

  IF s.value <> v::text THEN
    UPDATE monitor_setting x SET value = v::text WHERE x.name = s.name;
    FOR g IN SELECT x.formation, x.group_id FROM node_group x ORDER BY x.formation, x.group_id LOOP
      PERFORM notify_decide(g.formation, g.group_id);
    END LOOP;
    FOR g IN SELECT x.name FROM formation x ORDER BY x.name LOOP
      PERFORM log_event(g.name, NULL, NULL, NULL, 'set-monitor-setting',
                        format('%s changed from %s to %s', s.name, s.value, v));
    END LOOP;
  END IF;
  s.value := v::text;
  RETURN s;
END
$$;

-- PUBLIC gets EXECUTE on every new function; only 003's explicit grants may
-- open them. Done here too so that no commit ever has them open.
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA pgfailover FROM PUBLIC;
