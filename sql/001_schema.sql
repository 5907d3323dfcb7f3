-- The monitor's tables.
--
-- The migration runner applies each file once, inside one transaction, and then
-- records it in schema_migration. Every statement here still tolerates being run
-- again (IF NOT EXISTS, ON CONFLICT DO NOTHING, guarded DO blocks), so a file
-- re-applied by hand or after an interrupted run never fails or clobbers data.

CREATE SCHEMA IF NOT EXISTS pgfailover;

-- IF NOT EXISTS: the runner may have created it already to find out what was
-- applied; here it is created for a database that has nothing yet.
CREATE TABLE IF NOT EXISTS pgfailover.schema_migration (
  version    integer PRIMARY KEY,             -- NNN of sql/NNN_name.sql
  name       text NOT NULL,                   -- the file name
  applied_at timestamptz NOT NULL DEFAULT now()
);

-- The single list of state names in SQL; must match kNodeStates in
-- common/node_state.h. CHECK constraints and input validation both use it.
CREATE OR REPLACE FUNCTION pgfailover.node_state_names()
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT ARRAY['init', 'single', 'wait_primary', 'primary', 'draining', 'demoted',
               'wait_standby', 'catchingup', 'secondary', 'report_lsn',
               'fast_forward', 'prepare_promotion', 'wait_maintenance',
               'maintenance', 'dropped']
$$;

-- Names end up in events, notification payloads ("formation/group") and CLI
-- output; keeping them to a plain alphabet avoids quoting surprises everywhere.
CREATE OR REPLACE FUNCTION pgfailover.is_valid_name(name text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT $1 ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'
$$;

CREATE TABLE IF NOT EXISTS pgfailover.formation (
  name                 text PRIMARY KEY CHECK (pgfailover.is_valid_name(name)),
  dbname               text NOT NULL CHECK (octet_length(dbname) BETWEEN 1 AND 63),
  number_sync_standbys integer NOT NULL DEFAULT 1 CHECK (number_sync_standbys >= 0),
  created_at           timestamptz NOT NULL DEFAULT now()
);

INSERT INTO pgfailover.formation (name, dbname, number_sync_standbys)
VALUES ('default', 'postgres', 1)
ON CONFLICT (name) DO NOTHING;

-- One row per group. The decider locks it (FOR UPDATE) before loading the
-- group, and so do the operator functions, so decisions and requests on one
-- group are serialised while different groups proceed in parallel.
CREATE TABLE IF NOT EXISTS pgfailover.node_group (
  formation               text NOT NULL REFERENCES pgfailover.formation (name),
  group_id                integer NOT NULL CHECK (group_id >= 0),
  -- A pending switchover: requested_at set; target set only for a promotion
  -- of a named node (NULL target: the decider picks the best candidate).
  switchover_target       bigint,
  switchover_requested_at timestamptz,
  created_at              timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (formation, group_id),
  CHECK (switchover_target IS NULL OR switchover_requested_at IS NOT NULL)
);

CREATE TABLE IF NOT EXISTS pgfailover.node (
  id                     bigserial PRIMARY KEY,
  formation              text NOT NULL,
  group_id               integer NOT NULL,
  name                   text NOT NULL CHECK (pgfailover.is_valid_name(name)),
  host                   text NOT NULL CHECK (host ~ '^[A-Za-z0-9:][A-Za-z0-9._:-]{0,252}$'),
  port                   integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
  system_identifier      bigint,            -- NULL until the node has a PGDATA
  candidate_priority     integer NOT NULL DEFAULT 50 CHECK (candidate_priority BETWEEN 0 AND 100),
  replication_quorum     boolean NOT NULL DEFAULT true,

  -- The assignment, written only by the decider (and 'init' at registration).
  goal_state             text NOT NULL DEFAULT 'init'
                         CHECK (goal_state = ANY (pgfailover.node_state_names())),
  -- Incremented at every goal change; the keeper reports the version of the
  -- goal it reached (reported_goal_version), so a stale report naming the same
  -- state as a newer goal is not taken for reaching it (docs/state-machine.md).
  goal_version           bigint NOT NULL DEFAULT 0 CHECK (goal_version >= 0),
  assigned_sync_num      integer NOT NULL DEFAULT 0 CHECK (assigned_sync_num >= 0),
  assigned_sync_standbys bigint[] NOT NULL DEFAULT '{}',
  -- SET NULL: a dropped upstream must not block the drop; the decider
  -- re-points the standby on its next pass.
  assigned_upstream      bigint REFERENCES pgfailover.node (id) ON DELETE SET NULL,
  target_lsn             pg_lsn,
  may_write              boolean NOT NULL DEFAULT false,
  goal_changed_at        timestamptz NOT NULL DEFAULT now(),

  -- The keeper's latest report (node_active).
  reported_state         text CHECK (reported_state = ANY (pgfailover.node_state_names())),
  reported_goal_version  bigint NOT NULL DEFAULT 0 CHECK (reported_goal_version >= 0),
  last_report_at         timestamptz,
  pg_running             boolean NOT NULL DEFAULT false,
  pg_down_since          timestamptz,
  lsn                    pg_lsn NOT NULL DEFAULT '0/0',
  timeline               integer NOT NULL DEFAULT 0 CHECK (timeline >= 0),
  -- No foreign key: a keeper may still name an upstream that was just dropped,
  -- and its report must be recorded anyway.
  reported_upstream      bigint,
  streaming              boolean NOT NULL DEFAULT false,
  last_streaming_at      timestamptz,
  reported_sync_num      integer NOT NULL DEFAULT 0 CHECK (reported_sync_num >= 0),
  reported_sync_standbys bigint[] NOT NULL DEFAULT '{}',
  peers_ready            bigint[] NOT NULL DEFAULT '{}',
  replication            jsonb CHECK (replication IS NULL OR jsonb_typeof(replication) = 'array'),
  state_changed_at       timestamptz,

  -- The monitor's health checks of the node's Postgres.
  health                 text NOT NULL DEFAULT 'unknown' CHECK (health IN ('unknown', 'good', 'bad')),
  health_since           timestamptz,
  last_health_check_at   timestamptz,
  health_failures        integer NOT NULL DEFAULT 0 CHECK (health_failures >= 0),

  -- Operator requests.
  maintenance_requested  boolean NOT NULL DEFAULT false,
  drop_requested         boolean NOT NULL DEFAULT false,

  registered_at          timestamptz NOT NULL DEFAULT now(),

  FOREIGN KEY (formation, group_id) REFERENCES pgfailover.node_group (formation, group_id),
  CONSTRAINT node_formation_name_key UNIQUE (formation, name)
);

-- host:port is one Postgres server whichever formation it is in; host names
-- are case-insensitive.
CREATE UNIQUE INDEX IF NOT EXISTS node_host_port_key ON pgfailover.node (lower(host), port);
-- node_active's peer SELECT and every group load of the decider.
CREATE INDEX IF NOT EXISTS node_formation_group_idx ON pgfailover.node (formation, group_id);

-- node_group is created before node, so its reference to node is added here.
-- A promotion target that is deleted must take the request with it (drop_node
-- clears it first); NO ACTION makes forgetting that an error, not a silent
-- switchover to some other node.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_constraint
                 WHERE conname = 'node_group_switchover_target_fkey'
                   AND conrelid = 'pgfailover.node_group'::regclass) THEN
    ALTER TABLE pgfailover.node_group
      ADD CONSTRAINT node_group_switchover_target_fkey
      FOREIGN KEY (switchover_target) REFERENCES pgfailover.node (id);
  END IF;
END
$$;

-- Events outlive nodes (and their rows), hence node_name and no foreign keys to
-- node. Operator requests are logged too, with from_state/to_state NULL.
CREATE TABLE IF NOT EXISTS pgfailover.event (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at         timestamptz NOT NULL DEFAULT now(),
  formation  text NOT NULL REFERENCES pgfailover.formation (name),
  group_id   integer,
  node_id    bigint,
  node_name  text,
  from_state text CHECK (from_state = ANY (pgfailover.node_state_names())),
  to_state   text CHECK (to_state = ANY (pgfailover.node_state_names())),
  rule       text NOT NULL,
  reason     text NOT NULL
);
-- last_events(formation, n): newest n of one formation.
CREATE INDEX IF NOT EXISTS event_formation_id_idx ON pgfailover.event (formation, id);

-- Values are text so one table holds them all; min_value/max_value let
-- set_monitor_setting validate without a hard-coded list per setting.
CREATE TABLE IF NOT EXISTS pgfailover.monitor_setting (
  name        text PRIMARY KEY,
  value       text NOT NULL,
  description text NOT NULL,
  min_value   bigint NOT NULL,
  max_value   bigint NOT NULL,
  CHECK (min_value <= max_value)
);

-- Defaults of DecisionSettings (monitor/group_state_machine.h) and of the
-- monitor's and keepers' loops. ON CONFLICT DO NOTHING: re-applying must not
-- undo an operator's set_monitor_setting.
INSERT INTO pgfailover.monitor_setting (name, value, min_value, max_value, description) VALUES
  ('node_lost_timeout_ms',         '2500',     500, 600000,
   'a node without reports and with failing health checks for this long is lost'),
  ('postgres_restart_timeout_ms',  '6000',     500, 600000,
   'a keeper alive but its Postgres down for this long counts as failed'),
  ('standby_stream_timeout_ms',    '4000',     500, 600000,
   'a secondary not streaming for this long is dropped from synchronous replication'),
  ('network_partition_timeout_ms', '10000',   1000, 3600000,
   'a primary that reaches neither the monitor nor a standby for this long fences itself'),
  ('startup_grace_ms',             '3000',       0, 600000,
   'after the monitor starts, nobody is declared lost before this'),
  ('catchup_lag_bytes',            '16777216',   0, 1099511627776,
   'a standby this close to the primary counts as in sync'),
  ('health_check_period_ms',       '1000',     100, 600000,
   'how often the monitor connects to each node''s Postgres'),
  ('health_check_timeout_ms',      '1000',     100, 600000,
   'connect timeout of one health check'),
  ('health_check_retries',         '2',          0, 100,
   'failed health checks in a row before health turns bad'),
  ('keeper_poll_ms',               '1000',     100, 600000,
   'how often a keeper calls node_active'),
  ('decide_tick_ms',               '500',       10, 60000,
   'how often the decider runs without being notified')
ON CONFLICT (name) DO NOTHING;
