"""Children that behave as from a terminal, however the suite was started."""

import signal


def default_sigint() -> None:
    """A Popen preexec_fn: SIGINT back to its default in the child.

    A shell starts a background job (nohup, cron, `scripts/test &`, some CI
    runners) with SIGINT ignored, and an ignored signal stays ignored across
    fork and exec: Snakemake would then never see a Ctrl-C the test sends.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
