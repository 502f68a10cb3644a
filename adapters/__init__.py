"""Framework adapters, installed as ``slq.adapters``: models and data as Hessian operators.

Import it as ``from slq import adapters``. Each framework is imported only when
its adapter is used.
"""

if __name__ != "slq.adapters":
    _msg = (
        f"this package is slq's adapters and must be imported as `slq.adapters`, not as "
        f"`{__name__}`: write `from slq import adapters` (and reinstall slq with a plain "
        "`pip install -e .` if this happened in a checkout)"
    )
    raise ImportError(_msg)

__all__: list[str] = []
