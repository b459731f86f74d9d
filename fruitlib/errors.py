"""One exception type whose message is a single line telling the user what to do."""


class FruitlibError(Exception):
    """A user-facing error: bad data, missing weights, a wrong checkpoint.

    The command line prints ``str(error)`` alone, without a traceback.
    """
