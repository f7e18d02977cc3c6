"""Which patients a system client may read, at a moment: the one decision every FHIR route uses.

A system client (system_clients, migration 0018) reads

* the patients of the wards it is registered for (system_client_wards): the region's journal system
  reading its own wards, during and after the stay, as the region's own staff may; and
* a patient with a partner grant in force (care.sharing.GRANT_IN_FORCE_SQL, called, not re-written)
  to a partner account of the client's own care provider: the municipality's system sees the one
  patient granted to its nurse, during the grant only, and never once the patient blocks it.

`reach_sql` is that decision as SQL rows (patient_id, partner_grant_id), the grant named when a grant
and not a ward allowed the read (the access log records it). Every query of fhir_api.queries joins it
(`WITH reach AS (...)`), so a search, a read and `$everything` filter by the same words before any
LIMIT, and a patient out of reach is indistinguishable from one that does not exist.
"""

from __future__ import annotations

from care.sharing import GRANT_IN_FORCE_SQL

# Named parameters: %(client)s the client's id, %(at)s the moment (the request's time).
_REACH = (
    "SELECT DISTINCT ON (patient_id) patient_id, partner_grant_id FROM ("
    " SELECT p.id AS patient_id, NULL::bigint AS partner_grant_id"
    " FROM patients p JOIN system_client_wards w ON w.ward_id = p.ward_id"
    " JOIN system_clients c ON c.id = w.client_id"
    " WHERE w.client_id = %(client)s AND NOT c.disabled"
    " UNION ALL"
    " SELECT g.patient_id, g.id"
    " FROM partner_grants g JOIN staff_users s ON s.id = g.staff_user_id"
    " JOIN care_units u ON u.id = s.care_unit_id"
    " JOIN system_clients c ON c.provider_id = u.provider_id"
    " WHERE c.id = %(client)s AND NOT c.disabled AND s.role = 'partner' AND NOT s.disabled"
    " AND " + GRANT_IN_FORCE_SQL + ") AS allowed"
    # A ward's patient is read as the ward's (no grant named); among several grants, the newest.
    " ORDER BY patient_id, partner_grant_id IS NOT NULL, partner_grant_id DESC"
)


def reach_sql() -> str:
    """The CTE body: the patients the client %(client)s may read at %(at)s, with the grant if any."""
    return _REACH
