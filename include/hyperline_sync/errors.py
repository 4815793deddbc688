"""Errors shared across sources, so the sync can treat every kind of source alike."""


class UnitReadError(Exception):
    """A unit of a partition (an archive object, a warehouse slice) could not be read.

    The sync fails that unit, names it in the partition's error, and still syncs the other units.
    """
