"""Helpers of the sy-sim tests and the conformance matrix: sy-sim
replicas started for one test or one test class."""
import harness


class ClassScope:
    """Lets harness.start tie a process to a test class (setUpClass)."""

    def __init__(self, cls):
        self.addCleanup = cls.addClassCleanup


def sim(owner, *args):
    """Starts a sy-sim replica at speed 0 with args, stopped with owner (a
    test, or a ClassScope); returns its port."""
    port = harness.free_port()
    harness.start(owner, [harness.binary("sy-sim"), "--quiet", "--speed", "0",
                          "--port", str(port)] + list(args), port=port)
    return port
