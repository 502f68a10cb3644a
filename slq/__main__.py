"""``python -m slq``: the ``slq`` command line (see `slq.apps.cli`)."""

from slq.apps.cli import main

if __name__ == "__main__":  # importing this module (as doctest collection does) runs nothing
    raise SystemExit(main())
