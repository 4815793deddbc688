"""Segment's S3 archive, on S3 or on disk: `store` (keys and bytes), `listing` (day folders and
their objects), `reading` (objects as line chunks)."""
