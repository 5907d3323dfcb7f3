UPDATE keeper SET transition_from = 'primary', transition_to = 'nowhere', transition_started_at_ms = 1;
