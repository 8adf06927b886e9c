"""Files on disk into arrays, folders and pictures."""
