PRAGMA ignore_check_constraints = 1;
UPDATE keeper SET node_id = 0;
