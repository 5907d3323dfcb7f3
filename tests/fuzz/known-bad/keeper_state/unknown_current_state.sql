UPDATE keeper SET current_state = 'flying';
