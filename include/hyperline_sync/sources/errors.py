"""Errors shared across sources, so the sync can treat every kind of source alike."""


class UnitReadError(Exception):
    """A unit of a partition (an archive object, a warehouse slice) could not be read.

    `key` names the unit (or the listing that failed) and `reason` says why. The sync fails that
    unit, names it in the partition's error, and still syncs the other units.
    """

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"{key}: {reason}")
