UPDATE keeper SET network_partition_timeout_ms = -5;
