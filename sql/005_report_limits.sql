-- Limits on what a keeper's report may make the monitor store.
--
-- node_active validates states, nulls, ranges and JSON types (002). Reports
-- come over the network from hosts the monitor does not control; a broken or
-- hostile keeper could still send a replication array of megabytes, or node
-- ids that cannot exist, and the decider reads these columns on every
-- decision. This trigger refuses such a report with SQLSTATE 22023 and a
-- message naming the node and the limit; the report's transaction is rolled
-- back, so nothing of it is recorded. A primary has at most max_wal_senders
-- (10) walsenders, so the limits leave plenty of room.

CREATE OR REPLACE FUNCTION pgfailover.check_report_limits()
RETURNS trigger
LANGUAGE plpgsql SET search_path = pgfailover, pg_catalog, pg_temp
AS $$
BEGIN
  IF NEW.replication IS NOT NULL THEN
    IF jsonb_array_length(NEW.replication) > 128 THEN
      RAISE EXCEPTION 'the report of node % has % pg_stat_replication rows: at most 128',
        NEW.id, jsonb_array_length(NEW.replication) USING ERRCODE = '22023';
    END IF;
    IF octet_length(NEW.replication::text) > 65536 THEN
      RAISE EXCEPTION 'the report of node % has % bytes of pg_stat_replication rows: at most 65536',
        NEW.id, octet_length(NEW.replication::text) USING ERRCODE = '22023';
    END IF;
  END IF;
  IF cardinality(NEW.peers_ready) > 1000 OR cardinality(NEW.reported_sync_standbys) > 1000 THEN
    RAISE EXCEPTION 'the report of node % lists more than 1000 nodes', NEW.id USING ERRCODE = '22023';
  END IF;
  IF EXISTS (SELECT 1 FROM unnest(NEW.peers_ready || NEW.reported_sync_standbys) AS id WHERE id IS NULL OR id <= 0)
     OR NEW.reported_upstream <= 0 THEN
    RAISE EXCEPTION 'the report of node % names a node id that cannot exist (0, negative or null)', NEW.id
      USING ERRCODE = '22023';
  END IF;
  RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS node_report_limits ON pgfailover.node;
CREATE TRIGGER node_report_limits
  BEFORE UPDATE OF replication, peers_ready, reported_sync_standbys, reported_upstream ON pgfailover.node
  FOR EACH ROW EXECUTE FUNCTION pgfailover.check_report_limits();

-- A trigger function is nobody's to call.
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA pgfailover FROM PUBLIC;
