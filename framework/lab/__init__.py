"""Labs: the virtual lab builder and the handles tests get for every host."""
