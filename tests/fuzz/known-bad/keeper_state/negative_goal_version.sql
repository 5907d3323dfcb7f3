UPDATE keeper SET current_goal_version = -3;
