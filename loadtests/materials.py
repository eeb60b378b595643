"""Seeded generator of realistic prediction request bodies, plus a bounded pool of sent bodies.

Realistic matters: a load test full of corner cases (1200 degC boron carbide, 30 % porosity)
would exercise different feature ranges and warnings than production traffic. Pure Python
(``random``) so the locustfile imports nothing heavy into the client process.
"""

from __future__ import annotations

import csv
import math
import random
from functools import cache
from pathlib import Path

from features.phases import validated_backings

# Plausible sintering windows (degC) per phase: carbides/borides need far more heat than oxides.
SINTER_WINDOW = {
    "SiC": (1900, 2200),
    "B4C": (1950, 2250),
    "Al2O3": (1450, 1700),
    "WC": (1700, 2000),
    "TiC": (1700, 2100),
    "TiB2": (1800, 2100),
    "ZrO2": (1350, 1550),
    "AlN": (1700, 1900),
    "Si3N4": (1700, 1900),
    "other": (1400, 1900),
}
# How often a phase appears: armor ceramics are mostly SiC, B4C and alumina.
PHASE_WEIGHT = {
    "SiC": 30,
    "B4C": 22,
    "Al2O3": 25,
    "WC": 3,
    "TiC": 4,
    "TiB2": 5,
    "ZrO2": 4,
    "AlN": 2,
    "Si3N4": 4,
    "other": 1,
}
OXIDES = {"Al2O3", "ZrO2"}
NITRIDES = {"AlN", "Si3N4"}
BACKINGS = validated_backings()  # the ballistic route refuses the others (422)
THREATS = ("7.62x51_m80", "30-06_m2ap", "7.62x39_ps", "5.56x45_m855", "7.62x54r_b32")
MIN_PHASE_MILLI = 20  # a second phase below 2 vol % is not a composite anyone would submit


def log_uniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def sig(value: float, digits: int = 2) -> float:
    """Round to significant digits: clients send 12 um, not 12.3456789 um."""
    return float(f"{value:.{digits}g}")


def pick_phases(rng: random.Random) -> list[str]:
    count = rng.choices((1, 2, 3), weights=(35, 45, 20))[0]
    names = list(PHASE_WEIGHT)
    chosen: list[str] = []
    while len(chosen) < count:
        name = rng.choices(names, weights=[PHASE_WEIGHT[n] for n in names])[0]
        if name not in chosen:
            chosen.append(name)
    return chosen


def dirichlet_milli(rng: random.Random, count: int, alpha: float = 1.5) -> list[int]:
    """Dirichlet fractions in thousandths summing to exactly 1000, each >= MIN_PHASE_MILLI.

    Integer thousandths make "rounded to 3 decimals and summing exactly to 1" hold by construction;
    the rounding remainder goes to the largest phase, where it changes the material least.
    """
    if count == 1:
        return [1000]
    draws = [rng.gammavariate(alpha, 1.0) for _ in range(count)]
    spare = 1000 - MIN_PHASE_MILLI * count
    milli = [MIN_PHASE_MILLI + round(spare * d / sum(draws)) for d in draws]
    milli[milli.index(max(milli))] += 1000 - sum(milli)
    return milli


def composition(rng: random.Random) -> dict[str, float]:
    phases = pick_phases(rng)
    return {p: m / 1000 for p, m in zip(phases, dirichlet_milli(rng, len(phases)), strict=True)}


def sintering_temperature(rng: random.Random, comp: dict[str, float]) -> float:
    """Fraction-weighted window of the phases, rounded to 10 degC as furnaces are programmed."""
    low = sum(f * SINTER_WINDOW[p][0] for p, f in comp.items())
    high = sum(f * SINTER_WINDOW[p][1] for p, f in comp.items())
    return float(min(2500, max(1200, round(rng.uniform(low, high), -1))))


def atmosphere(rng: random.Random, comp: dict[str, float]) -> str:
    main = max(comp, key=comp.get)
    if main in OXIDES:
        return rng.choices(("air", "argon", "vacuum"), weights=(70, 15, 15))[0]
    if main in NITRIDES:
        return rng.choices(("nitrogen", "argon"), weights=(85, 15))[0]
    return rng.choices(("argon", "vacuum", "nitrogen", "hydrogen"), weights=(60, 30, 5, 5))[0]


def processing(rng: random.Random, comp: dict[str, float]) -> dict:
    # Three routes: pressureless, hot pressing and spark plasma sintering (fast heating, short hold).
    route = rng.choices(("pressureless", "hot_press", "sps"), weights=(40, 45, 15))[0]
    pressure = {"pressureless": rng.uniform(1, 5), "hot_press": rng.uniform(20, 60), "sps": rng.uniform(30, 100)}[route]
    holding = {"pressureless": rng.uniform(60, 240), "hot_press": rng.uniform(30, 120), "sps": rng.uniform(3, 20)}[
        route
    ]
    heating = {"pressureless": rng.uniform(5, 20), "hot_press": rng.uniform(10, 30), "sps": rng.uniform(50, 100)}[route]
    return {
        "sintering_temperature": sintering_temperature(rng, comp),
        "pressure": sig(pressure),
        "grain_size": sig(log_uniform(rng, 0.5, 50)),
        "holding_time": float(max(1, round(holding))),
        "heating_rate": float(round(heating)),
        "atmosphere": atmosphere(rng, comp),
    }


def microstructure(rng: random.Random) -> dict:
    # Dense armor tiles dominate; 1 in 10 is a poorly densified part with 10-30 % porosity.
    porosity = rng.uniform(0.1, 0.3) if rng.random() < 0.1 else 0.1 * rng.betavariate(1.2, 4)
    return {
        "porosity": round(porosity, 3),
        "phase_distribution": rng.choices(("uniform", "gradient", "layered"), weights=(80, 10, 10))[0],
        "interface_quality": rng.choices(("poor", "fair", "good", "excellent"), weights=(5, 20, 55, 20))[0],
        "pore_size": sig(log_uniform(rng, 0.1, 20)),
        # open (connected) porosity grows with total porosity
        "connectivity": round(min(1.0, porosity * 4 + rng.uniform(0, 0.2)), 2),
    }


def armor(rng: random.Random) -> dict:
    return {
        "tile_thickness": float(rng.choice((6, 7, 8, 9, 10, 12, 14, 16, 20))),
        "backing": rng.choice(BACKINGS),
        "backing_thickness": float(rng.choice((3, 4, 5, 6, 8, 10, 12))),
        "threat": rng.choices(THREATS, weights=(35, 20, 20, 15, 10))[0],
    }


def material_body(rng: random.Random, ballistic: bool = False, importance_prob: float = 0.0) -> dict:
    """One request body; ``armor`` only for ballistic requests, as a client would send it."""
    comp = composition(rng)
    body = {
        "composition": comp,
        "processing": processing(rng, comp),
        "microstructure": microstructure(rng),
        "include_uncertainty": rng.random() < 0.9,
        "include_feature_importance": rng.random() < importance_prob,
    }
    if ballistic:
        body["armor"] = armor(rng)
    return body


class RequestPool:
    """Bounded pool of sent requests: with probability ``repeat_prob`` resend one, else make a new one.

    Shared by all users of a scenario so a "repeat" may repeat another user's request, as in
    production. Bounded (random replacement when full) so the working set stays below the
    service's cache sizes; ``next`` returns (item, repeated).
    """

    def __init__(self, factory, repeat_prob: float = 0.7, max_size: int = 500, seed: int = 0):
        self.factory = factory  # factory(rng) -> item
        self.repeat_prob = repeat_prob
        self.max_size = max_size
        self.rng = random.Random(seed)
        self.items: list = []

    def next(self, rng: random.Random | None = None):
        rng = rng or self.rng
        if self.items and self.rng.random() < self.repeat_prob:
            return self.rng.choice(self.items), True
        item = self.factory(rng)
        if len(self.items) < self.max_size:
            self.items.append(item)
        else:
            self.items[self.rng.randrange(self.max_size)] = item
        return item, False


MEASURED_HARDNESS = Path(__file__).resolve().parent.parent / "data" / "vickers_hardness_measured.csv"
HARDNESS_LOADS_N = (0.49, 0.98, 1.96, 2.94, 4.9, 9.8, 19.6, 49.0)  # the usual HV0.05-HV5 test loads


@cache
def measured_formulas() -> tuple[str, ...]:
    with MEASURED_HARDNESS.open() as handle:
        return tuple(sorted({row["composition"] for row in csv.DictReader(handle)}))


def hardness_body(rng: random.Random) -> dict:
    """A compound of the measured table at one load, or at two or three (the load curve)."""
    count = rng.choices((1, 2, 3), weights=(70, 15, 15))[0]
    loads = sorted(rng.sample(HARDNESS_LOADS_N, count))
    return {"formula": rng.choice(measured_formulas()), "load_n": loads[0] if count == 1 else loads}
