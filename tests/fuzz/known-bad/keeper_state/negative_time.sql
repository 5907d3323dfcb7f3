UPDATE keeper SET last_monitor_contact_ms = -1;
