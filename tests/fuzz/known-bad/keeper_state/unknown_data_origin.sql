UPDATE keeper SET data_origin = 'stolen';
