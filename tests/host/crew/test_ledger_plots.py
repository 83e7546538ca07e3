"""The ledger's plots read at a glance (nengjian_host.crew.ledger.plots): energy values as plain
numbers (no "+1e4" offset, no scientific notation), and a series drawn over its own span with a small
margin (one value alone: a day either side), not over matplotlib's default years."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from nengjian_host.crew import ledger  # noqa: E402

T0 = 1777593600  # 2026-05-01 08:00 CST
CODE = "01-00-0000-023300-11"


def _ledger(values, readings=()):
    return {"gaps": [], "items": {CODE: {"period_s": 900}}, "faults": [], "link_outages": [], "visits": [],
            "period": {"from_ts": T0 - 30 * 86400, "to_ts": T0 + 30 * 86400},
            "_series": {"values": {CODE: [(s, v, True) for s, v in values]},
                        "readings": {"m1/energy_kwh": list(readings)} if readings else {}}}


@pytest.fixture
def figures(monkeypatch):
    """The figures plots() draws, kept open for the test to look at (plots() closes each once saved)."""
    kept = []
    monkeypatch.setattr(plt, "close", lambda fig=None: kept.append(fig))
    yield kept
    for fig in kept:
        matplotlib.pyplot.figure(fig.number)
        matplotlib.pyplot.clf()
    monkeypatch.undo()
    plt.close("all")


def _span_days(ax):
    lo, hi = ax.get_xlim()
    return hi - lo, lo, hi


def test_energy_axes_show_plain_numbers_without_an_offset(figures):
    values = [(T0 + i * 900, 12345.6 + 0.1 * i) for i in range(5)]
    readings = [(T0 + i * 900, 12345.60 + 0.1 * i) for i in range(5)]
    ledger.plots(_ledger(values, readings))
    assert len(figures) == 3  # the item, the meter point, the timeline
    for fig in figures[:2]:
        ax = fig.axes[0]
        fig.canvas.draw()
        assert ax.yaxis.get_offset_text().get_text() == ""
        labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
        assert labels and all(lab.replace(".", "").replace(",", "").isdigit() for lab in labels), labels
        assert any(lab.startswith("12345") or lab.startswith("12346") for lab in labels), labels


def test_a_short_series_is_scaled_to_its_own_span(figures):
    values = [(T0, 5.0), (T0 + 3600, 6.0), (T0 + 7200, 5.5)]  # two hours
    ledger.plots(_ledger(values, values))
    for fig in figures[:2]:
        span, lo, hi = _span_days(fig.axes[0])
        assert 2 / 24 < span <= 2 / 24 * 1.1  # two hours and a small margin, in days
        assert lo < mdates.date2num(ledger.dt.datetime.fromtimestamp(T0, ledger.CST)) < hi


def test_a_single_value_gets_a_day_either_side(figures):
    ledger.plots(_ledger([(T0, 12345.0)], [(T0, 12345.0)]))
    for fig in figures[:2]:
        span, lo, hi = _span_days(fig.axes[0])
        assert span == pytest.approx(2.0)
        assert (lo + hi) / 2 == pytest.approx(mdates.date2num(ledger.dt.datetime.fromtimestamp(T0, ledger.CST)))


@pytest.mark.parametrize("span_s", [270, 4.5 * 3600, 4.5 * 86400, 20 * 86400, 2.5 * 365 * 86400])
def test_any_span_gets_date_ticks_matplotlib_can_place(figures, span_s):
    """Spans just short of five of a unit (4.5 min, h, days) once left AutoDateLocator no interval that
    kept to its tick limit: it warned and fell back to ticks that crowd. Each span gets a handful of
    ticks, and the plot says nothing."""
    import warnings

    from nengjian_host.common import cjkfont

    values = [(T0 + int(span_s * i / 9), 12345.0 + i) for i in range(10)]
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        ledger.plots(_ledger(values, values))
    said = [str(w.message) for w in said if not issubclass(w.category, cjkfont.NoCJKFont)]
    assert said == []
    for fig in figures[:2]:
        fig.canvas.draw()
        ticks = [t for t in fig.axes[0].get_xticks() if fig.axes[0].get_xlim()[0] <= t <= fig.axes[0].get_xlim()[1]]
        assert 2 <= len(ticks) <= 8, ticks


def test_a_chinese_report_plots_the_timeline_rows_and_dates_without_english(figures):
    """--lang zh: the timeline's rows (a meter offline, a delivery failing, a data gap) say their kind in
    Chinese with the font that draws it, and no date names a month in English ("May")."""
    import warnings

    from nengjian_host.common import cjkfont

    if cjkfont.find() is None:
        pytest.skip("no CJK font installed (make browser)")
    led = _ledger([(T0 + i * 86400, 12345.0 + i) for i in range(20)])
    led["faults"] = [{"category": "meter offline", "subject": "m1", "start_ts": T0, "end_ts": T0 + 86400}]
    led["link_outages"] = [{"category": "delivery failing", "subject": "city", "start_ts": T0, "end_ts": None}]
    led["gaps"] = [{"code": CODE, "from_ts": T0 + 86400, "to_ts": T0 + 5 * 86400, "duration_s": 4 * 86400}]
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        ledger.plots(led, lang="zh")
    assert [str(w.message) for w in said if "missing from font" in str(w.message)] == []
    timeline = figures[-1].axes[0]
    figures[-1].canvas.draw()
    assert [t.get_text() for t in timeline.get_yticklabels()] == sorted(
        ["仪表离线 m1", "上传失败 city", "数据缺失 %s" % CODE])
    for fig in figures[:-1]:
        fig.canvas.draw()
        ax = fig.axes[0]
        dates = [t.get_text() for t in ax.get_xticklabels()] + [ax.xaxis.get_offset_text().get_text()]
        assert dates and not any(c.isalpha() for d in dates for c in d), dates
    ledger.plots(led, lang="en")
    figures[-1].canvas.draw()
    assert "meter offline m1" in [t.get_text() for t in figures[-1].axes[0].get_yticklabels()]
