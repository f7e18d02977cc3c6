"""Every rule the alert engine runs, in the order it runs them.

Adding a rule: write its kernel with its `Rule` (`alerts.rule`) in one module of `alerts/`, give it a
`RuleFamily` (and its text in `alerts.messages_sv`), and add one entry here. `ingest.engine` runs the
list as it stands; `ingest.rule_inputs` answers the rule's input request (a new kind of request is a
new read there). Order matters only for the order of the changes the store reports.
"""

from __future__ import annotations

from typing import Any

from alerts.contact import ContactRequestOpenRule
from alerts.judge import ThresholdsRule
from alerts.kit_config import ConfigNotAppliedRule
from alerts.missing import DeviceRule, GatewayOfflineRule, MissingVitalRule, ReceiptsOverdueRule
from alerts.news2 import News2Rule
from alerts.rule import Rule, RuleFamily
from alerts.symptoms import SymptomsExpiryRule, SymptomsRule
from alerts.trends import RESTING_PULSE_RISING, SPO2_FALLING, SYSTOLIC_FALLING, RiseTrendRule, SlopeTrendRule
from alerts.weight import WeightBaselineRule, WeightGainRule

RULES: tuple[Rule[Any], ...] = (
    # With each batch, for the patients and vitals it touched.
    ThresholdsRule(),
    News2Rule(),
    WeightGainRule(),
    WeightBaselineRule(),
    SymptomsRule(),
    # On the timer, for every patient in care.
    SlopeTrendRule(SPO2_FALLING),
    SlopeTrendRule(SYSTOLIC_FALLING),
    RiseTrendRule(RESTING_PULSE_RISING),
    MissingVitalRule(),
    GatewayOfflineRule(),
    ReceiptsOverdueRule(),
    DeviceRule(RuleFamily.DEVICE_SILENT),
    DeviceRule(RuleFamily.BATTERY_LOW),
    DeviceRule(RuleFamily.CLOCK_NOT_SET),
    ConfigNotAppliedRule(),
    ContactRequestOpenRule(),
    SymptomsExpiryRule(),
)
