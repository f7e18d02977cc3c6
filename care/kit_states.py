"""A kit's stock state between patients (issue 11): one pure transition function, no I/O.

    in_stock ──lend──▶ assigned ──take back / discharge──▶ returned ──cleaned──▶ cleaned
        ▲                  ▲                                                      │   │
        └──────────────────┼───────────────────back in stock──────────────────────┘   │
                           └──────────────────────────lend────────────────────────────┘

A kit that came back from a patient's home is `returned` until someone records that it was cleaned:
it cannot be lent again before that (hygiene: a kit goes from one home to the next only cleaned). A
cleaned kit may be lent at once or put back in stock; a kit in stock is lent from there. Every
other pair is refused with the state it is in, so staff see why (care.refusals KIT_STATE).
"""

from __future__ import annotations

from enum import StrEnum

from care.refusals import RefusalCode, Refused


class KitState(StrEnum):
    IN_STOCK = "in_stock"
    ASSIGNED = "assigned"
    RETURNED = "returned"
    CLEANED = "cleaned"


class KitEvent(StrEnum):
    LEND = "lend"  # care.kit_assignments.lend (EquipmentAction.ASSIGN_KIT)
    TAKE_BACK = "take_back"  # take_back and discharge (ASSIGN_KIT, Action.DISCHARGE_PATIENT)
    CLEANED = "cleaned"  # mark_cleaned (EquipmentAction.MANAGE_KIT_STOCK)
    TO_STOCK = "to_stock"  # back_in_stock (MANAGE_KIT_STOCK)


TRANSITIONS: dict[tuple[KitState, KitEvent], KitState] = {
    (KitState.IN_STOCK, KitEvent.LEND): KitState.ASSIGNED,
    (KitState.CLEANED, KitEvent.LEND): KitState.ASSIGNED,
    (KitState.ASSIGNED, KitEvent.TAKE_BACK): KitState.RETURNED,
    (KitState.RETURNED, KitEvent.CLEANED): KitState.CLEANED,
    (KitState.CLEANED, KitEvent.TO_STOCK): KitState.IN_STOCK,
}

# Kits a patient can be given (care.kit_assignments.available_kits).
LENDABLE = frozenset(state for state, event in TRANSITIONS if event is KitEvent.LEND)

STATES_SV = {
    KitState.IN_STOCK: "I lager",
    KitState.ASSIGNED: "Utlånad",
    KitState.RETURNED: "Återlämnad, ej rengjord",
    KitState.CLEANED: "Rengjord",
}


def next_state(state: KitState | str, event: KitEvent) -> KitState:
    """The kit's state after `event`, or Refused(KIT_STATE) naming the state it is in."""
    current = KitState(state)
    try:
        return TRANSITIONS[(current, event)]
    except KeyError:
        raise Refused(RefusalCode.KIT_STATE, state=current.value, event=event.value) from None


def events_allowed(state: KitState | str) -> tuple[KitEvent, ...]:
    """What may be done with a kit in `state` (the kit page offers these and nothing else)."""
    current = KitState(state)
    return tuple(event for (s, event) in TRANSITIONS if s is current)
