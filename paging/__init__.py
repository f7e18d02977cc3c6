"""Paging the on-call physician: the escalator service (`paging.escalator`), its pure timing
(`paging.escalation`) and the notification channels (`paging.notify`: e-mail, webhook, push)."""
