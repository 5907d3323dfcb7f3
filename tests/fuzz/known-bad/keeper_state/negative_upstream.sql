UPDATE keeper SET upstream_id = -4;
