"""Applications built on the library: the ``slq`` command line and ``slq demo``.

`slq.apps.cli` is the ``slq`` program (one module per command, the matrix-file
readers in their own); `slq.apps.demo` is the BatchNorm study that ``slq demo``
runs. They use the library's public functions and are never imported by it:
``import slq`` does not load them.
"""
