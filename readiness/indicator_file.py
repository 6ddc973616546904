"""The indicators file: the ten indicator values of an SME, in YAML or JSON.

```yaml
window: {start: 2026-10-05T00:00:00Z, end: 2026-11-02T00:00:00Z}   # optional
indicators:
  CC: 9/12                  # a ratio: a number 0-1 or a fraction "part/whole"
  DC: 5625/6048
  OV: 0.5
  RC: null                  # not measurable; an indicator left out is null too
  ART: {median_minutes: 42, events: 37, within_15_min: 0.2}
  EC: 38400/61000
```

ART with fewer than five events has no median (null); `ART: {logging: false, events: 0}` says
that machines were connected but no alarm or acknowledgement was logged, which scores 0.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    model_validator,
)

from readiness.evidence import (
    MIN_RESPONSE_EVENTS,
    Evidence,
    Indicators,
    ResponseTime,
)
from shopfloor.config import load_yaml_model

_FRACTION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)\s*$")


def _fraction(value: object) -> object:
    """ "9/12" -> 0.75; anything else is left to the number check."""
    if isinstance(value, str) and (match := _FRACTION.match(value)):
        part, whole = float(match.group(1)), float(match.group(2))
        if whole == 0:
            raise ValueError("the fraction's denominator is zero")
        return part / whole
    return value


Share = Annotated[float, BeforeValidator(_fraction), Field(ge=0, le=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResponseTimeEntry(_Strict):
    median_minutes: NonNegativeFloat | None = None
    events: NonNegativeInt = 0
    within_15_min: Share | None = None
    logging: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> ResponseTimeEntry:
        if not self.logging and self.events:
            raise ValueError("logging false means no event was logged: events must be 0")
        if self.events >= MIN_RESPONSE_EVENTS and self.median_minutes is None:
            raise ValueError(f"median_minutes is needed with {MIN_RESPONSE_EVENTS}+ events")
        return self

    def response_time(self) -> ResponseTime:
        enough = self.events >= MIN_RESPONSE_EVENTS
        return ResponseTime(
            self.median_minutes if enough else None,
            self.events,
            self.within_15_min,
            self.logging,
        )


class IndicatorValues(_Strict):
    DC: Share | None = None
    CC: Share | None = None
    OV: Share | None = None
    DU: Share | None = None
    RC: Share | None = None
    ART: ResponseTimeEntry | None = None
    EC: Share | None = None
    EV: Share | None = None
    STD: Share | None = None
    CO: Share | None = None


class Window(_Strict):
    start: AwareDatetime
    end: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end <= self.start:
            raise ValueError("end must come after start")
        return self


class IndicatorsFile(_Strict):
    window: Window | None = None
    indicators: IndicatorValues


def _indicators(values: IndicatorValues) -> Indicators:
    return Indicators(
        DC=values.DC,
        CC=values.CC,
        OV=values.OV,
        DU=values.DU,
        RC=values.RC,
        ART=values.ART.response_time() if values.ART else None,
        EC=values.EC,
        EV=values.EV,
        STD=values.STD,
        CO=values.CO,
    )


def indicators_from_dict(values: Mapping[str, object]) -> Indicators:
    """Indicators from plain data, as `Indicators.to_dict` (and a snapshot) holds them."""
    return _indicators(IndicatorValues.model_validate(values))


def load_indicators(path: str | Path) -> Evidence:
    """Read an indicators file; ConfigError names file, line and indicator."""
    loaded = load_yaml_model(path, IndicatorsFile)
    window = loaded.window
    return Evidence(
        _indicators(loaded.indicators),
        window.start if window else None,
        window.end if window else None,
        source=str(path),
    )
