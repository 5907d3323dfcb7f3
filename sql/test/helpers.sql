-- Assertion helpers for the SQL tests, in their own schema pgfailover_test.
-- Included by api_test.sql and notify_test.sql (\ir); run as a superuser on a
-- database where the migrations are applied.
--
-- The tests call the API as pgfailover_node, the way keepers do. Helpers that
-- must see or change tables (snapshots, playing the decider) are SECURITY
-- DEFINER so they work while the session has that role.

SET client_min_messages = warning;
DROP SCHEMA IF EXISTS pgfailover_test CASCADE;
CREATE SCHEMA pgfailover_test;
GRANT USAGE ON SCHEMA pgfailover_test TO pgfailover_node, pgfailover_monitor;

CREATE FUNCTION pgfailover_test.fail(what text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'TEST FAILED: %', what;
END
$$;

CREATE FUNCTION pgfailover_test.ok(cond boolean, what text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF cond IS NOT TRUE THEN
    PERFORM pgfailover_test.fail(what);
  END IF;
END
$$;

CREATE FUNCTION pgfailover_test.eq(got anyelement, want anyelement, what text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF got IS DISTINCT FROM want THEN
    PERFORM pgfailover_test.fail(format('%s: got %s, want %s', what,
                                        coalesce(got::text, 'NULL'), coalesce(want::text, 'NULL')));
  END IF;
END
$$;

CREATE FUNCTION pgfailover_test.missing_columns(tab text, wanted text[])
RETURNS text[] LANGUAGE sql STABLE AS $$
  SELECT ARRAY(SELECT unnest($2)
               EXCEPT SELECT a.attname::text FROM pg_attribute a
                      WHERE a.attrelid = ('pgfailover.' || $1)::regclass AND a.attnum > 0 AND NOT a.attisdropped)
$$;

-- Everything the API may change, as one digest.
CREATE FUNCTION pgfailover_test.snapshot()
RETURNS text LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT md5(concat_ws('#',
    (SELECT string_agg(x::text, '|' ORDER BY x.name) FROM pgfailover.formation x),
    (SELECT string_agg(x::text, '|' ORDER BY x.formation, x.group_id) FROM pgfailover.node_group x),
    (SELECT string_agg(x::text, '|' ORDER BY x.id) FROM pgfailover.node x),
    (SELECT string_agg(x::text, '|' ORDER BY x.id) FROM pgfailover.event x),
    (SELECT string_agg(x::text, '|' ORDER BY x.name) FROM pgfailover.monitor_setting x)))
$$;

-- Runs stmt, which must fail with want_state and a message LIKE want_message,
-- and must leave every table as it was.
CREATE FUNCTION pgfailover_test.expect_error(stmt text, want_state text, want_message text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  before text := pgfailover_test.snapshot();
  got_state text;
  got_message text;
BEGIN
  BEGIN
    EXECUTE stmt;
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS got_state = RETURNED_SQLSTATE, got_message = MESSAGE_TEXT;
  END;
  IF got_state IS NULL THEN
    PERFORM pgfailover_test.fail(format('%s succeeded; want %s %L', stmt, want_state, want_message));
  END IF;
  IF got_state <> want_state OR got_message NOT LIKE want_message THEN
    PERFORM pgfailover_test.fail(format('%s raised %s %L; want %s %L',
                                        stmt, got_state, got_message, want_state, want_message));
  END IF;
  IF pgfailover_test.snapshot() <> before THEN
    PERFORM pgfailover_test.fail(format('%s failed but changed the tables', stmt));
  END IF;
END
$$;

-- Plays the decider or the health checker: writes the tables directly.
CREATE FUNCTION pgfailover_test.as_owner(stmt text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pgfailover, pg_catalog, pg_temp AS $$
BEGIN
  EXECUTE stmt;
END
$$;

-- Reads one value as the owner (the tests' role may not read tables).
CREATE FUNCTION pgfailover_test.owner_value(query text)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pgfailover, pg_catalog, pg_temp AS $$
DECLARE
  result text;
BEGIN
  EXECUTE query INTO result;
  RETURN result;
END
$$;

CREATE FUNCTION pgfailover_test.nid(formation text, name text)
RETURNS bigint LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT n.id FROM pgfailover.node n WHERE n.formation = $1 AND n.name = $2
$$;

CREATE FUNCTION pgfailover_test.node_row(formation text, name text)
RETURNS pgfailover.node LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT n FROM pgfailover.node n WHERE n.formation = $1 AND n.name = $2
$$;

CREATE FUNCTION pgfailover_test.group_row(formation text, group_id integer)
RETURNS pgfailover.node_group LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT g FROM pgfailover.node_group g WHERE g.formation = $1 AND g.group_id = $2
$$;

-- Sets a node's assignment the way the decider would.
CREATE FUNCTION pgfailover_test.assign(formation text, name text, goal text,
                                       upstream text DEFAULT NULL, sync_num integer DEFAULT 0,
                                       sync_standbys text[] DEFAULT '{}')
RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  UPDATE pgfailover.node n SET
    goal_state = $3,
    assigned_upstream = (SELECT u.id FROM pgfailover.node u WHERE u.formation = $1 AND u.name = $4),
    assigned_sync_num = $5,
    assigned_sync_standbys = ARRAY(SELECT s.id FROM pgfailover.node s
                                   WHERE s.formation = $1 AND s.name = ANY ($6) ORDER BY s.id),
    may_write = $3 IN ('single', 'wait_primary', 'primary'),
    goal_changed_at = now()
  WHERE n.formation = $1 AND n.name = $2
$$;

-- Sets what the monitor believes about a node's health.
CREATE FUNCTION pgfailover_test.set_health(formation text, name text, health text, last_report_at timestamptz)
RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  UPDATE pgfailover.node n SET health = $3, last_report_at = $4
  WHERE n.formation = $1 AND n.name = $2
$$;

GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA pgfailover_test TO pgfailover_node, pgfailover_monitor;
