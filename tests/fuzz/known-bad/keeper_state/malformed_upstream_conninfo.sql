UPDATE keeper SET upstream_conninfo = 'host=''unterminated';
