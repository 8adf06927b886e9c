"""How bytes live on disk: the data folder, .part files, locks, stamps, atomic rename."""
