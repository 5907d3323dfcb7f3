DELETE FROM keeper;
