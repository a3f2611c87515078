"""How ``sample.xls`` was made (once, with ``pip install xlwt``; no maintained library writes
the old .xls format, so the workbook is committed and this script is kept for the record)."""

import datetime as dt
from pathlib import Path

import xlwt  # type: ignore[import-not-found]

wb = xlwt.Workbook()
ws = wb.add_sheet("People")
date_style = xlwt.easyxf(num_format_str="YYYY-MM-DD")
dtm_style = xlwt.easyxf(num_format_str="YYYY-MM-DD HH:MM:SS")
header = ["id", "name", "score", "joined", "seen", "active", "note", "", "id"]
for j, h in enumerate(header):
    ws.write(0, j, h)
rows = [
    [1, "Ana", 9.5, dt.date(2023, 1, 15), dt.datetime(2024, 3, 1, 12, 30, 0), True, "NA", 7, 10],
    [2, "Bruno", 7.25, dt.date(2023, 2, 28), dt.datetime(2024, 3, 2, 8, 0, 5), False, None, 8, 20],
    [3, None, 8.0, None, dt.datetime(2024, 3, 3, 23, 59, 59), True, "ok", 9, 30],
    [4, "Dóra", None, dt.date(2020, 2, 29), None, False, "12", 10, 40],
]
for i, row in enumerate(rows, 1):
    for j, v in enumerate(row):
        if v is None:
            continue
        if isinstance(v, dt.datetime):
            ws.write(i, j, v, dtm_style)
        elif isinstance(v, dt.date):
            ws.write(i, j, v, date_style)
        else:
            ws.write(i, j, v)
totals = wb.add_sheet("Totals")
for i, row in enumerate([["id", "total"], [1, 100.5], [2, 3]]):
    for j, v in enumerate(row):
        totals.write(i, j, v)
wb.save(str(Path(__file__).with_name("sample.xls")))
