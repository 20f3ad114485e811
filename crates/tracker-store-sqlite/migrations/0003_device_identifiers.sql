-- A device's SC_ANALYTICS_GLOBAL_COOKIE identifier is the device itself: readers list it from
-- `devices`, so the writer no longer stores it a second time in `identifiers` (two fewer B-tree
-- inserts and one or two fewer WAL pages per new visitor). `identifiers` keeps every other
-- source; the rows that only repeat a device of the same contact are removed here.
DELETE FROM identifiers
WHERE source = 'SC_ANALYTICS_GLOBAL_COOKIE'
  AND EXISTS (
      SELECT 1 FROM devices d
      WHERE d.contact_id = identifiers.contact_id AND lower(hex(d.id)) = identifiers.identifier
  );
