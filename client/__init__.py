"""A client of the ceramic armor service: ``ArmorClient`` for notebooks and scripts, and
``python -m client screen candidates.csv --family mechanical -o results.csv`` for a CSV of any size."""

from client.core import ArmorClient, ServiceError, ServiceUnreachable
from client.screen import ScreenSummary, screen_csv

__all__ = ["ArmorClient", "ScreenSummary", "ServiceError", "ServiceUnreachable", "screen_csv"]
