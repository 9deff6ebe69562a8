"""The machinery under :class:`core.store.VehicleStore`, split by what each part does.

``errors`` (the one-line errors), ``database`` (opening the SQLite file: WAL, busy
timeout, read-only directories, retry while another process sets it up),
``schema`` (tables and version), ``rows`` (how a run row is encoded and checked)
and ``runs`` (run and segment bookkeeping: refusing to shrink, re-binning).
Decision: pure SQLite and numpy here; fusion and binning stay in
``core.pipeline``, and callers use :mod:`core.store`, the public face.
"""
