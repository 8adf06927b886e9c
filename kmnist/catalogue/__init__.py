"""What exists: releases, datasets, files, mirrors, class maps. Data only."""
