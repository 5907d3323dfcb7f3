UPDATE keeper SET group_id = 9999999999;
