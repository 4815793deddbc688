"""Segment warehouses through a common-sql connection: `source` (the WarehouseSource and its load
slices), `naming` (Segment's snake_case and identifiers), `values` (column values as record values)."""
