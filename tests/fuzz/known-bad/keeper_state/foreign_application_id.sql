PRAGMA application_id = 12345;
