"""The lab's commands: ``synthetic`` (make, preview, predict, measure, report, sheet, autoencoder, oracle) and
``demo``, offered by the product's front door (``animate_anyone.cli.main``)."""


def benchmark_defaults() -> str:
    """What ``demo`` and ``synthetic predict`` sample with when no preset is named (for their --help), read from the
    one declaration, ``settings.BENCHMARK_SAMPLING``."""
    from ..settings import BENCHMARK_SAMPLING as ours

    return (
        f"without --preset: the benchmark's settings, {ours.steps} steps at guidance {ours.guidance:g}, unless the "
        "model is a distilled student (then its own preset)"
    )
