"""The care domain: what staff may decide about a patient and how it is checked — enrolment,
monitoring plans, manual observations, personal limits, SpO2 scale orders, on-call shifts, staff
accounts and roles, and the access log (Patientdatalagen). Every entry point (CLI, dashboard, and
later the patient app and FHIR) calls these commands; none repeats them."""
