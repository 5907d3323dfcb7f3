-- Who may do what on the monitor database.
--
-- pgfailover_node: keepers and the CLI. They may call the API functions and
-- nothing else; the functions are SECURITY DEFINER, so every read and write
-- goes through their validation.
-- pgfailover_monitor: the role the monitor's health checks log in as on the
-- data nodes. It exists here so that one name is used everywhere, and it gets
-- nothing on this schema.
--
-- Passwords are never set here: they are per installation, set by
-- `pgfailover create monitor` or the operator.

-- Roles are cluster-wide and CREATE ROLE has no IF NOT EXISTS; a second
-- monitor database on the same cluster, or a re-run, must not fail.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'pgfailover_node') THEN
    CREATE ROLE pgfailover_node LOGIN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'pgfailover_monitor') THEN
    CREATE ROLE pgfailover_monitor LOGIN;
  END IF;
END
$$;

-- Start from nothing, then grant exactly what is needed; re-running this file
-- converges to the same privileges whatever was granted by hand in between.
REVOKE ALL ON SCHEMA pgfailover FROM PUBLIC, pgfailover_node, pgfailover_monitor;
REVOKE ALL ON ALL TABLES IN SCHEMA pgfailover FROM PUBLIC, pgfailover_node, pgfailover_monitor;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA pgfailover FROM PUBLIC, pgfailover_node, pgfailover_monitor;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA pgfailover FROM PUBLIC, pgfailover_node, pgfailover_monitor;

GRANT USAGE ON SCHEMA pgfailover TO pgfailover_node;

-- The API of docs/monitor-api.md, and only it: the helpers stay closed.
GRANT EXECUTE ON FUNCTION
  pgfailover.register_node,
  pgfailover.node_active,
  pgfailover.create_formation,
  pgfailover.drop_node,
  pgfailover.perform_switchover,
  pgfailover.perform_failover,
  pgfailover.perform_promotion,
  pgfailover.start_maintenance,
  pgfailover.stop_maintenance,
  pgfailover.set_formation_number_sync_standbys,
  pgfailover.set_node_candidate_priority,
  pgfailover.set_node_replication_quorum,
  pgfailover.get_formation_settings,
  pgfailover.get_node_settings,
  pgfailover.current_state,
  pgfailover.last_events,
  pgfailover.formation_uri,
  pgfailover.get_monitor_settings,
  pgfailover.set_monitor_setting
TO pgfailover_node;
