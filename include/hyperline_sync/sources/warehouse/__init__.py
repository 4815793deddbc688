"""Segment warehouses through a common-sql connection: `source` (the WarehouseSource: listing load
slices, paging rows), `rows` (a page of rows as events), `naming` (Segment's snake_case and
identifiers), `values` (column values as record values)."""
