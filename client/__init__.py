"""A client of the ceramic armor service: ``ArmorClient`` for notebooks and scripts, and
``python -m client screen candidates.csv --family mechanical -o results.csv`` for a CSV of any size."""

from client.aio import AsyncArmorClient
from client.core import ArmorClient, ServiceError, ServiceUnreachable
from client.results import BatchRow, HardnessAtLoad, HardnessPrediction, Prediction, RowError, Value
from client.screen import ScreenSummary, screen_csv

__all__ = [
    "ArmorClient",
    "AsyncArmorClient",
    "BatchRow",
    "HardnessAtLoad",
    "HardnessPrediction",
    "Prediction",
    "RowError",
    "ScreenSummary",
    "ServiceError",
    "ServiceUnreachable",
    "Value",
    "screen_csv",
]
