"""The selection report: a self-contained HTML page (html.py) and PNG figures (figures.py), drawn from
one ReportData (data.py)."""

from .data import ReportData, project_2d
from .figures import write_figures
from .html import write_report

__all__ = ["ReportData", "project_2d", "write_figures", "write_report"]
