"""Hemma's FHIR R4 surface (issue 12): resources built and validated with fhir.resources, read and
search over HTTP for system clients authenticated as SMART Backend Services, and the Bundles and
notifications other care providers' systems receive."""
