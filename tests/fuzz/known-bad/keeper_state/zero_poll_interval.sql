UPDATE keeper SET keeper_poll_ms = 0;
