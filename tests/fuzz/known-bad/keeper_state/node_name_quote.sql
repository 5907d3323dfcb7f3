UPDATE keeper SET name = 'x'' host=evil';
