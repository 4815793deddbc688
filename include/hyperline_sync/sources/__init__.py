"""Where events come from: the unit protocol, the Segment S3 archive and Segment warehouses."""
