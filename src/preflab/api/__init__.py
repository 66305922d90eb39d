"""The Python API: each stage as one function with one convention,
``stage(data, config=None, **overrides) -> Result``; results are objects in memory
(``Audit``, ``Cleaned``, ...) that the caller may ``.save(folder)``. ``import preflab
as pl`` exposes them (``pl.audit``, ``pl.clean``, ...); the command line calls them."""
