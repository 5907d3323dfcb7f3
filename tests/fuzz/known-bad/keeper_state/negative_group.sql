UPDATE keeper SET group_id = -1;
