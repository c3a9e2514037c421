"""The batch runner: footage files through the one analysis step into the case store."""
