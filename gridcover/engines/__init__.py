"""The engines that run a whole analysis into an output folder: one process (``single``) or a Dask cluster
(``dask``); both give the same outputs and return ``(analysis, output folder)``."""
