UPDATE keeper SET formation = 'a b';
