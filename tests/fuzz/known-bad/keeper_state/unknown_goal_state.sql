UPDATE keeper SET last_goal = 'flying';
