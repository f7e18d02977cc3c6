"""Hemma's FHIR R4 surface (issue 12): resources built and validated with fhir.resources, read and
search over HTTP for system clients authenticated as SMART Backend Services, and the Bundles and
notifications other care providers' systems receive.

* `codes`: code systems and the tables FHIR needs beside core.vitals (MDC numbers, dispositions...);
* `resources`: Hemma's rows (as frozen facts) to R4B models; pure;
* `search`: search parameters checked once, strictly; pure;
* `reach`: which patients a system client may read (its wards; a partner grant in force);
* `queries`: the SQL of reads and searches, within reach;
* `smart`, `clients`, `assertion`: tokens, the system clients' registry, the client's side of a token;
* `capability`, `api`: the CapabilityStatement and the `/fhir` router the dashboard mounts.
* `subscriptions`, `notifications`, `subscription_api`: push (rest-hook Subscriptions, what each
  delivery holds, `/fhir/Subscription`); paging.fhir_push sends them.
"""
